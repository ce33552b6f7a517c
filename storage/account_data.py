"""Account data (global and per room) and saved sync filters."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database, Txn
from storage.streams import ChangeTracker, StreamIdGenerator


class AccountDataStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # The account data stream: one position per write, for /sync tokens.
        self.stream = StreamIdGenerator()
        self.changes = ChangeTracker()
        self._next_filter_ids: dict[str, int] = {}

    async def start(self) -> None:
        row = await self.db.run(
            "max_account_data", lambda txn: txn.query_one("SELECT MAX(stream_id) FROM account_data")
        )
        self.stream.reset((row[0] or 0) if row else 0)
        self.changes = ChangeTracker(floor=self.stream.current)

    async def put(self, user_id: str, room_id: str, data_type: str, content: dict) -> int:
        """Stores the content ('' room_id for global data); returns its stream position."""
        stream_id = self.stream.allocate()
        try:
            await self.db.run(
                "put_account_data",
                lambda txn: txn.execute(
                    "INSERT INTO account_data (user_id, room_id, type, content, stream_id)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, room_id, type) DO UPDATE"
                    " SET content = excluded.content, stream_id = excluded.stream_id",
                    (user_id, room_id, data_type, json.dumps(content), stream_id),
                ),
            )
        finally:
            self.stream.finish(stream_id)
        self.changes.note(user_id, stream_id)
        return stream_id

    async def get(self, user_id: str, room_id: str, data_type: str) -> dict | None:
        row = await self.db.run(
            "get_account_data",
            lambda txn: txn.query_one(
                "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND type = ?",
                (user_id, room_id, data_type),
            ),
        )
        return json.loads(row[0]) if row else None

    async def get_changed(
        self, user_id: str, since: int, upto: int
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """room_id ('' for global) -> type -> content, for data written in (since, upto]."""
        if not self.changes.changed_since(user_id, since):
            return {}

        def txn_fn(txn: Txn) -> list:
            return txn.query(
                "SELECT room_id, type, content FROM account_data"
                " WHERE user_id = ? AND stream_id > ? AND stream_id <= ?",
                (user_id, since, upto),
            )

        result: dict[str, dict[str, dict[str, Any]]] = {}
        for room_id, data_type, content in await self.db.run("account_data_changes", txn_fn):
            result.setdefault(room_id, {})[data_type] = json.loads(content)
        return result

    async def add_filter(self, user_id: str, filter_json: dict) -> int:
        def txn_fn(txn: Txn) -> int:
            row = txn.query_one(
                "SELECT MAX(filter_id) FROM user_filters WHERE user_id = ?", (user_id,)
            )
            filter_id = (row[0] + 1) if row and row[0] is not None else 0
            txn.execute(
                "INSERT INTO user_filters (user_id, filter_id, filter_json) VALUES (?, ?, ?)",
                (user_id, filter_id, json.dumps(filter_json)),
            )
            return filter_id

        return await self.db.run("add_filter", txn_fn)

    async def get_filter(self, user_id: str, filter_id: int) -> dict | None:
        row = await self.db.run(
            "get_filter",
            lambda txn: txn.query_one(
                "SELECT filter_json FROM user_filters WHERE user_id = ? AND filter_id = ?",
                (user_id, filter_id),
            ),
        )
        return json.loads(row[0]) if row else None
