"""OpenID tokens: short-lived proofs of identity that a user hands to a third party."""

from __future__ import annotations

from storage.database import Database, Txn


class OpenIdStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_token(
        self, token_hash: str, user_id: str, now_ms: int, valid_until_ms: int
    ) -> None:
        def txn_fn(txn: Txn) -> None:
            # Expired tokens are useless; dropping them here keeps the table small without a
            # background job (the index on valid_until_ms makes this cheap).
            txn.execute("DELETE FROM openid_tokens WHERE valid_until_ms <= ?", (now_ms,))
            txn.execute(
                "INSERT INTO openid_tokens (token_hash, user_id, valid_until_ms) VALUES (?, ?, ?)",
                (token_hash, user_id, valid_until_ms),
            )

        await self.db.run("add_openid_token", txn_fn)

    async def get_user(self, token_hash: str, now_ms: int) -> str | None:
        """The token's user, unless the token is unknown or has expired."""
        row = await self.db.run(
            "get_openid_token",
            lambda txn: txn.query_one(
                "SELECT user_id FROM openid_tokens WHERE token_hash = ? AND valid_until_ms > ?",
                (token_hash, now_ms),
            ),
        )
        return row[0] if row else None
