"""Cross-signing keys (master, self-signing, user-signing) and the signatures users upload."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn
from storage.device_lists import ChangeLog, DeviceListChange, DeviceListStore
from storage.events import chunks, placeholders

KEY_TYPES = ("master", "self_signing", "user_signing")


@dataclass(frozen=True)
class CrossSigningKey:
    public_key: str
    key: dict[str, Any]

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.public_key}"


@dataclass(frozen=True)
class Signature:
    signer_user_id: str
    signer_key_id: str
    target_user_id: str
    target_key_id: str
    signature: str


class CrossSigningStore:
    def __init__(self, db: Database, device_lists: DeviceListStore) -> None:
        self.db = db
        self.device_lists = device_lists

    async def get_keys(self, user_ids: Iterable[str]) -> dict[str, dict[str, CrossSigningKey]]:
        """user -> key type -> key, for users that uploaded any."""
        wanted = list(dict.fromkeys(user_ids))

        def txn_fn(txn: Txn) -> dict[str, dict[str, CrossSigningKey]]:
            found: dict[str, dict[str, CrossSigningKey]] = {}
            for chunk in chunks(wanted):
                for user_id, key_type, public_key, key_json in txn.query(
                    "SELECT user_id, key_type, public_key, key_json FROM e2e_cross_signing_keys"
                    f" WHERE user_id IN ({placeholders(len(chunk))})",
                    chunk,
                ):
                    found.setdefault(user_id, {})[key_type] = CrossSigningKey(
                        public_key, json.loads(key_json)
                    )
            return found

        return await self.db.run("get_cross_signing_keys", txn_fn) if wanted else {}

    async def get_user_keys(self, user_id: str) -> dict[str, CrossSigningKey]:
        return (await self.get_keys([user_id])).get(user_id, {})

    async def set_keys(
        self, user_id: str, keys: dict[str, CrossSigningKey]
    ) -> list[DeviceListChange]:
        """Stores new keys of `user_id` (by type). Signatures made by or on a replaced key are
        deleted with it: they vouch for a key that is no longer the user's."""

        def txn_fn(txn: Txn, log: ChangeLog) -> None:
            for key_type, key in keys.items():
                row = txn.query_one(
                    "SELECT public_key FROM e2e_cross_signing_keys"
                    " WHERE user_id = ? AND key_type = ?",
                    (user_id, key_type),
                )
                if row is not None and row[0] != key.public_key:
                    _forget_signatures_of(txn, user_id, row[0])
                txn.execute(
                    "INSERT INTO e2e_cross_signing_keys (user_id, key_type, public_key, key_json)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, key_type) DO UPDATE"
                    " SET public_key = excluded.public_key, key_json = excluded.key_json",
                    (user_id, key_type, key.public_key, json.dumps(key.key, sort_keys=True)),
                )
            log.add(user_id)

        _, changes = await self.device_lists.write("set_cross_signing_keys", txn_fn)
        return changes

    async def add_signatures(
        self, signatures: list[Signature], changes: list[DeviceListChange]
    ) -> list[DeviceListChange]:
        """Stores the signatures and records `changes` at one stream position."""

        def txn_fn(txn: Txn, log: ChangeLog) -> None:
            for sig in signatures:
                txn.execute(
                    "INSERT INTO e2e_cross_signing_signatures (signer_user_id, signer_key_id,"
                    " target_user_id, target_key_id, signature) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id)"
                    " DO UPDATE SET signature = excluded.signature",
                    (
                        sig.signer_user_id,
                        sig.signer_key_id,
                        sig.target_user_id,
                        sig.target_key_id,
                        sig.signature,
                    ),
                )
            for change in changes:
                log.add(change.user_id, change.only_for)

        if not signatures:
            return []
        _, recorded = await self.device_lists.write("add_cross_signing_signatures", txn_fn)
        return recorded

    async def get_signatures(
        self, target_user_ids: Iterable[str], viewer: str
    ) -> dict[tuple[str, str], list[Signature]]:
        """(target user, target key ID) -> the uploaded signatures `viewer` may see: those made
        by the key's owner and by the viewer (never other users' user-signing signatures)."""
        wanted = list(dict.fromkeys(target_user_ids))

        def txn_fn(txn: Txn) -> list[tuple]:
            rows: list[tuple] = []
            for chunk in chunks(wanted):
                rows += txn.query(
                    "SELECT signer_user_id, signer_key_id, target_user_id, target_key_id,"
                    " signature FROM e2e_cross_signing_signatures"
                    f" WHERE target_user_id IN ({placeholders(len(chunk))})"
                    " AND (signer_user_id = target_user_id OR signer_user_id = ?)",
                    (*chunk, viewer),
                )
            return rows

        found: dict[tuple[str, str], list[Signature]] = {}
        for row in await self.db.run("get_cross_signing_signatures", txn_fn) if wanted else []:
            sig = Signature(*row)
            found.setdefault((sig.target_user_id, sig.target_key_id), []).append(sig)
        return found


def _forget_signatures_of(txn: Txn, user_id: str, public_key: str) -> None:
    txn.execute(
        "DELETE FROM e2e_cross_signing_signatures WHERE signer_user_id = ? AND signer_key_id = ?",
        (user_id, f"ed25519:{public_key}"),
    )
    txn.execute(
        "DELETE FROM e2e_cross_signing_signatures WHERE target_user_id = ? AND target_key_id = ?",
        (user_id, public_key),
    )
