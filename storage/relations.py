"""Event relationships (`m.relates_to`): indexed as events are persisted, read by the relations
API, the threads list and the bundled aggregations.

`write_relations` runs inside the persister's transaction, so a relation is visible exactly when
its event is, and a redaction removes the relation of its target in the same commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from homeserver.events.event import Event
from storage.database import Database, Row, Txn
from storage.events import chunks, placeholders

if TYPE_CHECKING:
    from storage.persister import EventToPersist

# The relation types the server bundles into unsigned["m.relations"] (annotations are not).
BUNDLED_REL_TYPES = ("m.replace", "m.thread", "m.reference")

# Past this many parents remembered in memory, forget them and query the database instead.
MAX_TRACKED_PARENTS = 100_000


@dataclass(frozen=True)
class Relation:
    relates_to_id: str
    rel_type: str
    key: str | None = None


def relation_of(event: Event) -> Relation | None:
    """The event's relationship, if its cleartext content has a well-formed one."""
    return relation_in(event.content)


def relation_in(content: dict) -> Relation | None:
    relates_to = content.get("m.relates_to")
    if not isinstance(relates_to, dict):
        return None
    rel_type = relates_to.get("rel_type")
    parent = relates_to.get("event_id")
    if not isinstance(rel_type, str) or not rel_type:
        return None
    if not isinstance(parent, str) or not parent.startswith("$"):
        return None
    key = relates_to.get("key")
    if rel_type != "m.annotation" or not isinstance(key, str):
        key = None
    return Relation(parent, rel_type, key)


@dataclass(frozen=True)
class ThreadSummary:
    count: int
    latest_event_id: str
    participated: bool


@dataclass
class AggregationRows:
    """The children that bundled aggregations are built from, for a batch of parents."""

    # parent -> [(child event_id, sender)] in stream order.
    edits: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    references: dict[str, list[str]] = field(default_factory=dict)
    threads: dict[str, ThreadSummary] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildQuery:
    room_id: str
    parent_id: str
    rel_type: str | None
    event_type: str | None
    # Only children with after < stream_ordering <= upto.
    after: int
    upto: int
    limit: int
    newest_first: bool
    # 1 for direct children only; more to follow relations of relations.
    depth: int


class RelationStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Parents that got a bundled kind of child since `_floor`. Every event above the floor
        # was seen by on_new_events, so for those a miss here means "no children": /sync then
        # bundles without asking the database. None until the first events are seen.
        self._floor: int | None = None
        self._parents: set[str] = set()

    def on_new_events(self, events: list[Event]) -> None:
        """Persister observer; registered before the notifier, so a woken /sync sees it."""
        if not events:
            return
        positions = [e.stream_ordering or 0 for e in events]
        if self._floor is None:
            self._floor = min(positions) - 1
        for event in events:
            relation = relation_of(event)
            if relation is not None and relation.rel_type in BUNDLED_REL_TYPES:
                self._parents.add(relation.relates_to_id)
        if len(self._parents) > MAX_TRACKED_PARENTS:
            self._floor = max(self._floor, *positions)
            self._parents.clear()

    def may_have_children(self, event: Event) -> bool:
        if self._floor is None or (event.stream_ordering or 0) <= self._floor:
            return True
        return event.event_id in self._parents

    async def get_aggregation_rows(
        self, parents: dict[str, str], user_id: str | None, ignored: Iterable[str]
    ) -> AggregationRows:
        """`parents` maps event_id -> room_id; children in other rooms do not count."""
        return await self.db.run(
            "get_aggregation_rows", _select_aggregations, parents, user_id, sorted(ignored)
        )

    async def has_annotation(self, parent_id: str, sender: str, event_type: str, key: str) -> bool:
        """Whether `sender` already annotated the parent with this event type and key."""
        row = await self.db.run(
            "has_annotation",
            lambda txn: txn.query_one(
                "SELECT 1 FROM event_relations WHERE relates_to_id = ?"
                " AND rel_type = 'm.annotation' AND aggregation_key = ? AND sender = ?"
                " AND type = ?",
                (parent_id, key, sender, event_type),
            ),
        )
        return row is not None

    async def get_children(self, query: ChildQuery) -> list[tuple[str, int]]:
        """(event_id, stream_ordering) of the parent's children, nearest to one end first."""
        return await self.db.run("get_relation_children", _select_children, query)

    async def get_threads(
        self, room_id: str, upto: int, limit: int, participant: str | None
    ) -> list[tuple[str, int]]:
        """(root event_id, latest reply position) of threads with activity at or below `upto`,
        most recent first; only those `participant` took part in, if given."""
        return await self.db.run("get_threads", _select_threads, room_id, upto, limit, participant)


# -- writing (inside the persister's transaction) -----------------------------------------------


def write_relations(txn: Txn, items: Sequence[EventToPersist]) -> None:
    rows = []
    for item in items:
        event = item.event
        if event.outlier or event.rejected_reason is not None or event.stream_ordering is None:
            continue
        relation = relation_of(event)
        if relation is not None:
            rows.append((event, relation))
    if rows:
        _insert_relations(txn, rows)
    for item in items:
        if item.redaction_applies and item.event.redacts:
            _unrelate(txn, item.event.redacts)


def _insert_relations(txn: Txn, rows: list[tuple[Event, Relation]]) -> None:
    txn.executemany(
        "INSERT INTO event_relations (event_id, relates_to_id, rel_type, aggregation_key,"
        " room_id, sender, type, stream_ordering) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (event_id) DO NOTHING",
        [
            (
                e.event_id,
                r.relates_to_id,
                r.rel_type,
                r.key,
                e.room_id,
                e.sender,
                e.type,
                e.stream_ordering,
            )
            for e, r in rows
        ],
    )
    txn.executemany(
        "INSERT INTO threads (room_id, thread_id, latest_event_id, latest_stream_ordering)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (room_id, thread_id) DO UPDATE"
        " SET latest_event_id = excluded.latest_event_id,"
        " latest_stream_ordering = excluded.latest_stream_ordering"
        " WHERE excluded.latest_stream_ordering > threads.latest_stream_ordering",
        [
            (e.room_id, r.relates_to_id, e.event_id, e.stream_ordering)
            for e, r in rows
            if r.rel_type == "m.thread"
        ],
    )
    # An event whose redaction arrived first (over federation) is stored, but relates to nothing.
    for target in already_redacted(txn, [e.event_id for e, _ in rows]):
        _unrelate(txn, target)


def already_redacted(txn: Txn, event_ids: list[str]) -> list[str]:
    """Those of `event_ids` that a persisted redaction applies to."""
    found = []
    for chunk in chunks(event_ids):
        found += [
            target
            for (target,) in txn.query(
                f"SELECT redacts FROM redactions WHERE redacts IN ({placeholders(len(chunk))})",
                chunk,
            )
        ]
    return found


def _unrelate(txn: Txn, event_id: str) -> None:
    """A redacted child loses its m.relates_to, so it stops being a relation (spec: Redactions)."""
    row = txn.query_one(
        "SELECT relates_to_id, rel_type, room_id FROM event_relations WHERE event_id = ?",
        (event_id,),
    )
    if row is None:
        return
    parent_id, rel_type, room_id = row
    txn.execute("DELETE FROM event_relations WHERE event_id = ?", (event_id,))
    if rel_type == "m.thread":
        _refresh_thread(txn, room_id, parent_id)


def _refresh_thread(txn: Txn, room_id: str, thread_id: str) -> None:
    latest = txn.query_one(
        "SELECT event_id, stream_ordering FROM event_relations"
        " WHERE relates_to_id = ? AND rel_type = 'm.thread' AND room_id = ?"
        " ORDER BY stream_ordering DESC LIMIT 1",
        (thread_id, room_id),
    )
    if latest is None:
        txn.execute("DELETE FROM threads WHERE room_id = ? AND thread_id = ?", (room_id, thread_id))
    else:
        txn.execute(
            "UPDATE threads SET latest_event_id = ?, latest_stream_ordering = ?"
            " WHERE room_id = ? AND thread_id = ?",
            (latest[0], latest[1], room_id, thread_id),
        )


# -- reading ------------------------------------------------------------------------------------


def _select_aggregations(
    txn: Txn, parents: dict[str, str], user_id: str | None, ignored: list[str]
) -> AggregationRows:
    result = AggregationRows()
    ids = list(parents)
    for chunk in chunks(ids):
        for parent, child, rel_type, room_id, sender in txn.query(
            "SELECT relates_to_id, event_id, rel_type, room_id, sender FROM event_relations"
            f" WHERE relates_to_id IN ({placeholders(len(chunk))})"
            " AND rel_type IN ('m.replace', 'm.reference') ORDER BY stream_ordering",
            chunk,
        ):
            if parents[parent] != room_id:
                continue
            if rel_type == "m.replace":
                result.edits.setdefault(parent, []).append((child, sender))
            else:
                result.references.setdefault(parent, []).append(child)
        result.threads.update(_select_thread_summaries(txn, parents, chunk, user_id, ignored))
    return result


def _select_thread_summaries(
    txn: Txn, parents: dict[str, str], chunk: Sequence[str], user_id: str | None, ignored: list[str]
) -> dict[str, ThreadSummary]:
    # Replies from ignored users are neither counted nor the latest event (spec: Threading).
    not_ignored = f" AND sender NOT IN ({placeholders(len(ignored))})" if ignored else ""
    rows: list[Row] = txn.query(
        "SELECT relates_to_id, room_id, COUNT(*), MAX(stream_ordering),"
        " SUM(CASE WHEN sender = ? THEN 1 ELSE 0 END) FROM event_relations"
        f" WHERE relates_to_id IN ({placeholders(len(chunk))}) AND rel_type = 'm.thread'"
        f"{not_ignored} GROUP BY relates_to_id, room_id",
        [user_id or "", *chunk, *ignored],
    )
    rows = [row for row in rows if parents[row[0]] == row[1]]
    if not rows:
        return {}
    positions = [row[3] for row in rows]
    latest = dict(
        txn.query(
            "SELECT stream_ordering, event_id FROM events"
            f" WHERE stream_ordering IN ({placeholders(len(positions))})",
            positions,
        )
    )
    return {
        parent: ThreadSummary(count, latest[position], bool(mine))
        for parent, _, count, position, mine in rows
        if position in latest
    }


def _filters(prefix: str, query: ChildQuery) -> tuple[str, list]:
    sql, params = "", []
    if query.rel_type is not None:
        sql += f" AND {prefix}rel_type = ?"
        params.append(query.rel_type)
    if query.event_type is not None:
        sql += f" AND {prefix}type = ?"
        params.append(query.event_type)
    return sql, params


def _select_children(txn: Txn, query: ChildQuery) -> list[tuple[str, int]]:
    # The filters apply at every level: a child reached only through an intermediate event
    # that does not match them is not included (spec: Relationships API).
    direct_sql, direct_params = _filters("", query)
    nested_sql, nested_params = _filters("r.", query)
    order = "DESC" if query.newest_first else "ASC"
    rows = txn.query(
        "WITH RECURSIVE related (event_id, depth) AS ("
        " SELECT event_id, 1 FROM event_relations WHERE relates_to_id = ? AND room_id = ?"
        f"{direct_sql}"
        " UNION"
        " SELECT r.event_id, related.depth + 1 FROM event_relations r"
        " JOIN related ON r.relates_to_id = related.event_id"
        f" WHERE related.depth < ? AND r.room_id = ?{nested_sql})"
        " SELECT DISTINCT r.event_id, r.stream_ordering FROM related"
        " JOIN event_relations r ON r.event_id = related.event_id"
        " WHERE r.stream_ordering > ? AND r.stream_ordering <= ?"
        f" ORDER BY r.stream_ordering {order} LIMIT ?",
        [
            query.parent_id,
            query.room_id,
            *direct_params,
            query.depth,
            query.room_id,
            *nested_params,
            query.after,
            query.upto,
            query.limit,
        ],
    )
    return [(event_id, position) for event_id, position in rows]


def _select_threads(
    txn: Txn, room_id: str, upto: int, limit: int, participant: str | None
) -> list[tuple[str, int]]:
    participated = ""
    params: list = [room_id, upto]
    if participant is not None:
        # Participation (spec: Threading): the root's sender, or a sender of a thread reply.
        participated = (
            " AND (e.sender = ? OR EXISTS (SELECT 1 FROM event_relations r"
            " WHERE r.relates_to_id = t.thread_id AND r.rel_type = 'm.thread'"
            " AND r.room_id = t.room_id AND r.sender = ?))"
        )
        params += [participant, participant]
    rows = txn.query(
        "SELECT t.thread_id, t.latest_stream_ordering FROM threads t"
        " JOIN events e ON e.event_id = t.thread_id AND e.room_id = t.room_id"
        f" WHERE t.room_id = ? AND t.latest_stream_ordering <= ?{participated}"
        " ORDER BY t.latest_stream_ordering DESC LIMIT ?",
        [*params, limit],
    )
    return [(thread_id, position) for thread_id, position in rows]
