"""The latest presence of each local user, so it survives a restart, and the presence stream."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database, Txn
from storage.streams import StreamIdGenerator


@dataclass(frozen=True)
class StoredPresence:
    user_id: str
    state: str
    status_msg: str | None
    last_active_ts: int
    stream_id: int


class PresenceStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.stream = StreamIdGenerator()

    async def start(self) -> None:
        row = await self.db.run(
            "max_presence_stream", lambda txn: txn.query_one("SELECT MAX(stream_id) FROM presence")
        )
        self.stream.reset((row[0] or 0) if row else 0)

    async def get_all(self) -> list[StoredPresence]:
        rows = await self.db.run(
            "all_presence",
            lambda txn: txn.query(
                "SELECT user_id, state, status_msg, last_active_ts, stream_id FROM presence"
            ),
        )
        return [StoredPresence(*row) for row in rows]

    async def put(self, presence: StoredPresence) -> None:
        await self.db.run("put_presence", _upsert, presence)

    async def touch(self, user_id: str, last_active_ts: int) -> None:
        """Records activity that changed nothing clients are told about (no stream position)."""
        await self.db.run(
            "touch_presence",
            lambda txn: txn.execute(
                "UPDATE presence SET last_active_ts = ? WHERE user_id = ? AND last_active_ts < ?",
                (last_active_ts, user_id, last_active_ts),
            ),
        )


def _upsert(txn: Txn, presence: StoredPresence) -> None:
    txn.execute(
        "INSERT INTO presence (user_id, state, status_msg, last_active_ts, stream_id)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET state = excluded.state,"
        " status_msg = excluded.status_msg, last_active_ts = excluded.last_active_ts,"
        " stream_id = excluded.stream_id WHERE presence.stream_id < excluded.stream_id",
        (
            presence.user_id,
            presence.state,
            presence.status_msg,
            presence.last_active_ts,
            presence.stream_id,
        ),
    )
