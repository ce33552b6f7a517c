"""The user-interactive auth engine on its own: what a stage establishes reaches the request
that completes the flow, across requests and restarts, and per-call stage checkers."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from homeserver.accounts.uia import InteractiveAuth
from homeserver.clock import Clock
from homeserver.errors import InteractiveAuthRequired, MatrixError
from tests.asyncutil import async_test
from tests.harness import TestStorage

FLOWS = [["test.first", "test.second"]]


async def first(auth: dict[str, Any], user_id: str | None) -> dict[str, Any]:
    return {"address": auth["address"]}


async def second(auth: dict[str, Any], user_id: str | None) -> None:
    if auth.get("ok") is not True:
        raise MatrixError(401, "M_UNAUTHORIZED", "not ok")


class StageResultTests(unittest.TestCase):
    def setUp(self) -> defer.Deferred:
        from twisted.internet import reactor

        self.clock = Clock(reactor)
        self.test_storage = TestStorage()
        self.addCleanup(self.test_storage.stop)
        return defer.ensureDeferred(self.test_storage.start())

    def engine(self, **checkers: Any) -> InteractiveAuth:
        return InteractiveAuth(self.test_storage.storage.accounts, self.clock, checkers)

    async def attempt(self, engine: InteractiveAuth, auth: dict, **kwargs: Any) -> dict:
        try:
            await engine.check(auth, FLOWS, "/op", "POST", None, **kwargs)
        except InteractiveAuthRequired as challenge:
            return challenge.body
        raise AssertionError("the flow completed too early")

    @async_test
    async def test_result_of_an_earlier_stage_survives_a_new_engine(self) -> None:
        challenge = await self.attempt(
            self.engine(**{"test.first": first, "test.second": second}),
            {"type": "test.first", "address": "a@example.org"},
        )
        self.assertEqual(challenge["completed"], ["test.first"])
        session = challenge["session"]
        # A failed later stage keeps what the first one established.
        failed = await self.attempt(
            self.engine(**{"test.first": first, "test.second": second}),
            {"type": "test.second", "session": session},
        )
        self.assertEqual(failed["errcode"], "M_UNAUTHORIZED")
        # A fresh engine (as after a restart) reads it back from the database.
        result = await self.engine(**{"test.first": first, "test.second": second}).check(
            {"type": "test.second", "ok": True, "session": session}, FLOWS, "/op", "POST", None
        )
        self.assertEqual(result.completed, ("test.first", "test.second"))
        self.assertEqual(dict(result.results), {"test.first": {"address": "a@example.org"}})

    @async_test
    async def test_per_call_checkers(self) -> None:
        engine = self.engine(**{"test.second": second})
        # Without the per-call checker the first stage is not offered.
        unknown = await self.attempt(engine, {"type": "test.first", "address": "x"})
        self.assertEqual(unknown["errcode"], "M_UNRECOGNIZED")
        challenge = await self.attempt(
            engine, {"type": "test.first", "address": "x"}, checkers={"test.first": first}
        )
        self.assertEqual(challenge["completed"], ["test.first"])
