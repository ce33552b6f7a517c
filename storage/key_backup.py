"""Server-side key backups: versions (algorithm + auth_data) and the encrypted session keys.

The server cannot read the keys; it keeps, per session, the better of two uploads by the
metadata the client sends in the clear (the replacement rule is the caller's `better` function).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn


@dataclass(frozen=True)
class BackupVersion:
    version: int
    algorithm: str
    auth_data: dict[str, Any]
    etag: int
    count: int


@dataclass(frozen=True)
class RoomKey:
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "first_message_index": self.first_message_index,
            "forwarded_count": self.forwarded_count,
            "is_verified": self.is_verified,
            "session_data": self.session_data,
        }


# (room_id, session_id) -> key
RoomKeys = dict[tuple[str, str], RoomKey]
Better = Callable[[RoomKey, RoomKey], bool]


class KeyBackupStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_version(self, user_id: str, algorithm: str, auth_data: dict) -> int:
        def txn_fn(txn: Txn) -> int:
            # Numbers are never reused, deleted versions included: an old client must not
            # mistake a new backup for the one it knew.
            row = txn.query_one(
                "SELECT MAX(version) FROM e2e_room_keys_versions WHERE user_id = ?", (user_id,)
            )
            version = (row[0] or 0) + 1 if row else 1
            txn.execute(
                "INSERT INTO e2e_room_keys_versions"
                " (user_id, version, algorithm, auth_data, etag, deleted)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, version, algorithm, json.dumps(auth_data), 0, False),
            )
            return version

        return await self.db.run("create_backup_version", txn_fn)

    async def get_version(self, user_id: str, version: int | None) -> BackupVersion | None:
        """The version (the newest when None), unless deleted or unknown."""
        return await self.db.run("get_backup_version", _get_version, user_id, version)

    async def version_existed(self, user_id: str, version: int) -> bool:
        row = await self.db.run(
            "backup_version_existed",
            lambda txn: txn.query_one(
                "SELECT 1 FROM e2e_room_keys_versions WHERE user_id = ? AND version = ?",
                (user_id, version),
            ),
        )
        return row is not None

    async def update_auth_data(self, user_id: str, version: int, auth_data: dict) -> None:
        await self.db.run(
            "update_backup_version",
            lambda txn: txn.execute(
                "UPDATE e2e_room_keys_versions SET auth_data = ? WHERE user_id = ? AND version = ?",
                (json.dumps(auth_data), user_id, version),
            ),
        )

    async def delete_version(self, user_id: str, version: int) -> None:
        def txn_fn(txn: Txn) -> None:
            txn.execute(
                "DELETE FROM e2e_room_keys WHERE user_id = ? AND version = ?", (user_id, version)
            )
            txn.execute(
                "UPDATE e2e_room_keys_versions SET deleted = ? WHERE user_id = ? AND version = ?",
                (True, user_id, version),
            )

        await self.db.run("delete_backup_version", txn_fn)

    async def put_keys(
        self, user_id: str, version: int, keys: RoomKeys, better: Better
    ) -> BackupVersion | None:
        """Stores each key unless the stored one is better; the new etag and count, or None
        if the version is no longer the current one (deleted or superseded meanwhile)."""

        def txn_fn(txn: Txn) -> BackupVersion | None:
            current = _get_version(txn, user_id, None)
            if current is None or current.version != version:
                return None
            existing = _select_keys(txn, user_id, version, list(keys))
            changed = False
            for (room_id, session_id), key in keys.items():
                old = existing.get((room_id, session_id))
                if old is not None and not better(key, old):
                    continue
                _upsert_key(txn, user_id, version, room_id, session_id, key)
                changed = True
            if changed:
                _bump_etag(txn, user_id, version)
            return _get_version(txn, user_id, version)

        return await self.db.run("put_backup_keys", txn_fn)

    async def get_keys(
        self, user_id: str, version: int, room_id: str | None, session_id: str | None
    ) -> RoomKeys:
        def txn_fn(txn: Txn) -> list[tuple]:
            sql, params = _key_filter(user_id, version, room_id, session_id)
            return txn.query(
                "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified,"
                " session_data FROM e2e_room_keys WHERE " + sql,
                params,
            )

        rows = await self.db.run("get_backup_keys", txn_fn)
        return {(row[0], row[1]): _room_key(row[2:]) for row in rows}

    async def delete_keys(
        self, user_id: str, version: int, room_id: str | None, session_id: str | None
    ) -> BackupVersion | None:
        """Deletes the keys; the new etag and count (None if the version is gone)."""

        def txn_fn(txn: Txn) -> BackupVersion | None:
            sql, params = _key_filter(user_id, version, room_id, session_id)
            txn.execute("DELETE FROM e2e_room_keys WHERE " + sql, params)
            if txn.rowcount > 0:
                _bump_etag(txn, user_id, version)
            return _get_version(txn, user_id, version)

        return await self.db.run("delete_backup_keys", txn_fn)


def _get_version(txn: Txn, user_id: str, version: int | None) -> BackupVersion | None:
    sql = (
        "SELECT version, algorithm, auth_data, etag FROM e2e_room_keys_versions"
        " WHERE user_id = ? AND deleted = ?"
    )
    if version is None:
        row = txn.query_one(sql + " ORDER BY version DESC LIMIT 1", (user_id, False))
    else:
        row = txn.query_one(sql + " AND version = ?", (user_id, False, version))
    if row is None:
        return None
    count = txn.query_one(
        "SELECT COUNT(*) FROM e2e_room_keys WHERE user_id = ? AND version = ?", (user_id, row[0])
    )
    return BackupVersion(row[0], row[1], json.loads(row[2]), row[3], count[0] if count else 0)


def _bump_etag(txn: Txn, user_id: str, version: int) -> None:
    txn.execute(
        "UPDATE e2e_room_keys_versions SET etag = etag + 1 WHERE user_id = ? AND version = ?",
        (user_id, version),
    )


def _key_filter(
    user_id: str, version: int, room_id: str | None, session_id: str | None
) -> tuple[str, list[Any]]:
    sql = "user_id = ? AND version = ?"
    params: list[Any] = [user_id, version]
    if room_id is not None:
        sql += " AND room_id = ?"
        params.append(room_id)
        if session_id is not None:
            sql += " AND session_id = ?"
            params.append(session_id)
    return sql, params


def _select_keys(txn: Txn, user_id: str, version: int, wanted: list[tuple[str, str]]) -> RoomKeys:
    found: RoomKeys = {}
    for room_id in {room for room, _ in wanted}:
        sessions = {session for room, session in wanted if room == room_id}
        for row in txn.query(
            "SELECT session_id, first_message_index, forwarded_count, is_verified, session_data"
            " FROM e2e_room_keys WHERE user_id = ? AND version = ? AND room_id = ?",
            (user_id, version, room_id),
        ):
            if row[0] in sessions:
                found[(room_id, row[0])] = _room_key(row[1:])
    return found


def _upsert_key(
    txn: Txn, user_id: str, version: int, room_id: str, session_id: str, key: RoomKey
) -> None:
    txn.execute(
        "INSERT INTO e2e_room_keys (user_id, version, room_id, session_id, first_message_index,"
        " forwarded_count, is_verified, session_data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET"
        " first_message_index = excluded.first_message_index,"
        " forwarded_count = excluded.forwarded_count, is_verified = excluded.is_verified,"
        " session_data = excluded.session_data",
        (
            user_id,
            version,
            room_id,
            session_id,
            key.first_message_index,
            key.forwarded_count,
            key.is_verified,
            json.dumps(key.session_data),
        ),
    )


def _room_key(row: tuple) -> RoomKey:
    return RoomKey(int(row[0]), int(row[1]), bool(row[2]), json.loads(row[3]))
