"""Device identity keys, one-time keys and fallback keys (the /keys/upload, query and claim data).

The JSON objects are stored as the devices signed them; the server only adds `unsigned` on the
way out. Writes that change /keys/query's answer record a device-list change in the same commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn
from storage.device_lists import ChangeLog, DeviceListChange, DeviceListStore
from storage.events import chunks, placeholders

# How often a claim retries when a concurrent claim took the key it picked (PostgreSQL).
_CLAIM_ATTEMPTS = 5


@dataclass(frozen=True)
class KeyUpload:
    """What one /keys/upload stores. Keys are (algorithm, key_id, key object)."""

    user_id: str
    device_id: str
    device_keys: dict[str, Any] | None
    one_time_keys: list[tuple[str, str, Any]]
    fallback_keys: list[tuple[str, str, Any]]
    now_ms: int


@dataclass(frozen=True)
class KeyCounts:
    one_time: dict[str, int]
    unused_fallback: list[str]


@dataclass(frozen=True)
class StoredDeviceKeys:
    keys: dict[str, Any]
    display_name: str | None


class OneTimeKeyConflict(Exception):
    """A one-time key ID was uploaded before with a different key."""

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id)
        self.key_id = key_id


class DeviceKeyStore:
    def __init__(self, db: Database, device_lists: DeviceListStore) -> None:
        self.db = db
        self.device_lists = device_lists

    async def upload(self, upload: KeyUpload) -> list[DeviceListChange]:
        """Stores the upload; a device-list change if the device keys are new or changed."""
        _, changes = await self.device_lists.write("upload_keys", _upload_txn, upload)
        return changes

    async def get_counts(self, user_id: str, device_id: str) -> KeyCounts:
        return await self.db.run("e2e_key_counts", _counts_txn, user_id, device_id)

    async def get_device_keys(
        self, wanted: dict[str, list[str]]
    ) -> dict[str, dict[str, StoredDeviceKeys]]:
        """user -> device -> keys of existing devices; an empty device list means all devices."""

        def txn_fn(txn: Txn) -> dict[str, dict[str, StoredDeviceKeys]]:
            found: dict[str, dict[str, StoredDeviceKeys]] = {}
            for user_id, device_ids in wanted.items():
                for device_id, key_json, name in _select_device_keys(txn, user_id, device_ids):
                    found.setdefault(user_id, {})[device_id] = StoredDeviceKeys(
                        json.loads(key_json), name
                    )
            return found

        return await self.db.run("get_device_keys", txn_fn)

    async def claim(
        self, wanted: list[tuple[str, str, str]]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """Claims a key for each (user, device, algorithm): a one-time key while any is left
        (each handed out once), else the fallback key, which is then marked used."""

        def txn_fn(txn: Txn) -> dict[str, dict[str, dict[str, Any]]]:
            claimed: dict[str, dict[str, dict[str, Any]]] = {}
            for user_id, device_id, algorithm in wanted:
                key = _claim_one_time_key(txn, user_id, device_id, algorithm)
                if key is None:
                    key = _claim_fallback_key(txn, user_id, device_id, algorithm)
                if key is not None:
                    claimed.setdefault(user_id, {}).setdefault(device_id, {}).update([key])
            return claimed

        return await self.db.run("claim_keys", txn_fn)

    async def delete_for_removed_devices(self, user_id: str) -> list[DeviceListChange]:
        """Deletes the keys and messages of `user_id`'s devices that no longer exist; a
        device-list change if any of them had identity keys."""
        _, changes = await self.device_lists.write(
            "delete_removed_device_keys", _delete_removed_txn, user_id
        )
        return changes

    async def get_device_ids_with_keys(self, user_id: str) -> set[str]:
        rows = await self.db.run(
            "device_ids_with_keys",
            lambda txn: txn.query(
                "SELECT device_id FROM e2e_device_keys WHERE user_id = ?", (user_id,)
            ),
        )
        return {row[0] for row in rows}


def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _upload_txn(txn: Txn, log: ChangeLog, upload: KeyUpload) -> None:
    user_id, device_id = upload.user_id, upload.device_id
    if upload.device_keys is not None:
        new_json = _dump(upload.device_keys)
        row = txn.query_one(
            "SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?",
            (user_id, device_id),
        )
        if row is None or json.loads(row[0]) != upload.device_keys:
            txn.execute(
                "INSERT INTO e2e_device_keys (user_id, device_id, key_json, uploaded_ts)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE"
                " SET key_json = excluded.key_json, uploaded_ts = excluded.uploaded_ts",
                (user_id, device_id, new_json, upload.now_ms),
            )
            log.add(user_id)
    if upload.one_time_keys:
        _insert_one_time_keys(txn, upload)
    for algorithm, key_id, key in upload.fallback_keys:
        _replace_fallback_key(txn, user_id, device_id, algorithm, key_id, key)


def _insert_one_time_keys(txn: Txn, upload: KeyUpload) -> None:
    user_id, device_id = upload.user_id, upload.device_id
    row = txn.query_one(
        "SELECT MAX(upload_order) FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?",
        (user_id, device_id),
    )
    order = (row[0] or 0) + 1 if row else 1
    for algorithm, key_id, key in upload.one_time_keys:
        existing = txn.query_one(
            "SELECT key_json FROM e2e_one_time_keys"
            " WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?",
            (user_id, device_id, algorithm, key_id),
        )
        if existing is not None:
            # A retried upload repeats its keys: fine. The same ID for another key is not.
            if json.loads(existing[0]) != key:
                raise OneTimeKeyConflict(f"{algorithm}:{key_id}")
            continue
        txn.execute(
            "INSERT INTO e2e_one_time_keys"
            " (user_id, device_id, algorithm, key_id, key_json, upload_order)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, device_id, algorithm, key_id, _dump(key), order),
        )


def _replace_fallback_key(
    txn: Txn, user_id: str, device_id: str, algorithm: str, key_id: str, key: Any
) -> None:
    row = txn.query_one(
        "SELECT key_id, key_json FROM e2e_fallback_keys"
        " WHERE user_id = ? AND device_id = ? AND algorithm = ?",
        (user_id, device_id, algorithm),
    )
    if row is not None and row[0] == key_id and json.loads(row[1]) == key:
        # The same key again (a retried upload) stays used if it was: it is not a new key.
        return
    txn.execute(
        "INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id, algorithm) DO UPDATE"
        " SET key_id = excluded.key_id, key_json = excluded.key_json, used = excluded.used",
        (user_id, device_id, algorithm, key_id, _dump(key), False),
    )


def _counts_txn(txn: Txn, user_id: str, device_id: str) -> KeyCounts:
    rows = txn.query(
        "SELECT algorithm, COUNT(*) FROM e2e_one_time_keys"
        " WHERE user_id = ? AND device_id = ? GROUP BY algorithm",
        (user_id, device_id),
    )
    unused = txn.query(
        "SELECT algorithm FROM e2e_fallback_keys"
        " WHERE user_id = ? AND device_id = ? AND used = ? ORDER BY algorithm",
        (user_id, device_id, False),
    )
    return KeyCounts({row[0]: int(row[1]) for row in rows}, [row[0] for row in unused])


def _select_device_keys(txn: Txn, user_id: str, device_ids: list[str]) -> list[tuple]:
    # Joined with devices: keys of a device being deleted are never shown.
    sql = (
        "SELECT k.device_id, k.key_json, d.display_name FROM e2e_device_keys k"
        " JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id"
        " WHERE k.user_id = ?"
    )
    if not device_ids:
        return txn.query(sql, (user_id,))
    rows: list[tuple] = []
    for chunk in chunks(list(dict.fromkeys(device_ids))):
        rows += txn.query(
            sql + f" AND k.device_id IN ({placeholders(len(chunk))})", (user_id, *chunk)
        )
    return rows


def _claim_one_time_key(
    txn: Txn, user_id: str, device_id: str, algorithm: str
) -> tuple[str, Any] | None:
    for _ in range(_CLAIM_ATTEMPTS):
        row = txn.query_one(
            "SELECT key_id, key_json FROM e2e_one_time_keys"
            " WHERE user_id = ? AND device_id = ? AND algorithm = ?"
            " ORDER BY upload_order, key_id LIMIT 1",
            (user_id, device_id, algorithm),
        )
        if row is None:
            return None
        txn.execute(
            "DELETE FROM e2e_one_time_keys"
            " WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?",
            (user_id, device_id, algorithm, row[0]),
        )
        # Zero rows: a concurrent claim (another connection) got this key first; pick again.
        if txn.rowcount == 1:
            return f"{algorithm}:{row[0]}", json.loads(row[1])
    return None


def _claim_fallback_key(
    txn: Txn, user_id: str, device_id: str, algorithm: str
) -> tuple[str, Any] | None:
    row = txn.query_one(
        "SELECT key_id, key_json FROM e2e_fallback_keys"
        " WHERE user_id = ? AND device_id = ? AND algorithm = ?",
        (user_id, device_id, algorithm),
    )
    if row is None:
        return None
    txn.execute(
        "UPDATE e2e_fallback_keys SET used = ? WHERE user_id = ? AND device_id = ? AND algorithm = ?",
        (True, user_id, device_id, algorithm),
    )
    return f"{algorithm}:{row[0]}", json.loads(row[1])


def _delete_removed_txn(txn: Txn, log: ChangeLog, user_id: str) -> None:
    gone = "device_id NOT IN (SELECT device_id FROM devices WHERE user_id = ?)"
    txn.execute(f"DELETE FROM e2e_device_keys WHERE user_id = ? AND {gone}", (user_id, user_id))
    if txn.rowcount > 0:
        log.add(user_id)
    # Their pending to-device messages and transaction IDs go too: a later login that reuses
    # the device ID is a new device (spec: transaction identifiers).
    for table in ("e2e_one_time_keys", "e2e_fallback_keys", "device_inbox", "device_inbox_txns"):
        txn.execute(f"DELETE FROM {table} WHERE user_id = ? AND {gone}", (user_id, user_id))
