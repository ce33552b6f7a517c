"""What the email tests share: a real SMTP server on loopback, and a homeserver that mails it.

The SMTP server is aiosmtpd, which runs its own asyncio loop in a thread; the homeserver sends
to it with Twisted's SMTP client on the test's reactor, over a real TCP connection.
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import treq
from aiosmtpd.controller import Controller
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from tests.harness import Response, TestClient, TestServer

V3 = "/_matrix/client/v3"
PASSWORD = "correct horse"
SENDER = "noreply@test.local"
_LINK_RE = re.compile(r"https?://\S+submit_token\?\S+")


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def part(self, content_type: str) -> str:
        found = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        assert found is not None and found.get_content_type() == content_type, content_type
        return found.get_content()

    @property
    def link(self) -> str:
        """The validation link in the text part."""
        match = _LINK_RE.search(self.part("text/plain"))
        assert match is not None, self.part("text/plain")
        return match.group(0)


class _LoopbackController(Controller):
    """aiosmtpd's threaded controller on a port the system picks (port=0)."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class MailSink:
    """A real SMTP server on 127.0.0.1 that keeps every message it accepts."""

    def __init__(self, **smtp_options: Any) -> None:
        self.received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self.controller = _LoopbackController(self, hostname="127.0.0.1", port=0, **smtp_options)

    def start(self) -> int:
        self.controller.start()
        return self.controller.port

    def stop(self) -> None:
        self.controller.stop()

    # aiosmtpd calls this in its own thread for each message.
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self.received)

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[ReceivedMail]:
        """The first `count` mails, once that many have arrived."""
        waited = 0.0
        while len(self.mails) < count:
            if waited > timeout_s:
                raise AssertionError(f"expected {count} mails, got {len(self.mails)}")
            await task.deferLater(reactor, 0.02, lambda: None)
            waited += 0.02
        return self.mails[:count]


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


def email_section(port: int, **overrides: Any) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "notif_from": f"Your Friendly %(app)s homeserver <{SENDER}>",
        "app_name": "TestApp",
        **overrides,
    }


@dataclass
class Page:
    code: int
    content_type: str
    text: str
    headers: Any


class EmailTestCase(unittest.TestCase):
    """A MailSink and a TestServer whose `email` section points at it, per test.

    `email_config` adds to (or, with None values, drops from) the email section;
    `server_config` is the rest of the homeserver config.
    """

    email_config: dict[str, Any] = {}
    server_config: dict[str, Any] = {}
    smtp_options: dict[str, Any] = {}

    def setUp(self) -> defer.Deferred:
        self.sink = MailSink(**self.smtp_options)
        port = self.sink.start()
        self.addCleanup(self.sink.stop)
        section = {k: v for k, v in email_section(port, **self.email_config).items() if v is not None}
        self.server = TestServer(**{"email": section, **self.server_config})
        return defer.ensureDeferred(self._start())

    async def _start(self) -> None:
        await self.server.start()
        assert self.server.client is not None
        self.client: TestClient = self.server.client

    def tearDown(self) -> defer.Deferred:
        return defer.ensureDeferred(self.server.stop())

    # Requests ---------------------------------------------------------------------------------

    async def request_token(
        self,
        path: str,
        address: str,
        client_secret: str = "s3cret",
        send_attempt: int = 1,
    ) -> Response:
        body = {"client_secret": client_secret, "email": address, "send_attempt": send_attempt}
        return await self.client.post(f"{V3}{path}/email/requestToken", body)

    async def sid_for(self, path: str, address: str, client_secret: str = "s3cret") -> str:
        response = await self.request_token(path, address, client_secret)
        self.assertEqual(response.code, 200, response.json)
        self.assertEqual(set(response.json), {"sid"})
        return response.json["sid"]

    async def register(self, username: str, address: str | None = None) -> tuple[str, str]:
        """Registers through the dummy flow (or the email one when `address` is given, the
        whole exchange with the mail); returns (user_id, access_token)."""
        if address is None:
            return await self.client.register(username, PASSWORD)
        body = {"username": username, "password": PASSWORD}
        session = (await self.client.post(f"{V3}/register", body)).json["session"]
        before = len(self.sink.mails)
        sid = await self.sid_for("/register", address)
        mail = (await self.sink.wait_for(before + 1))[-1]
        page = await self.follow(mail.link)
        self.assertEqual(page.code, 200, page.text)
        response = await self.client.post(
            f"{V3}/register", {**body, "auth": email_auth(sid, session=session)}
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json["user_id"], response.json["access_token"]

    async def login(self, identifier: dict[str, Any], password: str = PASSWORD) -> Response:
        body = {"type": "m.login.password", "identifier": identifier, "password": password}
        return await self.client.post(f"{V3}/login", body)

    async def threepids(self, token: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"{V3}/account/3pid", token)
        self.assertEqual(response.code, 200, response.json)
        return response.json["threepids"]

    # Links ------------------------------------------------------------------------------------

    def local(self, link: str) -> str:
        """The link as this test reaches it: mails point at public_baseurl, the test server
        listens on a port picked at start."""
        base = self.server.config.public_baseurl
        self.assertTrue(link.startswith(base), link)
        return f"{self.server.base_url}/{link[len(base):]}"

    async def follow(self, link: str, method: str = "GET", form: dict | None = None) -> Page:
        """Opens a link from a mail over real HTTP, as a browser would."""
        response = await treq.request(
            method, self.local(link), data=form, persistent=False
        )
        body = await response.content()
        content_type = response.headers.getRawHeaders(b"Content-Type", [b""])[0].decode()
        return Page(response.code, content_type, body.decode("utf-8"), response.headers)


def email_auth(sid: str, client_secret: str = "s3cret", session: str | None = None) -> dict:
    auth: dict[str, Any] = {
        "type": "m.login.email.identity",
        "threepid_creds": {"sid": sid, "client_secret": client_secret},
    }
    if session is not None:
        auth["session"] = session
    return auth
