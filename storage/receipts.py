"""Read receipts: the latest receipt of each (room, user, receipt type, thread), and the
receipts stream that tells /sync which of them changed after a token."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from storage.database import Database, Row, Txn
from storage.events import chunks, placeholders
from storage.streams import ChangeTracker, StreamIdGenerator

PRIVATE_READ = "m.read.private"

_COLUMNS = "room_id, user_id, receipt_type, thread_id, event_id, ts, stream_id"


@dataclass(frozen=True)
class Receipt:
    room_id: str
    user_id: str
    receipt_type: str
    # None for an unthreaded receipt; "main" or a thread root's event ID otherwise.
    thread_id: str | None
    event_id: str
    ts: int
    stream_id: int = 0


class ReceiptStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.stream = StreamIdGenerator()
        # Public receipts change per room; a private one only for its owner, so it is tracked
        # under "user room" and wakes nobody else's /sync.
        self.room_changes = ChangeTracker()
        self.private_changes = ChangeTracker()

    async def start(self) -> None:
        row = await self.db.run(
            "max_receipt_stream", lambda txn: txn.query_one("SELECT MAX(stream_id) FROM receipts")
        )
        self.stream.reset((row[0] or 0) if row else 0)
        self.room_changes = ChangeTracker(floor=self.stream.current)
        self.private_changes = ChangeTracker(floor=self.stream.current)

    def changed_since(self, user_id: str, room_id: str, since: int) -> bool:
        """Whether `user_id` may see a receipt in the room that changed after `since`."""
        return self.room_changes.changed_since(
            room_id, since
        ) or self.private_changes.changed_since(private_key(user_id, room_id), since)

    async def put(self, receipt: Receipt, event_stream_ordering: int) -> int | None:
        """Stores the receipt unless the one it replaces is for the same or a later event.

        Returns the new stream position, or None when nothing changed."""
        stream_id = self.stream.allocate()
        try:
            changed = await self.db.run(
                "put_receipt", _upsert, receipt, event_stream_ordering, stream_id
            )
        finally:
            self.stream.finish(stream_id)
        if not changed:
            return None
        if receipt.receipt_type == PRIVATE_READ:
            self.private_changes.note(private_key(receipt.user_id, receipt.room_id), stream_id)
        else:
            self.room_changes.note(receipt.room_id, stream_id)
        return stream_id

    async def get_event_position(
        self, room_id: str, user_id: str, receipt_type: str, thread_id: str | None
    ) -> int | None:
        """The stream ordering of the event the user's current receipt points at."""
        row = await self.db.run(
            "get_receipt",
            lambda txn: txn.query_one(
                "SELECT event_stream_ordering FROM receipts WHERE room_id = ? AND user_id = ?"
                " AND receipt_type = ? AND thread_id = ?",
                (room_id, user_id, receipt_type, thread_id or ""),
            ),
        )
        return row[0] if row else None

    async def get_current(self, room_ids: Iterable[str], viewer: str) -> list[Receipt]:
        """Every receipt in the rooms that `viewer` may see (others' private ones are not)."""
        return await self._select(room_ids, viewer, None, None)

    async def get_changed(
        self, room_ids: Iterable[str], viewer: str, since: int, upto: int
    ) -> list[Receipt]:
        """The receipts `viewer` may see that were written in (since, upto]."""
        return await self._select(room_ids, viewer, since, upto)

    async def _select(
        self, room_ids: Iterable[str], viewer: str, since: int | None, upto: int | None
    ) -> list[Receipt]:
        rooms = list(room_ids)
        if not rooms:
            return []

        def txn_fn(txn: Txn) -> list[Row]:
            rows: list[Row] = []
            window = "" if since is None else " AND stream_id > ? AND stream_id <= ?"
            for chunk in chunks(rooms):
                params: list = [*chunk, PRIVATE_READ, viewer]
                if since is not None:
                    params += [since, upto]
                rows += txn.query(
                    f"SELECT {_COLUMNS} FROM receipts"
                    f" WHERE room_id IN ({placeholders(len(chunk))})"
                    f" AND (receipt_type <> ? OR user_id = ?){window}",
                    params,
                )
            return rows

        rows = await self.db.run("select_receipts", txn_fn)
        return [
            Receipt(room, user, rtype, thread or None, event_id, ts, stream_id)
            for room, user, rtype, thread, event_id, ts, stream_id in rows
        ]


def private_key(user_id: str, room_id: str) -> str:
    return f"{user_id} {room_id}"


def _upsert(txn: Txn, receipt: Receipt, event_stream_ordering: int, stream_id: int) -> bool:
    # The condition sits in the upsert itself so that two concurrent receipts cannot let the
    # older event win by committing last.
    txn.execute(
        "INSERT INTO receipts (room_id, user_id, receipt_type, thread_id, event_id,"
        " event_stream_ordering, ts, stream_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (room_id, user_id, receipt_type, thread_id) DO UPDATE SET"
        " event_id = excluded.event_id, event_stream_ordering = excluded.event_stream_ordering,"
        " ts = excluded.ts, stream_id = excluded.stream_id"
        " WHERE receipts.event_stream_ordering < excluded.event_stream_ordering",
        (
            receipt.room_id,
            receipt.user_id,
            receipt.receipt_type,
            receipt.thread_id or "",
            receipt.event_id,
            event_stream_ordering,
            receipt.ts,
            stream_id,
        ),
    )
    return txn.rowcount > 0
