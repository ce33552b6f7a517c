"""What the client API tests share: a fresh server per test with registered users."""

from __future__ import annotations

from twisted.internet import defer
from twisted.trial import unittest

from tests.harness import TestServer

V3 = "/_matrix/client/v3"


class ClientTestCase(unittest.TestCase):
    """Starts a TestServer and registers `users` (self.<name>, self.<name>_token) per test."""

    users: tuple[str, ...] = ("alice", "bob")

    def setUp(self) -> defer.Deferred:
        self.server = TestServer()
        return defer.ensureDeferred(self._start())

    async def _start(self) -> None:
        await self.server.start()
        self.client = self.server.client
        for name in self.users:
            user_id, token = await self.client.register(name)
            setattr(self, name, user_id)
            setattr(self, f"{name}_token", token)

    def tearDown(self) -> defer.Deferred:
        return defer.ensureDeferred(self.server.stop())
