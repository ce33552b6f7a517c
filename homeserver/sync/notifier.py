"""Wakes long-polling /sync requests when something they can see happens.

Each waiting request registers the user it serves. The persister reports new events; every
user in the event's room (and the target of a membership event, who may not be in it yet) is
woken. Per-user streams (account data) wake just that user. A waiter then rebuilds its answer
from the database, so the notifier carries no data, only "look again".
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet import defer

from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.sync.sources import SyncSource
from homeserver.sync.tokens import StreamToken
from storage.store import Storage


class Notifier:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.clock = clock
        self._waiters: dict[str, set[defer.Deferred]] = {}
        self.wakeups = 0
        self.sources: list[SyncSource] = []

    def add_source(self, source: SyncSource) -> None:
        self.sources.append(source)

    def current_token(self) -> StreamToken:
        positions = {source.stream: source.current_position() for source in self.sources}
        return StreamToken(
            events=self.storage.persister.max_stream_ordering,
            account_data=self.storage.account_data.stream.current,
            **positions,
        )

    async def wake_room(self, room_id: str) -> None:
        """Wakes the room's joined members (for typing and receipts)."""
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is not None:
            self.wake_users(snapshot.joined_users())

    def on_new_events(self, events: list[Event]) -> None:
        """Observer of the persister: called after commit, with the caches already updated."""
        users: set[str] = set()
        for event in events:
            snapshot = self.storage.state.snapshots.get(event.room_id)
            if snapshot is not None:
                users.update(
                    user for user, m in snapshot.memberships.items() if m in ("join", "invite")
                )
            if event.type == "m.room.member" and event.state_key:
                users.add(event.state_key)
        self.wake_users(users)

    def wake_users(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            waiters = self._waiters.pop(user_id, None)
            if not waiters:
                continue
            for waiter in waiters:
                if not waiter.called:
                    self.wakeups += 1
                    waiter.callback(None)

    async def wait_for_change(
        self, user_id: str, timeout_seconds: float, seen: StreamToken
    ) -> None:
        """Returns when `user_id` is woken or the timeout passes, whichever comes first.

        `seen` is the position the caller's last look covered: anything committed since then
        (while it was looking) returns at once, so no wake-up falls between look and wait."""
        if self.current_token().advanced_past(seen):
            return
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.setdefault(user_id, set()).add(waiter)
        timer = self.clock.call_later(timeout_seconds, _fire, waiter)
        try:
            await waiter
        finally:
            if timer.active():
                timer.cancel()
            waiters = self._waiters.get(user_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[user_id]


def _fire(waiter: defer.Deferred) -> None:
    if not waiter.called:
        waiter.callback(None)
