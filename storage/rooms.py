"""Room-level records outside the event graph: aliases, directory visibility, forgotten rooms."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database, Txn


class RoomStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_alias(self, alias: str, room_id: str, creator: str) -> bool:
        """False if the alias is taken."""

        def txn_fn(txn: Txn) -> bool:
            if txn.query_one("SELECT 1 FROM room_aliases WHERE room_alias = ?", (alias,)):
                return False
            txn.execute(
                "INSERT INTO room_aliases (room_alias, room_id, creator) VALUES (?, ?, ?)",
                (alias, room_id, creator),
            )
            return True

        return await self.db.run("create_alias", txn_fn)

    async def get_alias(self, alias: str) -> tuple[str, str] | None:
        """(room_id, creator) or None."""
        row = await self.db.run(
            "get_alias",
            lambda txn: txn.query_one(
                "SELECT room_id, creator FROM room_aliases WHERE room_alias = ?", (alias,)
            ),
        )
        return (row[0], row[1]) if row else None

    async def delete_alias(self, alias: str) -> None:
        await self.db.run(
            "delete_alias",
            lambda txn: txn.execute("DELETE FROM room_aliases WHERE room_alias = ?", (alias,)),
        )

    async def get_aliases_for_room(self, room_id: str) -> list[str]:
        rows = await self.db.run(
            "aliases_for_room",
            lambda txn: txn.query(
                "SELECT room_alias FROM room_aliases WHERE room_id = ? ORDER BY room_alias",
                (room_id,),
            ),
        )
        return [r[0] for r in rows]

    async def set_public(self, room_id: str, is_public: bool) -> None:
        await self.db.run(
            "set_room_public",
            lambda txn: txn.execute(
                "UPDATE rooms SET is_public = ? WHERE room_id = ?", (is_public, room_id)
            ),
        )

    async def is_public(self, room_id: str) -> bool:
        row = await self.db.run(
            "is_room_public",
            lambda txn: txn.query_one("SELECT is_public FROM rooms WHERE room_id = ?", (room_id,)),
        )
        return bool(row[0]) if row else False

    async def forget(self, user_id: str, room_id: str) -> None:
        await self.db.run(
            "forget_room",
            lambda txn: txn.execute(
                "INSERT INTO forgotten_rooms (user_id, room_id) VALUES (?, ?)"
                " ON CONFLICT (user_id, room_id) DO NOTHING",
                (user_id, room_id),
            ),
        )

    async def unforget(self, user_id: str, room_id: str) -> None:
        await self.db.run(
            "unforget_room",
            lambda txn: txn.execute(
                "DELETE FROM forgotten_rooms WHERE user_id = ? AND room_id = ?", (user_id, room_id)
            ),
        )

    async def get_forgotten(self, user_id: str) -> set[str]:
        rows = await self.db.run(
            "forgotten_rooms",
            lambda txn: txn.query(
                "SELECT room_id FROM forgotten_rooms WHERE user_id = ?", (user_id,)
            ),
        )
        return {r[0] for r in rows}

    async def put_invite_state(
        self, event_id: str, room_id: str, stripped_state: list[dict[str, Any]]
    ) -> None:
        """What an out-of-band invite says about its room, kept for the invitee's /sync."""
        await self.db.run(
            "put_invite_state",
            lambda txn: txn.execute(
                "INSERT INTO invite_room_state (event_id, room_id, state_json) VALUES (?, ?, ?)"
                " ON CONFLICT (event_id) DO NOTHING",
                (event_id, room_id, json.dumps(stripped_state)),
            ),
        )

    async def get_invite_state(self, event_id: str) -> list[dict[str, Any]] | None:
        row = await self.db.run(
            "get_invite_state",
            lambda txn: txn.query_one(
                "SELECT state_json FROM invite_room_state WHERE event_id = ?", (event_id,)
            ),
        )
        return json.loads(row[0]) if row else None
