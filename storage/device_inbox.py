"""To-device messages waiting for their device, and the to-device stream.

One /sendToDevice takes one stream position; each device gets at most one message from it, so
a device's messages have distinct positions and a sync token can say "up to here" exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn
from storage.streams import ChangeTracker, StreamIdGenerator

# Transaction IDs are kept this long; a client retries within minutes, not days.
TXN_ID_LIFETIME_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class InboxBatch:
    messages: list[dict[str, Any]]
    # The position of the last message returned, and whether more wait beyond it.
    last_position: int
    more: bool


class DeviceInboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.stream = StreamIdGenerator()
        # Keyed by "user_id|device_id": the last position at which the device got a message.
        self.changes = ChangeTracker()

    async def start(self) -> None:
        row = await self.db.run(
            "max_device_inbox", lambda txn: txn.query_one("SELECT MAX(stream_id) FROM device_inbox")
        )
        current = (row[0] or 0) if row else 0
        self.stream.reset(current)
        self.changes = ChangeTracker(floor=current)

    async def add_messages(
        self,
        sender: tuple[str, str],
        event_type: str,
        txn_id: str,
        messages: dict[tuple[str, str], dict[str, Any]],
        now_ms: int,
    ) -> int | None:
        """Queues one message per (user, device); returns the stream position, or None when
        the sender's (device, event type, txn ID) was seen before and nothing was queued."""
        stream_id = self.stream.allocate()

        def txn_fn(txn: Txn) -> bool:
            txn.execute(
                "INSERT INTO device_inbox_txns (user_id, device_id, event_type, txn_id,"
                " inserted_ts) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (sender[0], sender[1], event_type, txn_id, now_ms),
            )
            if txn.rowcount == 0:
                return False
            txn.executemany(
                "INSERT INTO device_inbox (user_id, device_id, stream_id, message_json)"
                " VALUES (?, ?, ?, ?)",
                [
                    (user_id, device_id, stream_id, json.dumps(message, ensure_ascii=False))
                    for (user_id, device_id), message in messages.items()
                ],
            )
            return True

        try:
            added = await self.db.run("add_to_device_messages", txn_fn)
        finally:
            self.stream.finish(stream_id)
        if not added:
            return None
        for user_id, device_id in messages:
            self.changes.note(inbox_key(user_id, device_id), stream_id)
        return stream_id

    async def take_batch(
        self, user_id: str, device_id: str, acknowledged: int, upto: int, limit: int
    ) -> InboxBatch:
        """Deletes the messages up to `acknowledged` (the client has them) and returns the
        next `limit` after it, up to `upto`; those stay stored until acknowledged in turn."""

        def txn_fn(txn: Txn) -> list[tuple]:
            if acknowledged > 0:
                txn.execute(
                    "DELETE FROM device_inbox"
                    " WHERE user_id = ? AND device_id = ? AND stream_id <= ?",
                    (user_id, device_id, acknowledged),
                )
            return txn.query(
                "SELECT stream_id, message_json FROM device_inbox"
                " WHERE user_id = ? AND device_id = ? AND stream_id > ? AND stream_id <= ?"
                " ORDER BY stream_id LIMIT ?",
                (user_id, device_id, acknowledged, upto, limit + 1),
            )

        rows = await self.db.run("take_to_device_batch", txn_fn)
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1][0] if rows else upto
        return InboxBatch([json.loads(row[1]) for row in rows], last, more)

    async def forget_old_txn_ids(self, now_ms: int) -> None:
        await self.db.run(
            "forget_to_device_txn_ids",
            lambda txn: txn.execute(
                "DELETE FROM device_inbox_txns WHERE inserted_ts < ?",
                (now_ms - TXN_ID_LIFETIME_MS,),
            ),
        )


def inbox_key(user_id: str, device_id: str) -> str:
    return f"{user_id}|{device_id}"
