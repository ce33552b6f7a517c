"""GET /admin/whois/{userId} and GET /voip/turnServer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote

from twisted.internet import defer

from homeserver.admin_client import registration_mac
from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase
from tests.harness import TestServer

ADMIN_REGISTER = "/_synapse/admin/v1/register"


class WhoisTests(ClientTestCase):
    async def register_admin(self) -> str:
        nonce = (await self.client.get(ADMIN_REGISTER)).json["nonce"]
        mac = registration_mac("test-shared-secret", nonce, "root", "pw", True, None)
        response = await self.client.post(
            ADMIN_REGISTER,
            {"nonce": nonce, "username": "root", "password": "pw", "admin": True, "mac": mac},
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json["access_token"]

    def path(self, user_id: str) -> str:
        return f"{V3}/admin/whois/{quote(user_id)}"

    @async_test
    async def test_user_sees_own_sessions(self) -> None:
        response = await self.client.request(
            "GET", self.path(self.alice), token=self.alice_token, headers={"User-Agent": "probe/1"}
        )
        self.assertEqual(response.code, 200, response.json)
        self.assertEqual(response.json["user_id"], self.alice)
        [(device_id, device)] = response.json["devices"].items()
        [session] = device["sessions"]
        [connection] = session["connections"]
        self.assertEqual(connection["ip"], "127.0.0.1")
        self.assertEqual(connection["user_agent"], "probe/1")
        self.assertIsInstance(connection["last_seen"], int)
        devices = await self.client.get(f"{V3}/devices", self.alice_token)
        self.assertEqual([d["device_id"] for d in devices.json["devices"]], [device_id])

    @async_test
    async def test_admin_sees_anyone_others_do_not(self) -> None:
        admin_token = await self.register_admin()
        response = await self.client.get(self.path(self.bob), admin_token)
        self.assertEqual(response.code, 200, response.json)
        self.assertEqual(response.json["user_id"], self.bob)
        self.assertEqual(len(response.json["devices"]), 1)
        refused = await self.client.get(self.path(self.bob), self.alice_token)
        self.assertEqual((refused.code, refused.json["errcode"]), (403, "M_FORBIDDEN"))
        unknown = await self.client.get(self.path("@ghost:test.local"), admin_token)
        self.assertEqual((unknown.code, unknown.json["errcode"]), (404, "M_NOT_FOUND"))
        # A non-admin cannot learn whether an account exists.
        probing = await self.client.get(self.path("@ghost:test.local"), self.alice_token)
        self.assertEqual(probing.code, 403)


class ConfiguredTestCase(ClientTestCase):
    """A ClientTestCase whose server starts with `server_config` overrides."""

    server_config: dict = {}

    def setUp(self) -> defer.Deferred:
        self.server = TestServer(**self.server_config)
        return defer.ensureDeferred(self._start())


class TurnSharedSecretTests(ConfiguredTestCase):
    server_config = {
        "turn_uris": ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:443"],
        "turn_shared_secret": "coturn-secret",
        "turn_user_lifetime": "1d",
        "allow_guest_access": True,
    }

    @async_test
    async def test_shared_secret_credentials(self) -> None:
        response = await self.client.get(f"{V3}/voip/turnServer", self.alice_token)
        self.assertEqual(response.code, 200, response.json)
        body = response.json
        self.assertEqual(body["uris"], self.server_config["turn_uris"])
        self.assertEqual(body["ttl"], 86400)
        expiry, _, user = body["username"].partition(":")
        self.assertEqual(user, self.alice)
        self.assertLess(abs(int(expiry) - (time.time() + 86400)), 60)
        # What coturn computes with static-auth-secret, written out independently.
        want = base64.b64encode(
            hmac.new(b"coturn-secret", body["username"].encode(), hashlib.sha1).digest()
        ).decode()
        self.assertEqual(body["password"], want)
        anonymous = await self.client.get(f"{V3}/voip/turnServer")
        self.assertEqual(anonymous.code, 401)

    @async_test
    async def test_guests_allowed_by_default(self) -> None:
        guest = await self.client.post(f"{V3}/register?kind=guest", {})
        self.assertEqual(guest.code, 200, guest.json)
        response = await self.client.get(f"{V3}/voip/turnServer", guest.json["access_token"])
        self.assertEqual(response.code, 200, response.json)
        self.assertTrue(response.json["username"].endswith(":" + guest.json["user_id"]))


class TurnStaticCredentialTests(ConfiguredTestCase):
    server_config = {
        "turn_uris": ["turn:turn.example.com"],
        "turn_username": "fixed",
        "turn_password": "secret",
        "turn_allow_guests": False,
        "allow_guest_access": True,
    }

    @async_test
    async def test_static_credentials(self) -> None:
        response = await self.client.get(f"{V3}/voip/turnServer", self.alice_token)
        self.assertEqual(
            response.json,
            {
                "username": "fixed",
                "password": "secret",
                "uris": ["turn:turn.example.com"],
                "ttl": 3600,
            },
        )

    @async_test
    async def test_guests_refused_when_configured(self) -> None:
        guest = await self.client.post(f"{V3}/register?kind=guest", {})
        self.assertEqual(guest.code, 200, guest.json)
        response = await self.client.get(f"{V3}/voip/turnServer", guest.json["access_token"])
        self.assertEqual((response.code, response.json["errcode"]), (403, "M_FORBIDDEN"))


class NoTurnTests(ClientTestCase):
    @async_test
    async def test_no_turn_server_is_an_empty_object(self) -> None:
        response = await self.client.get(f"{V3}/voip/turnServer", self.alice_token)
        self.assertEqual((response.code, response.json), (200, {}))
