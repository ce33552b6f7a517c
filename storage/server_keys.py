"""Other servers' signing keys and the key documents they came in (federation keyring)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn


@dataclass(frozen=True)
class StoredKey:
    server_name: str
    key_id: str
    verify_key_base64: str
    valid_until_ts: int


class ServerKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def store_keys(
        self,
        server_name: str,
        keys: Iterable[StoredKey],
        document: dict[str, Any] | None,
        valid_until_ts: int,
        now_ms: int,
    ) -> None:
        """Keeps the keys (a later validity never shrinks) and, if given, the document."""
        rows = [(k.server_name, k.key_id, k.verify_key_base64, k.valid_until_ts, now_ms) for k in keys]

        def txn_fn(txn: Txn) -> None:
            txn.executemany(
                "INSERT INTO server_signature_keys"
                " (server_name, key_id, verify_key, valid_until_ts, fetched_ts)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (server_name, key_id) DO UPDATE SET"
                " valid_until_ts = CASE WHEN excluded.valid_until_ts"
                " > server_signature_keys.valid_until_ts THEN excluded.valid_until_ts"
                " ELSE server_signature_keys.valid_until_ts END,"
                " fetched_ts = excluded.fetched_ts",
                rows,
            )
            if document is not None:
                txn.execute(
                    "INSERT INTO server_key_documents"
                    " (server_name, document, valid_until_ts, fetched_ts) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (server_name) DO UPDATE SET document = excluded.document,"
                    " valid_until_ts = excluded.valid_until_ts, fetched_ts = excluded.fetched_ts"
                    " WHERE excluded.valid_until_ts >= server_key_documents.valid_until_ts",
                    (server_name, json.dumps(document), valid_until_ts, now_ms),
                )

        await self.db.run("store_server_keys", txn_fn)

    async def get_keys(self, server_name: str) -> list[StoredKey]:
        rows = await self.db.run(
            "get_server_keys",
            lambda txn: txn.query(
                "SELECT key_id, verify_key, valid_until_ts FROM server_signature_keys"
                " WHERE server_name = ?",
                (server_name,),
            ),
        )
        return [StoredKey(server_name, kid, key, until) for kid, key, until in rows]

    async def get_document(self, server_name: str) -> dict[str, Any] | None:
        row = await self.db.run(
            "get_server_key_document",
            lambda txn: txn.query_one(
                "SELECT document FROM server_key_documents WHERE server_name = ?", (server_name,)
            ),
        )
        return json.loads(row[0]) if row else None
