"""What the ephemeral streams (typing, receipts, presence) share: membership checks, rooms a
user joined during a sync window, and the ephemeral filter."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet import defer

from homeserver.errors import Codes, MatrixError, forbidden
from homeserver.sync.filtering import SyncFilter
from homeserver.sync.sources import SyncContext
from storage.store import Storage
from storage.streams import StreamIdGenerator

logger = logging.getLogger(__name__)


def check_room_id(room_id: str) -> str:
    # Room version 12 IDs have no ":server" part, so only the sigil is checked.
    if not room_id.startswith("!"):
        raise MatrixError(400, Codes.INVALID_PARAM, "Not a room ID")
    return room_id


async def require_joined(storage: Storage, user_id: str, room_id: str) -> None:
    """403 unless the user is joined to the room now."""
    snapshot = await storage.state.get_snapshot(room_id)
    if snapshot is None or snapshot.membership_of(user_id) != "join":
        raise forbidden("You are not in this room")


async def joined_rooms(storage: Storage, user_id: str) -> set[str]:
    rooms = await storage.state.get_rooms_for_user(user_id)
    return {room_id for room_id, membership in rooms.items() if membership == "join"}


async def rooms_joined_since(storage: Storage, context: SyncContext) -> set[str]:
    """Rooms the syncing user joined inside the window: the client knows nothing of their
    ephemeral state yet, so they are sent as on an initial sync."""
    since = context.since
    user_id = context.request.user_id
    if since is None or not storage.persister.membership_changes.changed_since(
        user_id, since.events
    ):
        return set()
    rows = await storage.db.run(
        "rooms_joined_since",
        lambda txn: txn.query(
            "SELECT DISTINCT room_id FROM room_memberships WHERE user_id = ?"
            " AND membership = 'join' AND stream_ordering > ? AND stream_ordering <= ?",
            (user_id, since.events, context.now.events),
        ),
    )
    return {row[0] for row in rows} & set(context.joined_rooms)


def ephemeral_allowed(sync_filter: SyncFilter, event_type: str, room_id: str) -> bool:
    ephemeral = sync_filter.ephemeral
    return ephemeral.allows_type(event_type) and ephemeral.allows_room(room_id)


def add_ephemeral(context: SyncContext, room_id: str, event: dict[str, Any]) -> None:
    context.extras.ephemeral.setdefault(room_id, []).append(event)


def run_in_background(what: str, coroutine: Coroutine[Any, Any, Any]) -> None:
    """Starts work nobody waits for (timers, observers), logging its failure."""

    def failed(failure: Any) -> None:
        logger.error("%s failed: %s", what, failure.getTraceback())

    defer.ensureDeferred(coroutine).addErrback(failed)


class OrderedWakeups:
    """Wakes the listeners of a stream position only once every position below it committed.

    Writes to one stream may commit out of order (PostgreSQL runs them in parallel). A reader
    woken for position 6 while 5 is still in flight reads "up to 4", finds nothing and sleeps;
    when 5 commits only 5's listeners would be woken and 6 would wait for the next change.
    Holding 6's wake-up until the stream's current position reaches it closes that gap.
    """

    def __init__(self, stream: StreamIdGenerator) -> None:
        self.stream = stream
        self._pending: list[tuple[int, Callable[[], Any]]] = []

    def committed(self, position: int | None, wake: Callable[[], Any] | None = None) -> None:
        """Called after each write finished (position None: it changed nothing)."""
        if position is not None and wake is not None:
            bisect.insort(self._pending, (position, wake), key=lambda item: item[0])
        current = self.stream.current
        while self._pending and self._pending[0][0] <= current:
            _, ready = self._pending.pop(0)
            ready()


class PositionLog:
    """The entities that changed at each recent position of a stream, oldest first.

    Answers "who changed after P" for P at or above `floor`; older positions were dropped
    (or predate this process), and asking about them answers None: "unknown, look it all up".
    """

    def __init__(self, floor: int = 0, max_entries: int = 10_000) -> None:
        self.floor = floor
        self.max_entries = max_entries
        self._positions: list[int] = []
        self._entities: list[str] = []

    def note(self, position: int, entity: str) -> None:
        index = bisect.bisect(self._positions, position)
        self._positions.insert(index, position)
        self._entities.insert(index, entity)
        if len(self._positions) > self.max_entries:
            drop = len(self._positions) // 2
            self.floor = self._positions[drop - 1]
            del self._positions[:drop]
            del self._entities[:drop]

    def changed_after(self, position: int) -> set[str] | None:
        if position < self.floor:
            return None
        return set(self._entities[bisect.bisect(self._positions, position) :])
