"""Presence (client-server spec, "Presence"): online / unavailable / offline, a status message
and the last time the user was active, for each local user; the presence stream in /sync.

How a user's state moves (times are attributes so tests can shorten them):
- PUT /presence/{userId}/status sets the state and message, and counts as activity.
- Activity (sending any event, PUT presence) makes the user online and bumps last_active.
- A /sync with set_presence=online (the default) brings an offline user online, and an
  unavailable one back online when it was a sync (set_presence=unavailable) that made them
  unavailable. It does not undo "unavailable" set by the user or by the idle timer: a client
  that merely keeps syncing is not a user at the keyboard.
- set_presence=unavailable makes the user unavailable; set_presence=offline changes nothing and
  does not count as being connected.
- Online without activity for `idle_timeout` seconds becomes unavailable (spec: idle timeout).
- With no /sync in progress for `sync_grace` seconds after the last one (or the last activity)
  ended, the user goes offline: "offline" means not connected to an event stream.

Clients are told only when the state or the message changes. `currently_active` is true exactly
while the user is online, which the idle timer bounds, so bumps of last_active between changes
need no update (spec: "Last active ago").

With `presence.enabled: false` (as Synapse): nothing is tracked or stored, PUT is accepted and
ignored, GET answers "offline", /sync has no presence.

The state of every user with stored presence is kept in memory: it is small, and /sync reads it
on every call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall

from homeserver.clock import Clock
from homeserver.ephemeral.common import (
    OrderedWakeups,
    PositionLog,
    joined_rooms,
    run_in_background,
)
from homeserver.ephemeral.presence_sync import PresenceSync
from homeserver.errors import forbidden
from homeserver.events.event import Event
from homeserver.identifiers import server_of
from homeserver.sync.notifier import Notifier
from homeserver.sync.sources import SyncContext
from storage.presence import StoredPresence
from storage.store import Storage

ONLINE = "online"
UNAVAILABLE = "unavailable"
OFFLINE = "offline"
STATES = (ONLINE, UNAVAILABLE, OFFLINE)

IDLE_TIMEOUT_SECONDS = 5 * 60
SYNC_GRACE_SECONDS = 30
# Activity that changes nothing visible is written at most this often (it only matters for
# last_active_ago after a restart).
ACTIVITY_WRITE_INTERVAL_MS = 60_000


@dataclass(frozen=True)
class UserPresence:
    user_id: str
    state: str = OFFLINE
    status_msg: str | None = None
    last_active_ts: int = 0
    stream_id: int = 0
    # What set the state: "user" (PUT), "sync", "activity" or "server" (timers). Not stored.
    set_by: str = "server"

    def content(self, now_ms: int) -> dict[str, Any]:
        """The m.presence content and GET /presence body."""
        content: dict[str, Any] = {
            "presence": self.state,
            "currently_active": self.state == ONLINE,
        }
        if self.last_active_ts:
            content["last_active_ago"] = max(0, now_ms - self.last_active_ts)
        if self.status_msg is not None:
            content["status_msg"] = self.status_msg
        return content


class PresenceService:
    """Presence of local users; a SyncSource for the `presence` stream."""

    stream = "presence"

    def __init__(
        self,
        storage: Storage,
        notifier: Notifier,
        clock: Clock,
        server_name: str,
        *,
        enabled: bool = True,
    ) -> None:
        self.storage = storage
        self.notifier = notifier
        self.clock = clock
        self.server_name = server_name
        self.enabled = enabled
        self.idle_timeout = IDLE_TIMEOUT_SECONDS
        self.sync_grace = SYNC_GRACE_SECONDS
        self.states: dict[str, UserPresence] = {}
        self.log = PositionLog()
        self._syncs: dict[str, int] = {}  # user -> /sync requests in progress that count
        # user -> waiters for the user's presence change being written right now (see syncing)
        self._writing: dict[str, list[defer.Deferred[None]]] = {}
        self._last_sync: dict[str, float] = {}  # user -> when their last such /sync ended
        self._written_active: dict[str, int] = {}  # user -> last_active_ts in the database
        self._timers: dict[str, IDelayedCall] = {}
        # Requests still finishing after stop() must not start new timers.
        self._stopped = False
        self._wakeups = OrderedWakeups(storage.presence.stream)
        self._sync = PresenceSync(self)
        # Told of each visible change of a local user's presence: federation passes it on.
        self.local_change_observers: list[Callable[[UserPresence], None]] = []

    async def start(self) -> None:
        """Loads stored presence; users shown as connected get `sync_grace` to reconnect."""
        self.log = PositionLog(floor=self.storage.presence.stream.current)
        if not self.enabled:
            return
        now = self.clock.time()
        for stored in await self.storage.presence.get_all():
            if server_of(stored.user_id) != self.server_name:
                continue  # other servers' users: their servers tell us again when it changes
            self.states[stored.user_id] = UserPresence(
                stored.user_id,
                stored.state,
                stored.status_msg,
                stored.last_active_ts,
                stored.stream_id,
            )
            self._written_active[stored.user_id] = stored.last_active_ts
            if stored.state != OFFLINE:
                self._last_sync[stored.user_id] = now
                self._reschedule(stored.user_id)

    def stop(self) -> None:
        self._stopped = True
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()

    def current_position(self) -> int:
        return self.storage.presence.stream.current

    def get(self, user_id: str) -> UserPresence:
        return self.states.get(user_id) or UserPresence(user_id)

    # -- what clients do -----------------------------------------------------------------------

    async def get_presence(self, viewer: str, user_id: str) -> dict[str, Any]:
        """GET /presence/{userId}/status: yourself, or someone you share a room with."""
        if viewer != user_id and not await self.shares_room(viewer, user_id):
            raise forbidden("You are not allowed to see their presence")
        if not self.enabled:
            return {"presence": OFFLINE}
        return self.get(user_id).content(self.clock.time_msec())

    async def set_presence(self, user_id: str, state: str, status_msg: str | None) -> None:
        """PUT /presence/{userId}/status: an explicit choice, and activity."""
        if not self.enabled:
            return
        await self._update(
            user_id,
            state=state,
            status_msg=status_msg,
            last_active_ts=self.clock.time_msec(),
            set_by="user",
        )

    @asynccontextmanager
    async def syncing(self, user_id: str, set_presence: str) -> AsyncIterator[None]:
        """Wraps one /sync request: the user counts as connected while it runs."""
        if not self.enabled or set_presence == OFFLINE:
            yield
            return
        self._syncs[user_id] = self._syncs.get(user_id, 0) + 1
        try:
            if user_id in self._writing:
                # A change still being written (activity recorded in the background) would
                # otherwise land just after this sync's token and wake the next long-poll.
                waiter: defer.Deferred[None] = defer.Deferred()
                self._writing[user_id].append(waiter)
                await waiter
            await self._sync_started(user_id, set_presence)
            yield
        finally:
            self._syncs[user_id] -= 1
            if not self._syncs[user_id]:
                del self._syncs[user_id]
            self._last_sync[user_id] = self.clock.time()
            self._reschedule(user_id)

    async def _sync_started(self, user_id: str, set_presence: str) -> None:
        current = self.get(user_id)
        if set_presence == ONLINE and (
            current.state == OFFLINE or (current.state == UNAVAILABLE and current.set_by == "sync")
        ):
            # Coming online is a pro-active change (spec), so it is activity too.
            now_ms = self.clock.time_msec()
            await self._update(user_id, state=ONLINE, last_active_ts=now_ms, set_by="sync")
        elif set_presence == UNAVAILABLE and current.state != UNAVAILABLE:
            await self._update(user_id, state=UNAVAILABLE, set_by="sync")
        else:
            self._reschedule(user_id)

    def on_new_events(self, events: list[Event]) -> None:
        """Persister observer: an event sent by a local user is activity."""
        if not self.enabled:
            return
        senders = {e.sender for e in events if server_of(e.sender) == self.server_name}
        for sender in senders:
            run_in_background("presence activity", self.bump_activity(sender))

    async def bump_activity(self, user_id: str) -> None:
        if not self.enabled:
            return
        now_ms = self.clock.time_msec()
        if self.get(user_id).state != ONLINE:
            await self._update(user_id, state=ONLINE, last_active_ts=now_ms, set_by="activity")
        else:
            await self._update(user_id, last_active_ts=now_ms)

    async def set_remote(
        self,
        user_id: str,
        state: str,
        status_msg: str | None,
        last_active_ago: int | None,
    ) -> None:
        """Another server's user's presence, as their server told us (no timers of ours: their
        server says when it changes)."""
        if not self.enabled or state not in STATES or server_of(user_id) == self.server_name:
            return
        now = self.clock.time_msec()
        last_active = now - last_active_ago if last_active_ago is not None else 0
        await self._update(user_id, state=state, status_msg=status_msg,
                           last_active_ts=last_active, set_by="server")

    # -- changes -------------------------------------------------------------------------------

    async def _update(self, user_id: str, **changes: Any) -> None:
        before = self.get(user_id)
        after = replace(before, **changes)
        if (after.state, after.status_msg) == (before.state, before.status_msg):
            # Nothing clients see changed: no stream position, at most a throttled write.
            self.states[user_id] = after
            await self._write_activity(after)
            self._reschedule(user_id)
            return
        stream = self.storage.presence.stream
        position = stream.allocate()
        after = replace(after, stream_id=position)
        self.states[user_id] = after
        self._writing.setdefault(user_id, [])
        try:
            await self.storage.presence.put(
                StoredPresence(
                    user_id, after.state, after.status_msg, after.last_active_ts, position
                )
            )
        finally:
            stream.finish(position)
            for waiter in self._writing.pop(user_id, []):
                waiter.callback(None)
        self._written_active[user_id] = after.last_active_ts
        self.log.note(position, user_id)
        self._wakeups.committed(
            position, lambda: run_in_background("presence wake-up", self._wake(user_id))
        )
        if server_of(user_id) != self.server_name:
            return
        for observer in self.local_change_observers:
            observer(after)
        self._reschedule(user_id)

    async def _write_activity(self, presence: UserPresence) -> None:
        written = self._written_active.get(presence.user_id)
        if written is None or presence.last_active_ts - written < ACTIVITY_WRITE_INTERVAL_MS:
            return
        self._written_active[presence.user_id] = presence.last_active_ts
        await self.storage.presence.touch(presence.user_id, presence.last_active_ts)

    async def _wake(self, user_id: str) -> None:
        """Wakes the user and everyone who shares a room with them."""
        users = {user_id}
        for room_id in await joined_rooms(self.storage, user_id):
            snapshot = await self.storage.state.get_snapshot(room_id)
            if snapshot is not None:
                users.update(snapshot.joined_users())
        self.notifier.wake_users(users)

    async def shares_room(self, user_id: str, other: str) -> bool:
        mine = await joined_rooms(self.storage, user_id)
        return bool(mine) and not mine.isdisjoint(await joined_rooms(self.storage, other))

    # -- timers --------------------------------------------------------------------------------

    def _deadline(self, user_id: str) -> float | None:
        """When the user's state is next due to change by itself, if ever."""
        if server_of(user_id) != self.server_name:
            return None  # another server's user: their server says when it changes
        presence = self.get(user_id)
        deadlines = []
        if presence.state == ONLINE:
            deadlines.append(presence.last_active_ts / 1000 + self.idle_timeout)
        if presence.state != OFFLINE and user_id not in self._syncs:
            deadlines.append(self._offline_at(presence))
        return min(deadlines) if deadlines else None

    def _offline_at(self, presence: UserPresence) -> float:
        last_seen = max(self._last_sync.get(presence.user_id, 0), presence.last_active_ts / 1000)
        return last_seen + self.sync_grace

    def _reschedule(self, user_id: str) -> None:
        timer = self._timers.pop(user_id, None)
        if timer is not None and timer.active():
            timer.cancel()
        deadline = self._deadline(user_id)
        if deadline is not None and not self._stopped:
            delay = max(0.0, deadline - self.clock.time())
            self._timers[user_id] = self.clock.call_later(delay, self._on_timer, user_id)

    def _on_timer(self, user_id: str) -> None:
        self._timers.pop(user_id, None)
        run_in_background("presence timeout", self._apply_timeouts(user_id))

    async def _apply_timeouts(self, user_id: str) -> None:
        presence = self.get(user_id)
        now = self.clock.time()
        if presence.state != OFFLINE and user_id not in self._syncs:
            if now >= self._offline_at(presence):
                await self._update(user_id, state=OFFLINE, set_by="server")
                return
        if presence.state == ONLINE and now >= presence.last_active_ts / 1000 + self.idle_timeout:
            await self._update(user_id, state=UNAVAILABLE, set_by="server")
            return
        self._reschedule(user_id)

    # -- SyncSource ----------------------------------------------------------------------------

    async def may_have_news(self, user_id: str, device_id: str | None, since: int) -> bool:
        return self.enabled and await self._sync.may_have_news(user_id, since)

    async def add_to_sync(self, context: SyncContext) -> None:
        if self.enabled:
            await self._sync.add_to_sync(context)
