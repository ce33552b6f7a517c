"""What the account tests share: a started TestServer per test, and login / UIA helpers."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from tests.harness import Response, TestClient, TestServer

V3 = "/_matrix/client/v3"
PASSWORD = "correct horse"


def password_auth(user: str, password: str = PASSWORD, session: str | None = None) -> dict:
    auth: dict[str, Any] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    }
    if session is not None:
        auth["session"] = session
    return auth


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


class AccountsTestCase(unittest.TestCase):
    """Starts `TestServer(**server_config)` before each test and stops it after."""

    server_config: dict[str, Any] = {}

    def setUp(self) -> defer.Deferred:
        self.server = TestServer(**self.server_config)
        return defer.ensureDeferred(self._start())

    async def _start(self) -> None:
        await self.server.start()
        assert self.server.client is not None
        self.client: TestClient = self.server.client

    def tearDown(self) -> defer.Deferred:
        return defer.ensureDeferred(self.server.stop())

    async def other_server(self, **overrides: Any) -> TestServer:
        """A second server with a different config, stopped when the test ends."""
        server = TestServer(**overrides)
        await server.start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        return server

    async def login(self, user: str, password: str = PASSWORD, **extra: Any) -> Response:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
            **extra,
        }
        return await self.client.post(f"{V3}/login", body)

    async def login_ok(self, user: str, password: str = PASSWORD, **extra: Any) -> dict:
        response = await self.login(user, password, **extra)
        self.assertEqual(response.code, 200, response.json)
        return response.json

    async def whoami(self, token: str) -> Response:
        return await self.client.get(f"{V3}/account/whoami", token)

    async def assert_token_dead(self, token: str, soft_logout: bool = False) -> None:
        response = await self.whoami(token)
        self.assertEqual(response.code, 401, response.json)
        self.assertEqual(response.json["errcode"], "M_UNKNOWN_TOKEN")
        self.assertEqual(response.json["soft_logout"], soft_logout)

    async def uia_session(self, method: str, path: str, body: dict, token: str) -> str:
        """Sends `body` without auth; asserts the 401 password challenge; returns its session."""
        response = await self.client.request(method, path, body, token)
        self.assertEqual(response.code, 401, response.json)
        self.assertEqual(response.json["flows"], [{"stages": ["m.login.password"]}])
        self.assertIsInstance(response.json["session"], str)
        return response.json["session"]

    async def with_password(
        self, method: str, path: str, body: dict, token: str, user: str, password: str = PASSWORD
    ) -> Response:
        """The whole two-request UIA exchange with the user's password."""
        session = await self.uia_session(method, path, body, token)
        auth = password_auth(user, password, session)
        return await self.client.request(method, path, {**body, "auth": auth}, token)
