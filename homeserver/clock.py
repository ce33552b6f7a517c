"""Time from the reactor, so tests can drive it with twisted.internet.task.Clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall


class Clock:
    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def time(self) -> float:
        return self.reactor.seconds()

    def time_msec(self) -> int:
        return int(self.reactor.seconds() * 1000)

    def call_later(self, seconds: float, fn: Callable[..., Any], *args: Any) -> IDelayedCall:
        return self.reactor.callLater(seconds, fn, *args)

    def looping_call(self, seconds: float, fn: Callable[[], Any]) -> task.LoopingCall:
        call = task.LoopingCall(fn)
        call.clock = self.reactor
        call.start(seconds, now=False)
        return call

    async def sleep(self, seconds: float) -> None:
        await task.deferLater(self.reactor, seconds, lambda: None)

    def defer_later(self, seconds: float) -> defer.Deferred:
        return task.deferLater(self.reactor, seconds, lambda: None)
