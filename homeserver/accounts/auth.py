"""Access tokens: minting them, and turning one back into the user and device it belongs to.

Tokens are random and unguessable; only their SHA-256 is stored, so a copy of the database does
not hand out sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from twisted.internet import defer

from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError
from storage.store import Storage

# How often a device's "last seen" is written: every request would be a write per request.
LAST_SEEN_INTERVAL_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class Requester:
    """Who is making a request, as established from its access token."""

    user_id: str
    device_id: str | None
    is_admin: bool
    access_token_hash: str
    is_guest: bool = False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(prefix: str) -> str:
    """prefix is 'syt' for access tokens and 'syr' for refresh tokens, as Synapse's look."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


class Authenticator:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.clock = clock
        self._last_seen_written: dict[tuple[str, str], int] = {}
        # "Last seen" writes still in flight, per user: readers of it wait for them, so a user
        # looking at their sessions sees the request they just made.
        self._seen_writes: dict[str, defer.Deferred[None]] = {}

    async def authenticate(self, token: str, client_ip: str, user_agent: str) -> Requester:
        token_hash = hash_token(token)
        info = await self.storage.accounts.get_token(token_hash)
        if info is None or info.deactivated:
            raise MatrixError(
                401, Codes.UNKNOWN_TOKEN, "Unrecognised access token", extra={"soft_logout": False}
            )
        now = self.clock.time_msec()
        if info.valid_until_ms is not None and now >= info.valid_until_ms:
            raise MatrixError(
                401, Codes.UNKNOWN_TOKEN, "Access token has expired", extra={"soft_logout": True}
            )
        if info.refresh_token_hash is not None:
            await self.storage.accounts.retire_previous_refresh_token(info)
        self._note_seen(info.user_id, info.device_id, client_ip, user_agent, now)
        return Requester(
            info.user_id, info.device_id, info.is_admin, token_hash, is_guest=info.is_guest
        )

    def _note_seen(
        self, user_id: str, device_id: str, client_ip: str, user_agent: str, now: int
    ) -> None:
        key = (user_id, device_id)
        if now - self._last_seen_written.get(key, 0) < LAST_SEEN_INTERVAL_MS:
            return
        self._last_seen_written[key] = now
        if len(self._last_seen_written) > 100_000:
            self._last_seen_written.clear()
        write = self.storage.accounts.record_device_seen(
            user_id, device_id, client_ip, user_agent[:512], now
        )
        # Fire and forget: a failed "last seen" write must not fail the request.
        pending = defer.ensureDeferred(write).addErrback(lambda _: None)
        self._seen_writes[user_id] = pending

        def forget(result: None) -> None:
            if self._seen_writes.get(user_id) is pending:
                del self._seen_writes[user_id]

        pending.addCallback(forget)

    async def wait_for_seen_writes(self, user_id: str) -> None:
        """Wait until the "last seen" writes already started for `user_id` are stored."""
        pending = self._seen_writes.get(user_id)
        if pending is not None:
            # A fresh Deferred chained on, so waiting does not consume the shared one's result.
            waiter: defer.Deferred[None] = defer.Deferred()
            pending.addBoth(lambda result: (waiter.callback(None), result)[1])
            await waiter
