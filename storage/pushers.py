"""Pushers: where each user's notifications are delivered, and how far each has got."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from storage.database import Database, Txn

_COLUMNS = (
    "id, user_id, device_id, kind, app_id, pushkey, app_display_name, device_display_name,"
    " profile_tag, lang, data, created_ts, last_stream_ordering, activated, ack_token,"
    " ack_token_expires_ts"
)


@dataclass
class Pusher:
    id: int
    user_id: str
    device_id: str | None
    kind: str
    app_id: str
    pushkey: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: dict[str, Any] = field(default_factory=dict)
    created_ts: int = 0
    # The stream position of the last notification handled (pushed, or skipped as dormant).
    last_stream_ordering: int = 0
    activated: bool = True
    ack_token: str | None = None
    ack_token_expires_ts: int | None = None


class PusherStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_all(self) -> list[Pusher]:
        rows = await self.db.run(
            "get_pushers", lambda txn: txn.query(f"SELECT {_COLUMNS} FROM pushers ORDER BY id")
        )
        return [_pusher(row) for row in rows]

    async def get_for_user(self, user_id: str) -> list[Pusher]:
        rows = await self.db.run(
            "get_user_pushers",
            lambda txn: txn.query(
                f"SELECT {_COLUMNS} FROM pushers WHERE user_id = ? ORDER BY id", (user_id,)
            ),
        )
        return [_pusher(row) for row in rows]

    async def upsert(self, pusher: Pusher, remove_others: bool) -> tuple[Pusher, list[int]]:
        """Creates or replaces the user's pusher with this (app_id, pushkey). With
        `remove_others`, pushers of other users with the same (app_id, pushkey) go (the
        spec's `append: false`). Returns the stored pusher and the IDs of those removed."""
        return await self.db.run("upsert_pusher", _upsert, pusher, remove_others)

    async def delete(self, user_id: str, app_id: str, pushkey: str) -> int | None:
        """Deletes the user's pusher; its ID, or None if there was none."""

        def txn_fn(txn: Txn) -> int | None:
            row = txn.query_one(
                "SELECT id FROM pushers WHERE user_id = ? AND app_id = ? AND pushkey = ?",
                (user_id, app_id, pushkey),
            )
            if row is None:
                return None
            txn.execute("DELETE FROM pushers WHERE id = ?", (row[0],))
            return row[0]

        return await self.db.run("delete_pusher", txn_fn)

    async def delete_by_id(self, pusher_id: int) -> None:
        await self.db.run(
            "delete_pusher_by_id",
            lambda txn: txn.execute("DELETE FROM pushers WHERE id = ?", (pusher_id,)),
        )

    async def set_position(self, pusher_id: int, stream_ordering: int) -> None:
        await self.db.run(
            "pusher_position",
            lambda txn: txn.execute(
                "UPDATE pushers SET last_stream_ordering = ? WHERE id = ?",
                (stream_ordering, pusher_id),
            ),
        )

    async def activate(self, pusher_id: int) -> None:
        await self.db.run(
            "activate_pusher",
            lambda txn: txn.execute(
                "UPDATE pushers SET activated = 1, ack_token = NULL, ack_token_expires_ts = NULL"
                " WHERE id = ?",
                (pusher_id,),
            ),
        )


def _pusher(row: Any) -> Pusher:
    values = list(row)
    values[10] = json.loads(values[10])
    values[13] = bool(values[13])
    return Pusher(*values)


def _upsert(txn: Txn, pusher: Pusher, remove_others: bool) -> tuple[Pusher, list[int]]:
    removed: list[int] = []
    if remove_others:
        removed = [r[0] for r in txn.query(
            "SELECT id FROM pushers WHERE app_id = ? AND pushkey = ? AND user_id <> ?",
            (pusher.app_id, pusher.pushkey, pusher.user_id),
        )]
        txn.execute(
            "DELETE FROM pushers WHERE app_id = ? AND pushkey = ? AND user_id <> ?",
            (pusher.app_id, pusher.pushkey, pusher.user_id),
        )
    existing = txn.query_one(
        "SELECT id FROM pushers WHERE user_id = ? AND app_id = ? AND pushkey = ?",
        (pusher.user_id, pusher.app_id, pusher.pushkey),
    )
    if existing is not None:
        pusher.id = existing[0]
        txn.execute("DELETE FROM pushers WHERE id = ?", (pusher.id,))
    else:
        # Random, not MAX(id) + 1: two servers' transactions cannot pick the same one.
        pusher.id = secrets.randbits(52)
    txn.execute(
        f"INSERT INTO pushers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (pusher.id, pusher.user_id, pusher.device_id, pusher.kind, pusher.app_id, pusher.pushkey,
         pusher.app_display_name, pusher.device_display_name, pusher.profile_tag, pusher.lang,
         json.dumps(pusher.data), pusher.created_ts, pusher.last_stream_ordering,
         int(pusher.activated), pusher.ack_token, pusher.ack_token_expires_ts),
    )
    return pusher, removed
