"""Recomputing derived rows (room stats, user directory entries) after events, coalesced.

Observers of the persister run on the reactor after each commit and must not block it, so they
only schedule work here. A key scheduled while its refresh runs is refreshed once more after,
so bursts (a profile change touching fifty rooms) cost at most two runs per key, and the last
run always sees the newest state. Readers call `flush()` first: a client that changed something
and then searches sees its change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from twisted.internet import defer

logger = logging.getLogger(__name__)


class Refresher:
    def __init__(self, name: str, refresh: Callable[[str], Awaitable[None]]) -> None:
        self.name = name
        self._refresh = refresh
        self._running: dict[str, defer.Deferred] = {}
        self._again: set[str] = set()

    def schedule(self, key: str) -> None:
        if key in self._running:
            self._again.add(key)
            return
        # Registered before the run starts: a refresh that finishes without waiting must still
        # find its own entry to remove.
        done: defer.Deferred = defer.Deferred()
        self._running[key] = done
        defer.ensureDeferred(self._run(key)).addBoth(lambda _: done.callback(None))

    async def _run(self, key: str) -> None:
        try:
            while True:
                self._again.discard(key)
                try:
                    await self._refresh(key)
                except Exception:
                    logger.exception("%s: refreshing %s failed", self.name, key)
                if key not in self._again:
                    return
        finally:
            self._running.pop(key, None)

    async def flush(self) -> None:
        """Returns once every refresh scheduled before the call has finished."""
        if self._running:
            await defer.DeferredList(list(self._running.values()))

    def pending(self) -> int:
        return len(self._running)
