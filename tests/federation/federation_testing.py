"""Two (or more) of our servers federating over real HTTPS on loopback.

Each server is named by its loopback address and port ("127.0.0.1:PORT"), so discovery goes
straight to it; certificates are self-signed and not checked, and loopback is whitelisted.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import random
import socket
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import defer
from twisted.trial import unittest

from tests.harness import TestServer

V3 = "/_matrix/client/v3"


# Ports handed out in this process: two servers set up before either listens get different ones.
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(part) for part in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A loopback port that is free now, for a server whose name must carry its port before it
    listens. It is taken below the ephemeral range: a port from that range can be given to an
    outgoing connection's local end before the server gets to bind it ("address in use")."""
    low, _high = _ephemeral_range()
    first = max(1024, low - 12000)
    for _ in range(200):
        port = random.randrange(first, low)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port below {low}")


def write_self_signed_cert(
    directory: str, host: str = "127.0.0.1", *, verifiable: bool = False
) -> tuple[str, str]:
    """A certificate and key for `host`, valid for a day; returns (cert path, key path).

    `verifiable` adds what a client that checks certificates needs when the certificate is
    also its own CA: subject alternative names (localhost and 127.0.0.1) and CA constraints."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if verifiable:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(
            x509.SubjectAlternativeName(names), critical=False
        ).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    cert = builder.sign(key, hashes.SHA256())
    cert_path = os.path.join(directory, "tls.crt")
    key_path = os.path.join(directory, "tls.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


class FederatingServer(TestServer):
    """A TestServer with a client listener (HTTP) and a federation listener (HTTPS)."""

    def __init__(self, host: str = "127.0.0.1", **config_overrides: Any) -> None:
        """`host` names the server: "localhost" gives a second loopback server a host name of
        its own, which server ACLs (that ignore ports) can tell apart from "127.0.0.1"."""
        self.federation_port = free_port()
        self.server_name = f"{host}:{self.federation_port}"
        super().__init__(**self._federation_config(config_overrides))

    def _federation_config(self, overrides: dict[str, Any]) -> dict[str, Any]:
        import tempfile

        self._cert_tmp = tempfile.TemporaryDirectory(prefix="hs-tls-")
        cert, key = write_self_signed_cert(self._cert_tmp.name)
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "listeners": [
                {
                    "port": 8008,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "resources": [{"names": ["client", "media"]}],
                },
                {
                    "port": self.federation_port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": True,
                    "resources": [{"names": ["federation"]}],
                },
            ],
            "tls_certificate_path": cert,
            "tls_private_key_path": key,
            "federation_verify_certificates": False,
            "ip_range_whitelist": ["127.0.0.0/8"],
        }
        config.update(overrides)
        return config

    @property
    def federation_url(self) -> str:
        return f"https://{self.server_name}"

    async def stop(self) -> None:
        await super().stop()
        self._cert_tmp.cleanup()


class TwoServersCase(unittest.TestCase):
    """alice on server A, bob on server B, fresh for each test."""

    timeout = 60

    def setUp(self) -> defer.Deferred:
        self.a = FederatingServer()
        self.b = FederatingServer()
        return defer.ensureDeferred(self._start())

    async def _start(self) -> None:
        try:
            await self.a.start()
            await self.b.start()
        except BaseException:
            # trial skips tearDown when setUp fails: stop what started, or its threads and
            # timers outlive the test (and keep the process from exiting).
            for server in (self.a, self.b):
                try:
                    await server.stop()
                except Exception:
                    pass
            raise
        self.alice, self.alice_token = await self.a.client.register("alice")
        self.bob, self.bob_token = await self.b.client.register("bob")

    def tearDown(self) -> defer.Deferred:
        async def stop() -> None:
            await self.a.stop()
            await self.b.stop()

        return defer.ensureDeferred(stop())

    async def create_public_room(self) -> str:
        created = await self.a.client.post(
            f"{V3}/createRoom", {"preset": "public_chat", "name": "hall"}, self.alice_token
        )
        assert created.code == 200, created.json
        return created.json["room_id"]

    async def send(self, server: FederatingServer, token: str, room_id: str, body: str) -> str:
        response = await server.client.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{body.replace(' ', '_')}",
            {"msgtype": "m.text", "body": body},
            token,
        )
        assert response.code == 200, response.json
        return response.json["event_id"]

    async def wait_for_message(
        self, server: FederatingServer, token: str, room_id: str, body: str
    ) -> dict:
        """Long-polls /sync until `body` shows up in the room's timeline (at most ~20 s)."""
        since = None
        for _ in range(20):
            path = f"{V3}/sync?timeout=1000" + (f"&since={since}" if since else "")
            response = await server.client.get(path, token)
            assert response.code == 200, response.json
            since = response.json["next_batch"]
            room = response.json["rooms"]["join"].get(room_id, {})
            for event in room.get("timeline", {}).get("events", []):
                if event["content"].get("body") == body:
                    return event
        self.fail(f"{body!r} never reached {server.server_name}")

    async def shared_room(self) -> str:
        """A public room of alice's on A that bob on B has joined."""
        room_id = await self.create_public_room()
        joined = await self.b.client.post(
            f"{V3}/join/{quote(room_id)}?via={quote(self.a.server_name)}", {}, self.bob_token
        )
        assert joined.code == 200, joined.json
        return room_id

    async def sync_until(
        self, server, token: str, found, what: str, rounds: int = 20, since: str | None = None
    ):
        """Long-polls /sync (from `since`) until `found(response_json)` returns something
        truthy; the response's next_batch is left in self.next_batch."""
        for _ in range(rounds):
            path = f"{V3}/sync?timeout=1000" + (f"&since={since}" if since else "")
            response = await server.client.get(path, token)
            assert response.code == 200, response.json
            since = self.next_batch = response.json["next_batch"]
            result = found(response.json)
            if result:
                return result
        self.fail(f"{what} never reached {server.server_name}")
