"""Running one piece of work for many callers who ask for the same thing at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

V = TypeVar("V")


class Coalescer(Generic[V]):
    """`await run(key, work)`: while work for `key` is under way, later callers wait for its
    result instead of starting their own (one thumbnail made, one page fetched).

    The work runs apart from every caller, so a caller that is cancelled (its client went away)
    neither cancels it nor disturbs the others.
    """

    def __init__(self) -> None:
        self._waiting: dict[Hashable, list[defer.Deferred[V]]] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[V]]) -> V:
        waiter: defer.Deferred[V] = defer.Deferred()
        waiters = self._waiting.get(key)
        if waiters is not None:
            waiters.append(waiter)
        else:
            # Registered before the work starts, in case it finishes synchronously.
            self._waiting[key] = [waiter]
            defer.ensureDeferred(self._run(key, work))
        return await waiter

    async def _run(self, key: Hashable, work: Callable[[], Awaitable[V]]) -> None:
        result: V | Failure
        try:
            result = await work()
        except Exception:
            result = Failure()
        for waiter in self._waiting.pop(key, []):
            if waiter.called:
                continue  # cancelled
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)
