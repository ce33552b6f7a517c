"""Reading events: by ID through a shared cache, and by stream range for timelines."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from homeserver.events.event import Event
from homeserver.events.room_versions import EventFormat, RoomVersion, get_room_version
from storage.database import Database, Row, Txn
from storage.lru import LruCache

# How many of each room's newest events stay in memory for /sync.
RECENT_EVENTS_PER_ROOM = 50

# Large IN (...) lists are split: SQLite allows a limited number of parameters per statement.
CHUNK = 500

_EVENT_COLUMNS = (
    "e.event_id, e.json, e.stream_ordering, e.rejected_reason, e.outlier, r.room_version, "
    "(SELECT MIN(rd.event_id) FROM redactions rd WHERE rd.redacts = e.event_id), "
    "t.device_id, t.txn_id, e.state_before"
)
_EVENT_FROM = (
    "FROM events e JOIN rooms r ON r.room_id = e.room_id "
    "LEFT JOIN event_txn_ids t ON t.event_id = e.event_id"
)


def chunks(items: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def placeholders(count: int) -> str:
    return ",".join("?" * count)


class RecentEvents:
    """The newest events of one room, in stream order, as the persister committed them.

    Authoritative for positions above `complete_after`: every event of the room committed after
    that position is here, because the persister appends each one as it commits.
    """

    __slots__ = ("events", "complete_after")

    def __init__(self, first: Event, size: int = RECENT_EVENTS_PER_ROOM) -> None:
        self.events: deque[Event] = deque(maxlen=size)
        self.complete_after = (first.stream_ordering or 0) - 1
        self.events.append(first)

    def append(self, event: Event) -> None:
        if len(self.events) == self.events.maxlen:
            self.complete_after = self.events[0].stream_ordering or 0
        self.events.append(event)

    def newest(
        self, after: int, upto: int, limit: int, event_filter: TimelineFilter | None
    ) -> list[Event]:
        found: list[Event] = []
        for event in reversed(self.events):
            position = event.stream_ordering or 0
            if position <= after or len(found) >= limit:
                break
            if position <= upto and (event_filter is None or event_filter.matches(event)):
                found.append(event)
        return found


@dataclass(frozen=True)
class TimelineFilter:
    """The parts of a room event filter that are pushed down into SQL."""

    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()

    def matches(self, event: Event) -> bool:
        """The same rules as sql(), for events already in memory."""
        if self.types is not None and event.type not in self.types:
            return False
        if event.type in self.not_types:
            return False
        if self.senders is not None and event.sender not in self.senders:
            return False
        return event.sender not in self.not_senders

    def sql(self) -> tuple[str, list]:
        clauses: list[str] = []
        params: list = []
        for column, allowed, refused in (
            ("e.type", self.types, self.not_types),
            ("e.sender", self.senders, self.not_senders),
        ):
            if allowed is not None:
                clauses.append(f"{column} IN ({placeholders(len(allowed))})" if allowed else "1=0")
                params.extend(allowed)
            if refused:
                clauses.append(f"{column} NOT IN ({placeholders(len(refused))})")
                params.extend(refused)
        return "".join(" AND " + c for c in clauses), params


class EventStore:
    def __init__(self, db: Database, cache_size: int = 20000) -> None:
        self.db = db
        self.cache: LruCache[str, Event] = LruCache(cache_size)
        self._room_versions: dict[str, RoomVersion] = {}
        # room_id -> stream_ordering of its newest event; filled lazily, advanced by the persister.
        self.room_positions: dict[str, int] = {}
        # room_id -> its newest events, kept by the persister: most syncs read only these.
        self.recent: LruCache[str, RecentEvents] = LruCache(2000)
        self.events_loaded_from_db = 0

    # Room versions never change, so they are cached forever once read.
    async def get_room_version(self, room_id: str) -> RoomVersion | None:
        version = self._room_versions.get(room_id)
        if version is None:
            row = await self.db.run(
                "get_room_version",
                lambda txn: txn.query_one(
                    "SELECT room_version FROM rooms WHERE room_id = ?", (room_id,)
                ),
            )
            if row is None:
                return None
            version = get_room_version(row[0])
            if version is not None:
                self._room_versions[room_id] = version
        return version

    def note_persisted(self, event: Event) -> None:
        """Called by the persister after commit, for each timeline event."""
        self.room_positions[event.room_id] = event.stream_ordering or 0
        recent = self.recent.get(event.room_id)
        if recent is None:
            self.recent.set(event.room_id, RecentEvents(event))
        else:
            recent.append(event)

    def note_redacted(self, room_id: str, target_id: str, redaction_id: str) -> None:
        """Marks every in-memory copy of the target (cache and recent events) as redacted."""
        copies = [self.cache.get(target_id)]
        recent = self.recent.get(room_id)
        if recent is not None:
            copies.extend(e for e in recent.events if e.event_id == target_id)
        for event in copies:
            if event is not None and event.redacted_by is None:
                event.redacted_by = redaction_id

    def remember_room_version(self, room_id: str, version: RoomVersion) -> None:
        self._room_versions[room_id] = version

    async def get_event(self, event_id: str, allow_rejected: bool = False) -> Event | None:
        events = await self.get_events([event_id], allow_rejected=allow_rejected)
        return events.get(event_id)

    async def get_events(
        self, event_ids: Iterable[str], allow_rejected: bool = False
    ) -> dict[str, Event]:
        found: dict[str, Event] = {}
        missing = []
        for event_id in event_ids:
            event = self.cache.get(event_id)
            if event is None:
                missing.append(event_id)
            else:
                found[event_id] = event
        if missing:
            rows = await self.db.run("get_events", _select_events_by_id, missing)
            for event in self._events_from_rows(rows):
                found[event.event_id] = event
        if not allow_rejected:
            found = {k: e for k, e in found.items() if e.rejected_reason is None}
        return found

    def _events_from_rows(self, rows: list[Row]) -> list[Event]:
        events = []
        for row in rows:
            event = self.cache.get(row[0])
            if event is None:
                event = _event_from_row(row)
                self.events_loaded_from_db += 1
                self.cache.set(event.event_id, event)
            events.append(event)
        return events

    async def get_timeline(
        self,
        room_id: str,
        *,
        after: int,
        upto: int,
        limit: int,
        newest_first: bool,
        event_filter: TimelineFilter | None = None,
    ) -> list[Event]:
        """Events with after < stream_ordering <= upto, the `limit` nearest to one end."""
        recent = self.recent.get(room_id)
        if recent is not None and newest_first and after >= recent.complete_after:
            return recent.newest(after, upto, limit, event_filter)
        rows = await self.db.run(
            "get_timeline",
            _select_timeline,
            room_id,
            after,
            upto,
            limit,
            newest_first,
            event_filter,
        )
        return self._events_from_rows(rows)

    async def get_room_position(self, room_id: str) -> int:
        """The stream position of the room's newest event (0 if it has none)."""
        position = self.room_positions.get(room_id)
        if position is None:
            row = await self.db.run(
                "get_room_position",
                lambda txn: txn.query_one(
                    "SELECT MAX(stream_ordering) FROM events WHERE room_id = ?", (room_id,)
                ),
            )
            position = row[0] if row and row[0] is not None else 0
            self.room_positions.setdefault(room_id, position)
        return self.room_positions[room_id]

    async def get_event_for_txn(
        self, user_id: str, device_id: str, scope: str, txn_id: str
    ) -> str | None:
        row = await self.db.run(
            "get_event_for_txn",
            lambda txn: txn.query_one(
                "SELECT event_id FROM event_txn_ids"
                " WHERE user_id = ? AND device_id = ? AND scope = ? AND txn_id = ?",
                (user_id, device_id, scope, txn_id),
            ),
        )
        return row[0] if row else None

    async def get_min_stream_ordering(self) -> int:
        row = await self.db.run(
            "min_stream_ordering",
            lambda txn: txn.query_one("SELECT MIN(stream_ordering) FROM events"),
        )
        return row[0] if row and row[0] is not None else 0

    async def get_oldest_events(self, room_id: str, count: int = 5) -> list[str]:
        """The room's oldest events in our timeline: where backfilling continues from."""
        rows = await self.db.run(
            "oldest_events",
            lambda txn: txn.query(
                "SELECT event_id FROM events WHERE room_id = ? AND stream_ordering IS NOT NULL"
                " ORDER BY stream_ordering ASC LIMIT ?",
                (room_id, count),
            ),
        )
        return [row[0] for row in rows]

    async def get_max_stream_ordering(self) -> int:
        row = await self.db.run(
            "max_stream_ordering",
            lambda txn: txn.query_one("SELECT MAX(stream_ordering) FROM events"),
        )
        return row[0] if row and row[0] is not None else 0

    async def get_position_of_event(self, event_id: str) -> int | None:
        event = await self.get_event(event_id, allow_rejected=True)
        return event.stream_ordering if event else None


def _select_events_by_id(txn: Txn, event_ids: list[str]) -> list[Row]:
    rows: list[Row] = []
    for chunk in chunks(event_ids):
        rows.extend(
            txn.query(
                f"SELECT {_EVENT_COLUMNS} {_EVENT_FROM}"
                f" WHERE e.event_id IN ({placeholders(len(chunk))})",
                chunk,
            )
        )
    return rows


def _select_timeline(
    txn: Txn,
    room_id: str,
    after: int,
    upto: int,
    limit: int,
    newest_first: bool,
    event_filter: TimelineFilter | None,
) -> list[Row]:
    filter_sql, filter_params = event_filter.sql() if event_filter else ("", [])
    order = "DESC" if newest_first else "ASC"
    return txn.query(
        f"SELECT {_EVENT_COLUMNS} {_EVENT_FROM}"
        " WHERE e.room_id = ? AND e.stream_ordering > ? AND e.stream_ordering <= ?"
        f"{filter_sql} AND e.rejected_reason IS NULL"
        f" ORDER BY e.stream_ordering {order} LIMIT ?",
        [room_id, after, upto, *filter_params, limit],
    )


def _event_from_row(row: Row) -> Event:
    (
        event_id,
        pdu_json,
        stream_ordering,
        rejected,
        outlier,
        version_id,
        redacted_by,
        dev,
        txn,
        state_before,
    ) = row
    version = get_room_version(version_id)
    assert version is not None, f"unknown room version {version_id} in database"
    pdu = json.loads(pdu_json)
    if version.event_format is EventFormat.V1:
        pdu["event_id"] = event_id
    event = Event(
        pdu,
        version,
        event_id=event_id,
        stream_ordering=stream_ordering,
        rejected_reason=rejected,
        outlier=bool(outlier),
    )
    event.redacted_by = redacted_by
    event.state_group_before = state_before
    if dev is not None:
        event.sent_by = (dev, txn)
    return event
