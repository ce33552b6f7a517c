"""What the push rules decided for local users: notification rows, unread counts, the
notifications list, and what pushers still have to push.

A row exists for each (user, event) whose actions say `notify`; it is written with the event.
Whether it is read is not stored: it is read when one of the user's read receipts (`m.read` or
`m.read.private`, unthreaded or for its thread) points at or after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn

# The receipt types that mark notifications read; unthreaded receipts have thread_id ''.
_READ_RECEIPTS = "('m.read', 'm.read.private')"
_READ_UPTO = (
    "COALESCE((SELECT MAX(r.event_stream_ordering) FROM receipts r"
    " WHERE r.room_id = a.room_id AND r.user_id = a.user_id"
    f" AND r.receipt_type IN {_READ_RECEIPTS}"
    " AND (r.thread_id = '' OR r.thread_id = a.thread_id)), -9223372036854775807)"
)


@dataclass(frozen=True)
class PushActionRow:
    """One local user's notification for the event it is persisted with."""

    user_id: str
    thread_id: str
    highlight: bool
    actions: tuple[Any, ...]


@dataclass(frozen=True)
class Notification:
    user_id: str
    event_id: str
    room_id: str
    stream_ordering: int
    thread_id: str
    highlight: bool
    actions: list[Any]
    ts: int
    read: bool


@dataclass(frozen=True)
class UnreadCounts:
    notifications: int
    highlights: int


def write_push_actions(
    txn: Txn, rows: Iterable[tuple[str, str, int, PushActionRow]], now_ms: int
) -> None:
    """Called by the persister inside the events' transaction, with
    (event_id, room_id, stream_ordering, row) for each notification."""
    txn.executemany(
        "INSERT INTO event_push_actions (user_id, event_id, room_id, stream_ordering,"
        " thread_id, highlight, actions, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (user_id, stream_ordering) DO NOTHING",
        [
            (row.user_id, event_id, room_id, position, row.thread_id, int(row.highlight),
             json.dumps(list(row.actions)), now_ms)
            for event_id, room_id, position, row in rows
        ],
    )


class PushActionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def unread_counts(self, user_id: str) -> dict[str, dict[str, UnreadCounts]]:
        """room_id -> thread_id -> the user's unread notification and highlight counts."""
        rows = await self.db.run(
            "unread_counts",
            lambda txn: txn.query(
                "SELECT a.room_id, a.thread_id, COUNT(*), SUM(a.highlight)"
                " FROM event_push_actions a"
                f" WHERE a.user_id = ? AND a.stream_ordering > {_READ_UPTO}"
                " GROUP BY a.room_id, a.thread_id",
                (user_id,),
            ),
        )
        counts: dict[str, dict[str, UnreadCounts]] = {}
        for room_id, thread_id, notifications, highlights in rows:
            counts.setdefault(room_id, {})[thread_id] = UnreadCounts(
                int(notifications), int(highlights or 0)
            )
        return counts

    async def get_notifications(
        self, user_id: str, before: int | None, limit: int, only_highlight: bool
    ) -> list[Notification]:
        """The user's notifications, newest first, below stream position `before`."""
        conditions = ["a.user_id = ?"]
        params: list[Any] = [user_id]
        if before is not None:
            conditions.append("a.stream_ordering < ?")
            params.append(before)
        if only_highlight:
            conditions.append("a.highlight = 1")
        rows = await self.db.run(
            "get_notifications",
            lambda txn: txn.query(
                "SELECT a.user_id, a.event_id, a.room_id, a.stream_ordering, a.thread_id,"
                f" a.highlight, a.actions, a.ts, {_READ_UPTO} FROM event_push_actions a"
                f" WHERE {' AND '.join(conditions)} ORDER BY a.stream_ordering DESC LIMIT ?",
                (*params, limit),
            ),
        )
        return [_notification(row) for row in rows]

    async def get_unpushed(self, user_id: str, after: int, limit: int) -> list[Notification]:
        """Notifications after stream position `after`, oldest first: what a pusher owes."""
        rows = await self.db.run(
            "get_unpushed",
            lambda txn: txn.query(
                "SELECT a.user_id, a.event_id, a.room_id, a.stream_ordering, a.thread_id,"
                f" a.highlight, a.actions, a.ts, {_READ_UPTO} FROM event_push_actions a"
                " WHERE a.user_id = ? AND a.stream_ordering > ?"
                " ORDER BY a.stream_ordering LIMIT ?",
                (user_id, after, limit),
            ),
        )
        return [_notification(row) for row in rows]

    async def delete_older_than(self, ts: int) -> int:
        """Forgets notifications written before `ts` (a rare sweep: no index serves it)."""

        def txn_fn(txn: Txn) -> int:
            txn.execute("DELETE FROM event_push_actions WHERE ts < ?", (ts,))
            return txn.rowcount

        return await self.db.run("prune_push_actions", txn_fn)


def _notification(row: Any) -> Notification:
    user_id, event_id, room_id, position, thread_id, highlight, actions, ts, read_upto = row
    return Notification(user_id, event_id, room_id, position, thread_id, bool(highlight),
                        json.loads(actions), ts, position <= read_upto)
