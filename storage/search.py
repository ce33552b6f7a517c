"""Full-text search over message bodies, room names and topics.

The text is indexed by `write_search` inside the persister's transaction; a redaction removes it
in the same commit. SQLite uses an FTS5 table ranked by bm25, PostgreSQL a tsvector column with
a GIN index ranked by ts_rank (schema 005). Both stem English words, and both are given the same
query: every word of the search term must match.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeserver.events.event import Event
from storage.database import Database, Txn
from storage.events import TimelineFilter, placeholders
from storage.relations import already_redacted

if TYPE_CHECKING:
    from storage.persister import EventToPersist

# The searchable key of each event type (client-server spec, "Search Categories").
SEARCH_KEYS = {
    "m.room.message": "content.body",
    "m.room.name": "content.name",
    "m.room.topic": "content.topic",
}
_WORD = re.compile(r"\w+", re.UNICODE)


def searchable_text(event: Event) -> str | None:
    """The text of the event's searchable key; topics add their m.topic text/plain body."""
    content = event.content
    field = SEARCH_KEYS.get(event.type)
    if field is None:
        return None
    values = [content.get(field.split(".", 1)[1])]
    if event.type == "m.room.topic":
        values.extend(_plain_topic_bodies(content.get("m.topic")))
    texts = list(dict.fromkeys(v for v in values if isinstance(v, str) and v))
    # PostgreSQL text cannot hold NUL, and a failed index must not fail the event's persist.
    return " ".join(texts).replace("\x00", " ") if texts else None


def _plain_topic_bodies(topic: object) -> list[str]:
    if not isinstance(topic, dict) or not isinstance(topic.get("m.text"), list):
        return []
    return [
        t["body"]
        for t in topic["m.text"]
        if isinstance(t, dict)
        and t.get("mimetype", "text/plain") == "text/plain"
        and isinstance(t.get("body"), str)
    ]


def search_words(term: str) -> list[str]:
    """The words of a search term, lower-cased: the query and the highlights."""
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(term)))


@dataclass(frozen=True)
class SearchQuery:
    words: tuple[str, ...]
    keys: tuple[str, ...]
    # room_id -> the highest events-stream position the searcher may read in it.
    rooms: dict[str, int]
    event_filter: TimelineFilter | None
    order_by: str  # "rank" or "recent"
    limit: int
    # Where the page starts: results below this position ("recent"), or after this many ("rank").
    before: int | None = None
    offset: int = 0
    # Only results from this sender (a `sender` group's next page).
    sender: str | None = None


@dataclass(frozen=True)
class SearchHit:
    event_id: str
    stream_ordering: int
    rank: float


class SearchStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        """One page of hits, in the query's order."""
        if not query.words or not query.rooms or not query.keys or query.limit <= 0:
            return []
        return await self.db.run("search_events", _search, query)

    async def count(self, query: SearchQuery) -> int:
        """How many events match, before history visibility is applied."""
        if not query.words or not query.rooms or not query.keys:
            return 0
        return await self.db.run("count_search_events", _count, query)


# -- writing (inside the persister's transaction) -----------------------------------------------


def write_search(txn: Txn, items: Sequence[EventToPersist]) -> None:
    rows = []
    for item in items:
        event = item.event
        if event.outlier or event.rejected_reason is not None or event.stream_ordering is None:
            continue
        text = searchable_text(event)
        if text is not None:
            rows.append((event.stream_ordering, SEARCH_KEYS[event.type], text))
    if rows:
        if txn.engine_name == "postgres":
            sql = (
                "INSERT INTO event_search (stream_ordering, key, vector)"
                " VALUES (?, ?, to_tsvector('english', ?))"
            )
        else:
            sql = "INSERT INTO event_search (rowid, key, value) VALUES (?, ?, ?)"
        txn.executemany(sql, rows)
    redacted = [i.event.redacts for i in items if i.redaction_applies and i.event.redacts]
    if rows:
        # An event whose redaction arrived first (over federation) is stored, but not searchable.
        redacted += already_redacted(txn, [i.event.event_id for i in items])
    for target in redacted:
        _unindex(txn, target)


def _unindex(txn: Txn, event_id: str) -> None:
    column = "stream_ordering" if txn.engine_name == "postgres" else "rowid"
    txn.execute(
        f"DELETE FROM event_search WHERE {column} ="
        " (SELECT stream_ordering FROM events WHERE event_id = ?)",
        (event_id,),
    )


# -- reading ------------------------------------------------------------------------------------


def _engine_sql(txn: Txn, query: SearchQuery) -> tuple[str, str, list, list]:
    """(rank expression, FROM ... WHERE clause, rank params, where params) for the engine."""
    where, params = _conditions(query)
    if txn.engine_name == "postgres":
        words = " ".join(query.words)
        return (
            "ts_rank(event_search.vector, plainto_tsquery('english', ?))",
            "FROM event_search JOIN events e ON e.stream_ordering = event_search.stream_ordering"
            f" WHERE event_search.vector @@ plainto_tsquery('english', ?){where}",
            [words],
            [words, *params],
        )
    # Each word quoted: the search term's own punctuation is never FTS5 query syntax. bm25 is
    # lower for better matches; negated so that, as the spec says, higher is closer.
    words = " ".join(f'"{w}"' for w in query.words)
    return (
        "-bm25(event_search)",
        "FROM event_search JOIN events e ON e.stream_ordering = event_search.rowid"
        f" WHERE event_search MATCH ?{where}",
        [],
        [words, *params],
    )


def _search(txn: Txn, query: SearchQuery) -> list[SearchHit]:
    rank, base, rank_params, params = _engine_sql(txn, query)
    order = "score DESC" if query.order_by == "rank" else "e.stream_ordering DESC"
    page_sql, page_params, offset = "", [], query.offset
    if query.order_by == "recent":
        offset = 0
        if query.before is not None:
            page_sql, page_params = " AND e.stream_ordering < ?", [query.before]
    rows = txn.query(
        f"SELECT e.event_id, e.stream_ordering, {rank} AS score {base}{page_sql}"
        f" ORDER BY {order}, e.stream_ordering DESC LIMIT ? OFFSET ?",
        [*rank_params, *params, *page_params, query.limit, offset],
    )
    return [SearchHit(event_id, position, float(score)) for event_id, position, score in rows]


def _count(txn: Txn, query: SearchQuery) -> int:
    _, base, _, params = _engine_sql(txn, query)
    row = txn.query_one(f"SELECT COUNT(*) {base}", params)
    return row[0] if row else 0


def _conditions(query: SearchQuery) -> tuple[str, list]:
    """Keys, the event filter, and each room only up to what the searcher may read."""
    sql = f" AND event_search.key IN ({placeholders(len(query.keys))})"
    params: list = list(query.keys)
    # Rooms grouped by how far the searcher may read them: one clause for all joined rooms.
    by_upto: dict[int, list[str]] = {}
    for room_id, upto in query.rooms.items():
        by_upto.setdefault(upto, []).append(room_id)
    room_clauses = []
    for upto, room_ids in by_upto.items():
        room_clauses.append(
            f"(e.room_id IN ({placeholders(len(room_ids))}) AND e.stream_ordering <= ?)"
        )
        params += [*room_ids, upto]
    sql += " AND (" + " OR ".join(room_clauses) + ")"
    sql += " AND e.rejected_reason IS NULL"
    if query.sender is not None:
        sql += " AND e.sender = ?"
        params.append(query.sender)
    if query.event_filter is not None:
        filter_sql, filter_params = query.event_filter.sql()
        sql += filter_sql
        params += filter_params
    return sql, params
