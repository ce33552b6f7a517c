"""The one writer of room events.

Callers hand over fully prepared events (signed, authorised, with their state groups planned);
the persister assigns `stream_ordering`, writes everything in one transaction, then updates the
in-memory caches and tells the observers. Requests that arrive while a transaction is running
are queued and written together in the next one (group commit), so a burst of concurrent sends
costs one commit, not one each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from twisted.internet import defer

from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.event import Event
from storage.database import Database, Txn
from storage.events import EventStore
from storage.push_actions import PushActionRow, write_push_actions
from storage.relations import write_relations
from storage.search import write_search
from storage.state import (
    RoomSnapshot,
    StateGroupWrite,
    StateMap,
    StateStore,
    write_state_groups,
)
from storage.streams import ChangeTracker

logger = logging.getLogger(__name__)


@dataclass
class EventToPersist:
    event: Event
    state_before: int | None
    state_after: int | None
    new_state_group: StateGroupWrite | None = None
    # The full state of new_state_group, cached once the group is committed.
    state_after_map: StateMap | None = None
    # Other new groups written with the event, each with its full state: for events from other
    # servers, the state before it (resolved, or handed to us) and the resolved current state.
    extra_state_groups: list[tuple[StateGroupWrite, StateMap]] = field(default_factory=list)
    # (user_id, device_id, scope, txn_id) of the client request that sent it.
    txn_key: tuple[str, str, str, str] | None = None
    # Set when the event is a redaction that takes effect on its target.
    redaction_applies: bool = False
    # The room's whole current state after this event, when it is not simply the previous
    # current state plus the event: an event from another server that merged forks (state
    # resolution), or our first event in a room we joined over federation. With it come the
    # state group holding it and the membership of each member in it.
    current_state: StateMap | None = None
    current_state_group: int | None = None
    current_memberships: dict[str, str] | None = None
    # An invite to a room this server is not in ("out of band"): it shows in the invitee's
    # /sync but is not part of any room graph we hold, so it never becomes a forward extremity.
    out_of_band: bool = False
    # Drop the cached snapshot after commit, to be reloaded: our first real event in a room
    # that held only an out-of-band invite.
    reset_snapshot: bool = False
    # History fetched from another server (/backfill): older than anything we hold, it takes
    # a stream position below every other (allocate_backfill_positions) and is nobody's news.
    backfilled: bool = False
    # What the push rules decided for the local users this event notifies (set by the
    # preparers, see EventPersister.preparers); written with the event.
    push_actions: list[PushActionRow] = field(default_factory=list)
    # The event is stored already as an outlier (state or auth chain handed to us) and now
    # takes its place in the timeline: its row is replaced.
    replaces_outlier: bool = False


Observer = Callable[[list[Event]], None]
Preparer = Callable[[list["EventToPersist"]], Awaitable[None]]


class EventPersister:
    def __init__(self, db: Database, events: EventStore, state: StateStore) -> None:
        self.db = db
        self.events = events
        self.state = state
        self.observers: list[Observer] = []
        # Run on each batch of new events before it is queued for writing, to add what is
        # written with them (push actions). A failing preparer is logged, never fatal.
        self.preparers: list[Preparer] = []
        # The position of the newest committed event: what readers may see. Batches commit one
        # at a time, in order, so no gap below it can still fill in.
        self.max_stream_ordering = 0
        self._last_allocated = 0
        # The lowest position given to backfilled history; the next block goes below it.
        self._lowest_allocated = 0
        # Users whose membership changed, by position: lets /sync skip its membership query.
        self.membership_changes = ChangeTracker()
        self._queue: list[tuple[list[EventToPersist], defer.Deferred]] = []
        self._writing = False
        self.batches_written = 0

    async def start(self) -> None:
        self.max_stream_ordering = await self.events.get_max_stream_ordering()
        self._last_allocated = self.max_stream_ordering
        self._lowest_allocated = min(0, await self.events.get_min_stream_ordering())
        self.membership_changes = ChangeTracker(floor=self.max_stream_ordering)

    def allocate_backfill_positions(self, count: int) -> list[int]:
        """`count` positions below every position in use, in ascending order: the oldest
        backfilled event takes the first."""
        self._lowest_allocated -= count
        return list(range(self._lowest_allocated, self._lowest_allocated + count))

    def add_observer(self, observer: Observer) -> None:
        self.observers.append(observer)

    async def persist(self, items: list[EventToPersist]) -> None:
        """Returns once `items` are committed and visible; sets each event's stream_ordering."""
        news = [item for item in items if _is_news(item)]
        for preparer in self.preparers if news else ():
            try:
                await preparer(news)
            except Exception:
                logger.exception("event preparer failed")
        done: defer.Deferred = defer.Deferred()
        self._queue.append((items, done))
        self._write_next_batch()
        await done

    def _write_next_batch(self) -> None:
        if self._writing or not self._queue:
            return
        self._writing = True
        batch, self._queue = self._queue, []
        defer.ensureDeferred(self._write_batch(batch))

    async def _write_batch(self, batch: list[tuple[list[EventToPersist], defer.Deferred]]) -> None:
        committed: list[Event] = []
        try:
            try:
                committed = await self._commit([item for items, _ in batch for item in items])
                outcomes = [(done, None) for _, done in batch]
            except Exception as batch_error:
                if len(batch) == 1:
                    outcomes = [(batch[0][1], batch_error)]
                else:
                    # One bad request must not fail the others that shared its transaction.
                    outcomes = []
                    for items, done in batch:
                        try:
                            committed += await self._commit(items)
                            outcomes.append((done, None))
                        except Exception as error:
                            outcomes.append((done, error))
        finally:
            self._writing = False
        # The senders hear first, then everyone else (long-polls, pushers, federation).
        for done, error in outcomes:
            if error is None:
                done.callback(None)
            else:
                done.errback(error)
        self._tell_observers(committed)
        self._write_next_batch()

    async def _commit(self, items: list[EventToPersist]) -> list[Event]:
        """Writes `items` in one transaction and updates the caches; returns the timeline events."""
        for item in items:
            if not item.event.outlier and not item.backfilled:
                self._last_allocated += 1
                item.event.stream_ordering = self._last_allocated
        await self.db.run("persist_events", _persist_txn, items, int(time.time() * 1000))
        self.max_stream_ordering = self._last_allocated
        self.batches_written += 1
        self.state.commits += 1
        for item in items:
            self._update_caches(item)
        # Backfilled history is nobody's news: observers (sync, push, federation) skip it.
        return [item.event for item in items if not item.event.outlier and not item.backfilled]

    def _tell_observers(self, events: list[Event]) -> None:
        if not events:
            return
        for observer in self.observers:
            try:
                observer(events)
            except Exception:
                logger.exception("event observer failed")

    def _update_caches(self, item: EventToPersist) -> None:
        event = item.event
        if item.txn_key is not None:
            event.sent_by = (item.txn_key[1], item.txn_key[3])
        event.state_group_before = item.state_before
        self.events.cache.set(event.event_id, event)
        if item.new_state_group is not None and item.state_after_map is not None:
            self.state.remember_group(item.new_state_group, item.state_after_map)
        for write, full_state in item.extra_state_groups:
            self.state.remember_group(write, full_state)
        if event.outlier or item.backfilled:
            return
        if event.rejected_reason is None:
            self.events.note_persisted(event)
        else:
            self.events.room_positions[event.room_id] = event.stream_ordering or 0
        if event.type == "m.room.create" or item.current_state is not None:
            self.events.remember_room_version(event.room_id, event.room_version)
        if item.redaction_applies and event.redacts:
            self.events.note_redacted(event.room_id, event.redacts, event.event_id)
        if item.current_state is not None and item.current_memberships is not None:
            # Members the new state no longer names at all (a reset, or an event that lost
            # state resolution) must leave their cached room lists too.
            self.state.forget_memberships_not_in(event.room_id, item.current_memberships)
        if item.reset_snapshot or item.out_of_band:
            self.state.snapshots.pop(event.room_id, None)
        snapshot = self.state.snapshots.get(event.room_id)
        if snapshot is not None and event.rejected_reason is None:
            _advance_snapshot(snapshot, item)
        if item.current_state is not None and item.current_memberships is not None:
            # A whole new state (merged forks, a remote join): every member's entry may change.
            for user_id, membership in item.current_memberships.items():
                self.state.note_membership(user_id, event.room_id, membership)
        if event.type == "m.room.member" and event.rejected_reason is None:
            self.state.note_membership(event.state_key or "", event.room_id, event.membership or "")
            self.membership_changes.note(event.state_key or "", event.stream_ordering or 0)


def _is_news(item: EventToPersist) -> bool:
    """A new event in the room's timeline (not history, not hidden, not rejected)."""
    event = item.event
    return not (event.outlier or item.backfilled or event.rejected_reason is not None)


def _advance_snapshot(snapshot: RoomSnapshot, item: EventToPersist) -> None:
    event = item.event
    prevs = set(event.prev_event_ids)
    snapshot.forward_extremities = [
        e for e in snapshot.forward_extremities if e not in prevs and e != event.event_id
    ] + [event.event_id]
    snapshot.max_depth = max(snapshot.max_depth, event.depth)
    if item.current_state is not None:
        snapshot.state = dict(item.current_state)
        snapshot.state_group = item.current_state_group
        snapshot.memberships = dict(item.current_memberships or {})
    elif event.is_state():
        snapshot.state[event.state_tuple] = event.event_id
        snapshot.state_group = item.state_after
        if event.type == "m.room.member":
            snapshot.memberships[event.state_key or ""] = event.membership or ""


def _persist_txn(txn: Txn, items: list[EventToPersist], now_ms: int) -> None:
    for item in items:
        event = item.event
        if event.type == "m.room.create" and event.state_key == "" and not event.outlier:
            _insert_room(txn, event, now_ms)
    for item in items:
        if item.replaces_outlier:
            txn.execute("DELETE FROM event_edges WHERE event_id = ?", (item.event.event_id,))
            txn.execute("DELETE FROM events WHERE event_id = ?", (item.event.event_id,))
    txn.executemany(
        "INSERT INTO events (event_id, stream_ordering, room_id, type, state_key, sender, depth,"
        " origin_server_ts, received_ts, outlier, rejected_reason, state_before, state_after, json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [_event_row(item, now_ms) for item in items],
    )
    txn.executemany(
        "INSERT INTO event_edges (event_id, prev_event_id) VALUES (?, ?)",
        [(item.event.event_id, prev) for item in items for prev in item.event.prev_event_ids],
    )
    write_state_groups(
        txn,
        [
            group
            for item in items
            for group in (
                *(write for write, _ in item.extra_state_groups),
                item.new_state_group,
            )
            if group is not None
        ],
    )
    for item in items:
        if not item.event.outlier and not item.backfilled:
            _update_room_tables(txn, item)
        if item.txn_key is not None:
            user_id, device_id, scope, txn_id = item.txn_key
            txn.execute(
                "INSERT INTO event_txn_ids (user_id, device_id, scope, txn_id, event_id,"
                " inserted_ts) VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, device_id, scope, txn_id, item.event.event_id, now_ms),
            )
    write_push_actions(
        txn,
        [
            (item.event.event_id, item.event.room_id, item.event.stream_ordering or 0, row)
            for item in items
            if _is_news(item)
            for row in item.push_actions
        ],
        now_ms,
    )
    # Relations and search text commit with their events; redactions take both away.
    write_relations(txn, items)
    write_search(txn, items)


def _replace_current_state(txn: Txn, item: EventToPersist) -> None:
    """Writes a whole new current state (rare: merged forks, or a room joined remotely)."""
    event = item.event
    assert item.current_state is not None
    memberships = item.current_memberships or {}
    txn.execute(
        "INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id) DO NOTHING",
        (event.room_id, event.room_version.identifier, None, False, event.origin_server_ts),
    )
    txn.execute("DELETE FROM current_state WHERE room_id = ?", (event.room_id,))
    txn.executemany(
        "INSERT INTO current_state (room_id, type, state_key, event_id, membership)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (event.room_id, t, sk, eid, memberships.get(sk) if t == "m.room.member" else None)
            for (t, sk), eid in item.current_state.items()
        ],
    )
    txn.execute(
        "UPDATE rooms SET current_state_group = ? WHERE room_id = ?",
        (item.current_state_group, event.room_id),
    )


def _insert_room(txn: Txn, event: Event, now_ms: int) -> None:
    creator = event.content.get("creator", event.sender)
    txn.execute(
        "INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id) DO NOTHING",
        (event.room_id, event.room_version.identifier, creator, False, now_ms),
    )


def _event_row(item: EventToPersist, now_ms: int) -> tuple:
    event = item.event
    pdu_json = encode_canonical_json(event.pdu).decode("utf-8")
    return (
        event.event_id,
        event.stream_ordering,
        event.room_id,
        event.type,
        event.state_key,
        event.sender,
        event.depth,
        event.origin_server_ts,
        now_ms,
        event.outlier,
        event.rejected_reason,
        item.state_before,
        item.state_after,
        pdu_json,
    )


def _update_room_tables(txn: Txn, item: EventToPersist) -> None:
    event = item.event
    if event.rejected_reason is not None:
        return
    room_id = event.room_id
    if item.current_state is not None:
        _replace_current_state(txn, item)
    if item.out_of_band:
        _record_membership(txn, item)
        return
    if event.prev_event_ids:
        txn.execute(
            "DELETE FROM event_forward_extremities WHERE room_id = ? AND event_id IN"
            f" ({','.join('?' * len(event.prev_event_ids))})",
            [room_id, *event.prev_event_ids],
        )
    txn.execute(
        "INSERT INTO event_forward_extremities (room_id, event_id) VALUES (?, ?)",
        (room_id, event.event_id),
    )
    if event.is_state() and item.current_state is None:
        txn.execute(
            "INSERT INTO current_state (room_id, type, state_key, event_id, membership)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id, type, state_key) DO UPDATE"
            " SET event_id = excluded.event_id, membership = excluded.membership",
            (room_id, event.type, event.state_key, event.event_id, event.membership),
        )
        txn.execute(
            "UPDATE rooms SET current_state_group = ? WHERE room_id = ?",
            (item.state_after, room_id),
        )
    _record_membership(txn, item)
    if item.redaction_applies and event.redacts:
        txn.execute(
            "INSERT INTO redactions (event_id, redacts) VALUES (?, ?)",
            (event.event_id, event.redacts),
        )


def _record_membership(txn: Txn, item: EventToPersist) -> None:
    event = item.event
    if event.type == "m.room.member" and event.is_state():
        txn.execute(
            "INSERT INTO room_memberships (event_id, room_id, user_id, sender, membership,"
            " stream_ordering) VALUES (?, ?, ?, ?, ?, ?)",
            (
                event.event_id,
                event.room_id,
                event.state_key,
                event.sender,
                event.membership,
                event.stream_ordering,
            ),
        )
