"""Third-party IDs bound to accounts, and the sessions that validate them by mail."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database, Txn

# Validation sessions are kept this long after they expire, so that an old link still gets
# "this link has expired" rather than "unknown link"; then they are deleted.
EXPIRED_SESSION_GRACE_MS = 24 * 3600 * 1000


class ThreepidInUse(Exception):
    """The address is already bound to an account (raised inside a transaction, which it
    rolls back)."""


@dataclass(frozen=True)
class Threepid:
    medium: str
    address: str
    user_id: str
    validated_at: int
    added_at: int


@dataclass(frozen=True)
class ValidationSession:
    session_id: str
    purpose: str
    medium: str
    address: str
    client_secret: str
    last_send_attempt: int
    token_hash: str | None
    expires_at: int
    validated_at: int | None


_SESSION_COLUMNS = (
    "session_id, purpose, medium, address, client_secret, last_send_attempt, token_hash,"
    " expires_at, validated_at"
)


def insert_threepid(txn: Txn, threepid: Threepid) -> None:
    """Binds the address inside the caller's transaction; ThreepidInUse if it is bound."""
    txn.execute(
        "INSERT INTO user_threepids (medium, address, user_id, validated_at, added_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            threepid.medium,
            threepid.address,
            threepid.user_id,
            threepid.validated_at,
            threepid.added_at,
        ),
    )
    if txn.rowcount != 1:
        raise ThreepidInUse(threepid.address)


class ThreepidStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Bound addresses ----------------------------------------------------------------------------

    async def get_threepids(self, user_id: str) -> list[Threepid]:
        rows = await self.db.run(
            "get_threepids",
            lambda txn: txn.query(
                "SELECT medium, address, user_id, validated_at, added_at FROM user_threepids"
                " WHERE user_id = ? ORDER BY added_at, address",
                (user_id,),
            ),
        )
        return [Threepid(*row) for row in rows]

    async def get_owner(self, medium: str, address: str) -> str | None:
        row = await self.db.run(
            "get_threepid_owner",
            lambda txn: txn.query_one(
                "SELECT user_id FROM user_threepids WHERE medium = ? AND address = ?",
                (medium, address),
            ),
        )
        return row[0] if row else None

    async def add_threepid(self, threepid: Threepid) -> None:
        """Binds the address; ThreepidInUse if some account (this one too) has it."""
        await self.db.run("add_threepid", insert_threepid, threepid)

    async def delete_threepid(self, user_id: str, medium: str, address: str) -> bool:
        """False if the account did not have the address."""

        def txn_fn(txn: Txn) -> bool:
            txn.execute(
                "DELETE FROM user_threepids WHERE user_id = ? AND medium = ? AND address = ?",
                (user_id, medium, address),
            )
            return txn.rowcount > 0

        return await self.db.run("delete_threepid", txn_fn)

    # Validation sessions ------------------------------------------------------------------------

    async def find_session(
        self, client_secret: str, medium: str, address: str, purpose: str
    ) -> ValidationSession | None:
        row = await self.db.run(
            "find_validation_session",
            lambda txn: txn.query_one(
                f"SELECT {_SESSION_COLUMNS} FROM threepid_validation_sessions"
                " WHERE client_secret = ? AND medium = ? AND address = ? AND purpose = ?",
                (client_secret, medium, address, purpose),
            ),
        )
        return ValidationSession(*row) if row else None

    async def get_session(self, session_id: str) -> ValidationSession | None:
        row = await self.db.run(
            "get_validation_session",
            lambda txn: txn.query_one(
                f"SELECT {_SESSION_COLUMNS} FROM threepid_validation_sessions"
                " WHERE session_id = ?",
                (session_id,),
            ),
        )
        return ValidationSession(*row) if row else None

    async def start_session(self, session: ValidationSession, now_ms: int) -> ValidationSession:
        """Stores a new session, or gives an existing one for the same (client_secret, medium,
        address, purpose) a new token and send_attempt: it is what the newest mail links to.

        Returns the stored session (its ID is the existing one's when there was one).
        """

        def txn_fn(txn: Txn) -> ValidationSession:
            # Expired sessions are useless after the grace period; dropping them here keeps
            # the table small without a background job.
            txn.execute(
                "DELETE FROM threepid_validation_sessions WHERE expires_at < ?",
                (now_ms - EXPIRED_SESSION_GRACE_MS,),
            )
            txn.execute(
                "INSERT INTO threepid_validation_sessions (session_id, purpose, medium, address,"
                " client_secret, last_send_attempt, token_hash, created_at, expires_at,"
                " validated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
                " ON CONFLICT (client_secret, medium, address, purpose) DO UPDATE SET"
                " last_send_attempt = excluded.last_send_attempt,"
                " token_hash = excluded.token_hash, expires_at = excluded.expires_at,"
                " validated_at = NULL",
                (
                    session.session_id,
                    session.purpose,
                    session.medium,
                    session.address,
                    session.client_secret,
                    session.last_send_attempt,
                    session.token_hash,
                    now_ms,
                    session.expires_at,
                ),
            )
            row = txn.query_one(
                f"SELECT {_SESSION_COLUMNS} FROM threepid_validation_sessions"
                " WHERE client_secret = ? AND medium = ? AND address = ? AND purpose = ?",
                (session.client_secret, session.medium, session.address, session.purpose),
            )
            assert row is not None
            return ValidationSession(*row)

        return await self.db.run("start_validation_session", txn_fn)

    async def mark_validated(
        self, session_id: str, token_hash: str, now_ms: int, usable_until: int
    ) -> bool:
        """Validates the session if `token_hash` is its current, unexpired token; the token is
        used up either way. False if it was not (another request may have won the race)."""

        def txn_fn(txn: Txn) -> bool:
            txn.execute(
                "UPDATE threepid_validation_sessions"
                " SET validated_at = ?, expires_at = ?, token_hash = NULL"
                " WHERE session_id = ? AND token_hash = ? AND validated_at IS NULL"
                " AND expires_at > ?",
                (now_ms, usable_until, session_id, token_hash, now_ms),
            )
            return txn.rowcount == 1

        return await self.db.run("validate_session", txn_fn)

    async def delete_session(self, session_id: str) -> None:
        await self.db.run(
            "delete_validation_session",
            lambda txn: txn.execute(
                "DELETE FROM threepid_validation_sessions WHERE session_id = ?", (session_id,)
            ),
        )
