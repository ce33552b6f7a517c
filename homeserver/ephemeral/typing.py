"""Typing notifications: who is typing in each room, kept in memory only, and the typing
stream that feeds `m.typing` into /sync (client-server spec, "Typing Notifications").

Stream positions follow the wall clock (in milliseconds, never going backwards within a
process): nothing of typing is stored, so a restarted server could not otherwise continue
above the positions in tokens that clients still hold, and a token from the future would be
capped to "now" and miss the next changes. Two changes in the same millisecond take the next
integer, so the only way to fall behind an older process is to sustain more than a thousand
changes per second for longer than the restart takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall

from homeserver.clock import Clock
from homeserver.ephemeral.common import (
    add_ephemeral,
    ephemeral_allowed,
    joined_rooms,
    require_joined,
    rooms_joined_since,
    run_in_background,
)
from homeserver.events.event import Event
from homeserver.sync.notifier import Notifier
from homeserver.sync.sources import SyncContext
from storage.store import Storage
from storage.streams import ChangeTracker

TYPING = "m.typing"
# When a client says it is typing without a timeout.
DEFAULT_TIMEOUT_MS = 30_000
# The spec asks clients to renew every 20-30 s with a 5 s margin, so any well-behaved client
# fits in a minute; the cap bounds how long a client that crashed mid-sentence shows as typing.
MAX_TIMEOUT_MS = 60_000


class TypingService:
    """Who is typing where; a SyncSource for the `typing` stream."""

    stream = "typing"

    def __init__(self, storage: Storage, notifier: Notifier, clock: Clock) -> None:
        self.storage = storage
        self.notifier = notifier
        self.clock = clock
        # room_id -> user_id -> the timer that ends their typing.
        self._typing: dict[str, dict[str, IDelayedCall]] = {}
        self._position = clock.time_msec()
        self.changes = ChangeTracker(floor=self._position)
        # Requests still finishing after stop() must not start new timers.
        self._stopped = False
        # Told of each local user's typing change (room_id, user_id, typing): federation
        # passes it on to the other servers in the room.
        self.local_change_observers: list[Callable[[str, str, bool], None]] = []

    def current_position(self) -> int:
        return self._position

    def typing_users(self, room_id: str) -> list[str]:
        return sorted(self._typing.get(room_id, ()))

    async def set_typing(
        self, user_id: str, room_id: str, typing: bool, timeout_ms: int | None = None
    ) -> None:
        """Starts (for at most MAX_TIMEOUT_MS) or stops the user's typing in the room."""
        await require_joined(self.storage, user_id, room_id)
        if typing:
            timeout = min(DEFAULT_TIMEOUT_MS if timeout_ms is None else timeout_ms, MAX_TIMEOUT_MS)
            self._start(room_id, user_id, timeout / 1000)
        else:
            self._stop(room_id, user_id)
        for observer in self.local_change_observers:
            observer(room_id, user_id, typing)

    async def set_remote_typing(self, user_id: str, room_id: str, typing: bool) -> bool:
        """Another server says its user started or stopped typing; False if that user is not
        joined here. Remote servers send no timeout: their typing lasts at most a minute."""
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is None or snapshot.membership_of(user_id) != "join":
            return False
        if typing:
            self._start(room_id, user_id, MAX_TIMEOUT_MS / 1000)
        else:
            self._stop(room_id, user_id)
        return True

    def _start(self, room_id: str, user_id: str, seconds: float) -> None:
        if self._stopped:
            return
        timers = self._typing.setdefault(room_id, {})
        timer = timers.get(user_id)
        if timer is not None and timer.active():
            # Still typing: only the end moves, which nobody needs to hear about.
            timer.reset(seconds)
            return
        timers[user_id] = self.clock.call_later(seconds, self._stop, room_id, user_id)
        self._changed(room_id)

    def _stop(self, room_id: str, user_id: str) -> None:
        timers = self._typing.get(room_id)
        timer = timers.pop(user_id, None) if timers is not None else None
        if timer is None:
            return
        if timer.active():
            timer.cancel()
        if not timers:
            del self._typing[room_id]
        self._changed(room_id)

    def _changed(self, room_id: str) -> None:
        self._position = max(self._position + 1, self.clock.time_msec())
        self.changes.note(room_id, self._position)
        run_in_background("waking typing listeners", self.notifier.wake_room(room_id))

    def on_new_events(self, events: list[Event]) -> None:
        """Persister observer: a member who leaves stops typing there at once."""
        for event in events:
            if (
                event.type == "m.room.member"
                and event.membership != "join"
                and event.state_key in self._typing.get(event.room_id, ())
            ):
                self._stop(event.room_id, event.state_key or "")

    def stop(self) -> None:
        """Cancels every timer (server shutdown)."""
        self._stopped = True
        for timers in self._typing.values():
            for timer in timers.values():
                if timer.active():
                    timer.cancel()
        self._typing.clear()

    # -- SyncSource ----------------------------------------------------------------------------

    async def may_have_news(self, user_id: str, device_id: str | None, since: int) -> bool:
        rooms = await joined_rooms(self.storage, user_id)
        if since < self.changes.floor:
            # A token from before this process: only rooms with someone typing have news.
            return any(room_id in self._typing for room_id in rooms)
        return any(self.changes.changed_since(room_id, since) for room_id in rooms)

    async def add_to_sync(self, context: SyncContext) -> None:
        since = context.since.typing if context.since is not None else None
        fresh = await rooms_joined_since(self.storage, context)
        for room_id in context.joined_rooms:
            if not ephemeral_allowed(context.request.sync_filter, TYPING, room_id):
                continue
            typing = room_id in self._typing
            if since is None or since < self.changes.floor or room_id in fresh:
                # The client knows nothing of this room's typing: only who types now matters.
                if not typing:
                    continue
            elif not self.changes.changed_since(room_id, since):
                continue
            add_ephemeral(context, room_id, _typing_event(self.typing_users(room_id)))


def _typing_event(user_ids: list[str]) -> dict[str, Any]:
    return {"type": TYPING, "content": {"user_ids": user_ids}}
