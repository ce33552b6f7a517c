"""Users, devices, access and refresh tokens, profiles and user-interactive auth sessions."""

from __future__ import annotations

import json
from dataclasses import dataclass

from storage.database import Database, Txn
from storage.lru import LruCache
from storage.threepids import Threepid, insert_threepid


@dataclass(frozen=True)
class TokenInfo:
    user_id: str
    device_id: str
    valid_until_ms: int | None
    # Set when the token came with a refresh token that replaced an older one still valid.
    refresh_token_hash: str | None
    is_admin: bool
    deactivated: bool
    is_guest: bool = False


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None


@dataclass(frozen=True)
class RefreshTokenInfo:
    user_id: str
    device_id: str
    expiry_ts: int | None


class AccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Every request looks its token up; deleting tokens goes through _forget_user_tokens.
        self._token_cache: LruCache[str, TokenInfo] = LruCache(10000)
        self._token_deletions = 0

    def _forget_user_tokens(self, user_id: str) -> None:
        # Deletions are rare: dropping the whole cache is simplest and cannot miss an entry.
        # The counter stops a lookup that raced with the deletion from caching what it read.
        self._token_deletions += 1
        self._token_cache.clear()

    async def create_user(
        self,
        user_id: str,
        password_hash: str | None,
        now_ms: int,
        *,
        is_admin: bool = False,
        displayname: str | None = None,
        is_guest: bool = False,
        threepid: Threepid | None = None,
    ) -> bool:
        """Creates the account and its profile; False if the user ID is taken.

        With `threepid` (its user_id is this account's) the address is bound in the same
        transaction, so an account that must have one never exists without it; raises
        ThreepidInUse, creating nothing, if another account has the address.
        """

        def txn_fn(txn: Txn) -> bool:
            if txn.query_one("SELECT 1 FROM users WHERE user_id = ?", (user_id,)):
                return False
            txn.execute(
                "INSERT INTO users (user_id, password_hash, is_admin, is_guest, created_ts)"
                " VALUES (?, ?, ?, ?, ?)",
                (user_id, password_hash, is_admin, is_guest, now_ms),
            )
            txn.execute(
                "INSERT INTO profiles (user_id, displayname) VALUES (?, ?)", (user_id, displayname)
            )
            if threepid is not None:
                insert_threepid(txn, threepid)
            return True

        return await self.db.run("create_user", txn_fn)

    async def user_exists(self, user_id: str) -> bool:
        row = await self.db.run(
            "user_exists",
            lambda txn: txn.query_one("SELECT 1 FROM users WHERE user_id = ?", (user_id,)),
        )
        return row is not None

    async def get_user(self, user_id: str) -> tuple[str | None, bool, bool] | None:
        """(password_hash, is_admin, deactivated) or None."""
        row = await self.db.run(
            "get_user",
            lambda txn: txn.query_one(
                "SELECT password_hash, is_admin, deactivated FROM users WHERE user_id = ?",
                (user_id,),
            ),
        )
        return (row[0], bool(row[1]), bool(row[2])) if row else None

    async def find_user_case_insensitive(self, user_id: str) -> list[str]:
        rows = await self.db.run(
            "find_user_ci",
            lambda txn: txn.query(
                "SELECT user_id FROM users WHERE LOWER(user_id) = LOWER(?)", (user_id,)
            ),
        )
        return [r[0] for r in rows]

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        await self.db.run(
            "set_password_hash",
            lambda txn: txn.execute(
                "UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user_id)
            ),
        )

    async def deactivate_user(self, user_id: str) -> None:
        def txn_fn(txn: Txn) -> None:
            txn.execute(
                "UPDATE users SET deactivated = ?, password_hash = NULL WHERE user_id = ?",
                (True, user_id),
            )
            # The addresses go too: nobody can reset the password of a deactivated account,
            # and the addresses are free for new accounts.
            for table in ("access_tokens", "refresh_tokens", "devices", "user_threepids"):
                txn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
            txn.execute(
                "UPDATE profiles SET displayname = NULL, avatar_url = NULL WHERE user_id = ?",
                (user_id,),
            )

        await self.db.run("deactivate_user", txn_fn)
        self._forget_user_tokens(user_id)

    # Devices and tokens ------------------------------------------------------------------------

    async def store_device_and_token(
        self,
        user_id: str,
        device_id: str,
        display_name: str | None,
        token_hash: str,
        valid_until_ms: int | None,
        refresh: tuple[str, int | None] | None,
        now_ms: int,
    ) -> None:
        """Creates the device if new and issues an access token (and refresh token) for it."""

        def txn_fn(txn: Txn) -> None:
            existing = txn.query_one(
                "SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id)
            )
            if existing is None:
                txn.execute(
                    "INSERT INTO devices (user_id, device_id, display_name, last_seen_ts)"
                    " VALUES (?, ?, ?, ?)",
                    (user_id, device_id, display_name, now_ms),
                )
            else:
                # Logging in again with a device ID replaces that device's old session.
                _delete_device_tokens(txn, user_id, device_id)
            _insert_tokens(txn, user_id, device_id, token_hash, valid_until_ms, refresh, now_ms)

        await self.db.run("store_device_and_token", txn_fn)
        self._forget_user_tokens(user_id)

    async def get_token(self, token_hash: str) -> TokenInfo | None:
        info = self._token_cache.get(token_hash)
        if info is None:
            deletions_before = self._token_deletions
            info = await self.db.run("get_token", _select_token, token_hash)
            if info is None:
                return None
            if deletions_before == self._token_deletions:
                self._token_cache.set(token_hash, info)
        return info

    async def retire_previous_refresh_token(self, info: TokenInfo) -> None:
        """The first use of a refreshed token pair ends the pair it replaced."""
        if info.refresh_token_hash is None:
            return
        await self.db.run("retire_refresh", _retire_predecessor, info.refresh_token_hash)
        self._forget_user_tokens(info.user_id)

    async def delete_access_token(self, token_hash: str) -> None:
        def txn_fn(txn: Txn) -> str | None:
            row = txn.query_one(
                "SELECT user_id, device_id FROM access_tokens WHERE token_hash = ?", (token_hash,)
            )
            if row is not None:
                _delete_device(txn, row[0], row[1])
            return row[0] if row else None

        user_id = await self.db.run("delete_access_token", txn_fn)
        if user_id:
            self._forget_user_tokens(user_id)

    async def get_refresh_token(self, token_hash: str) -> RefreshTokenInfo | None:
        row = await self.db.run(
            "get_refresh_token",
            lambda txn: txn.query_one(
                "SELECT user_id, device_id, expiry_ts FROM refresh_tokens WHERE token_hash = ?",
                (token_hash,),
            ),
        )
        return RefreshTokenInfo(*row) if row else None

    async def exchange_refresh_token(
        self,
        old_refresh_hash: str,
        user_id: str,
        device_id: str,
        access_hash: str,
        valid_until_ms: int | None,
        refresh: tuple[str, int | None],
        now_ms: int,
    ) -> bool:
        """Issues a new token pair for a refresh token; False if it is no longer valid."""

        def txn_fn(txn: Txn) -> bool:
            if not txn.query_one(
                "SELECT 1 FROM refresh_tokens WHERE token_hash = ?", (old_refresh_hash,)
            ):
                return False
            # Using this token proves its own predecessor is no longer needed.
            _retire_predecessor(txn, old_refresh_hash)
            # A pair issued earlier for this same token was never used: it is replaced.
            for (unused,) in txn.query(
                "SELECT token_hash FROM refresh_tokens WHERE prev_token_hash = ?",
                (old_refresh_hash,),
            ):
                _delete_refresh_pair(txn, unused)
            _insert_tokens(
                txn,
                user_id,
                device_id,
                access_hash,
                valid_until_ms,
                refresh,
                now_ms,
                prev_refresh_hash=old_refresh_hash,
            )
            return True

        exchanged = await self.db.run("exchange_refresh_token", txn_fn)
        self._forget_user_tokens(user_id)
        return exchanged

    async def get_devices(self, user_id: str) -> list[Device]:
        rows = await self.db.run(
            "get_devices",
            lambda txn: txn.query(
                "SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip"
                " FROM devices WHERE user_id = ? ORDER BY device_id",
                (user_id,),
            ),
        )
        return [Device(*row) for row in rows]

    async def get_device(self, user_id: str, device_id: str) -> Device | None:
        row = await self.db.run(
            "get_device",
            lambda txn: txn.query_one(
                "SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip"
                " FROM devices WHERE user_id = ? AND device_id = ?",
                (user_id, device_id),
            ),
        )
        return Device(*row) if row else None

    async def update_device_display_name(
        self, user_id: str, device_id: str, display_name: str | None
    ) -> bool:
        def txn_fn(txn: Txn) -> bool:
            txn.execute(
                "UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
                (display_name, user_id, device_id),
            )
            return txn.rowcount > 0

        return await self.db.run("update_device", txn_fn)

    async def record_device_seen(
        self, user_id: str, device_id: str, ip: str, user_agent: str, now_ms: int
    ) -> None:
        await self.db.run(
            "device_seen",
            lambda txn: txn.execute(
                "UPDATE devices SET last_seen_ts = ?, last_seen_ip = ?, last_seen_user_agent = ?"
                " WHERE user_id = ? AND device_id = ?",
                (now_ms, ip, user_agent, user_id, device_id),
            ),
        )

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        def txn_fn(txn: Txn) -> None:
            for device_id in device_ids:
                _delete_device(txn, user_id, device_id)

        await self.db.run("delete_devices", txn_fn)
        self._forget_user_tokens(user_id)

    async def delete_all_devices(self, user_id: str) -> None:
        def txn_fn(txn: Txn) -> None:
            for table in ("access_tokens", "refresh_tokens", "devices"):
                txn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))

        await self.db.run("delete_all_devices", txn_fn)
        self._forget_user_tokens(user_id)

    async def delete_other_tokens(self, user_id: str, keep_device_id: str | None) -> None:
        """Logs out every device but `keep_device_id` (after a password change)."""

        def txn_fn(txn: Txn) -> None:
            rows = txn.query("SELECT device_id FROM devices WHERE user_id = ?", (user_id,))
            for (device_id,) in rows:
                if device_id != keep_device_id:
                    _delete_device(txn, user_id, device_id)

        await self.db.run("delete_other_tokens", txn_fn)
        self._forget_user_tokens(user_id)

    # Profiles ----------------------------------------------------------------------------------

    async def get_profile(self, user_id: str) -> tuple[str | None, str | None] | None:
        row = await self.db.run(
            "get_profile",
            lambda txn: txn.query_one(
                "SELECT displayname, avatar_url FROM profiles WHERE user_id = ?", (user_id,)
            ),
        )
        return (row[0], row[1]) if row else None

    async def set_profile_field(self, user_id: str, field: str, value: str | None) -> None:
        assert field in ("displayname", "avatar_url")
        await self.db.run(
            "set_profile",
            lambda txn: txn.execute(
                f"UPDATE profiles SET {field} = ? WHERE user_id = ?", (value, user_id)
            ),
        )

    # User-interactive auth ---------------------------------------------------------------------

    async def create_uia_session(
        self, session_id: str, user_id: str | None, uri: str, method: str, now_ms: int
    ) -> None:
        await self.db.run(
            "create_uia_session",
            lambda txn: txn.execute(
                "INSERT INTO ui_auth_sessions (session_id, user_id, uri, method,"
                " completed_stages, created_ts) VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, user_id, uri, method, "[]", now_ms),
            ),
        )

    async def get_uia_session(
        self, session_id: str
    ) -> tuple[str | None, str, str, list, int, dict] | None:
        """(user_id, uri, method, completed stages, created_ts, stage results) or None."""
        row = await self.db.run(
            "get_uia_session",
            lambda txn: txn.query_one(
                "SELECT user_id, uri, method, completed_stages, created_ts, stage_results"
                " FROM ui_auth_sessions WHERE session_id = ?",
                (session_id,),
            ),
        )
        if row is None:
            return None
        results = json.loads(row[5]) if row[5] else {}
        return row[0], row[1], row[2], json.loads(row[3]), row[4], results

    async def set_uia_completed(
        self, session_id: str, stages: list[str], results: dict | None = None
    ) -> None:
        await self.db.run(
            "set_uia_completed",
            lambda txn: txn.execute(
                "UPDATE ui_auth_sessions SET completed_stages = ?, stage_results = ?"
                " WHERE session_id = ?",
                (json.dumps(stages), json.dumps(results or {}), session_id),
            ),
        )

    async def delete_uia_session(self, session_id: str) -> None:
        await self.db.run(
            "delete_uia_session",
            lambda txn: txn.execute(
                "DELETE FROM ui_auth_sessions WHERE session_id = ?", (session_id,)
            ),
        )

    async def delete_expired_uia_sessions(self, older_than_ms: int) -> None:
        await self.db.run(
            "expire_uia_sessions",
            lambda txn: txn.execute(
                "DELETE FROM ui_auth_sessions WHERE created_ts < ?", (older_than_ms,)
            ),
        )


def _select_token(txn: Txn, token_hash: str) -> TokenInfo | None:
    row = txn.query_one(
        "SELECT t.user_id, t.device_id, t.valid_until_ms, r.token_hash, u.is_admin,"
        " u.deactivated, u.is_guest"
        " FROM access_tokens t JOIN users u ON u.user_id = t.user_id"
        " LEFT JOIN refresh_tokens r"
        " ON r.token_hash = t.refresh_token_hash AND r.prev_token_hash IS NOT NULL"
        " WHERE t.token_hash = ?",
        (token_hash,),
    )
    if row is None:
        return None
    return TokenInfo(row[0], row[1], row[2], row[3], bool(row[4]), bool(row[5]), bool(row[6]))


def _retire_predecessor(txn: Txn, refresh_hash: str) -> None:
    row = txn.query_one(
        "SELECT prev_token_hash FROM refresh_tokens WHERE token_hash = ?", (refresh_hash,)
    )
    if row and row[0]:
        _delete_refresh_pair(txn, row[0])
        txn.execute(
            "UPDATE refresh_tokens SET prev_token_hash = NULL WHERE token_hash = ?",
            (refresh_hash,),
        )


def _delete_refresh_pair(txn: Txn, refresh_hash: str) -> None:
    txn.execute("DELETE FROM access_tokens WHERE refresh_token_hash = ?", (refresh_hash,))
    txn.execute("DELETE FROM refresh_tokens WHERE token_hash = ?", (refresh_hash,))


def _insert_tokens(
    txn: Txn,
    user_id: str,
    device_id: str,
    token_hash: str,
    valid_until_ms: int | None,
    refresh: tuple[str, int | None] | None,
    now_ms: int,
    prev_refresh_hash: str | None = None,
) -> None:
    refresh_hash = refresh[0] if refresh else None
    txn.execute(
        "INSERT INTO access_tokens (token_hash, user_id, device_id, valid_until_ms,"
        " refresh_token_hash, created_ts) VALUES (?, ?, ?, ?, ?, ?)",
        (token_hash, user_id, device_id, valid_until_ms, refresh_hash, now_ms),
    )
    if refresh is not None:
        txn.execute(
            "INSERT INTO refresh_tokens (token_hash, user_id, device_id, expiry_ts,"
            " prev_token_hash, created_ts) VALUES (?, ?, ?, ?, ?, ?)",
            (refresh[0], user_id, device_id, refresh[1], prev_refresh_hash, now_ms),
        )


def _delete_device_tokens(txn: Txn, user_id: str, device_id: str) -> None:
    for table in ("access_tokens", "refresh_tokens"):
        txn.execute(
            f"DELETE FROM {table} WHERE user_id = ? AND device_id = ?", (user_id, device_id)
        )


def _delete_device(txn: Txn, user_id: str, device_id: str) -> None:
    _delete_device_tokens(txn, user_id, device_id)
    txn.execute("DELETE FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
