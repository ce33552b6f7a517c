"""Shared-secret registration, `GET/POST /_synapse/admin/v1/register`, as Synapse serves it.

It lets whoever holds `registration_shared_secret` create accounts (admins too) while public
registration is closed; Synapse's `register_new_matrix_user` script and our own
`python -m homeserver register-user` speak it. The client fetches a single-use nonce, then
posts the account with mac = hex(HMAC-SHA1(secret, nonce NUL username NUL password NUL
"admin"|"notadmin" [NUL user_type])).
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from client_api.servlets.accounts import check_password_length, optional_bool, optional_str
from homeserver.accounts.service import DeviceRequest
from homeserver.admin_client import registration_mac
from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError, bad_json, forbidden

if TYPE_CHECKING:
    from homeserver.server import HomeServer

NONCE_LIFETIME_S = 60.0
# Nonces are handed to anyone who asks: bound the memory an attacker can make us spend.
_MAX_NONCES = 10_000
PATH = "/_synapse/admin/v1/register"


class NonceStore:
    """Single-use nonces that expire. In memory: a nonce is used within seconds, by the
    process that issued it (a restart just means asking for a new one)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._issued: OrderedDict[str, float] = OrderedDict()

    def issue(self) -> str:
        self._expire()
        nonce = secrets.token_hex(32)
        self._issued[nonce] = self.clock.time()
        while len(self._issued) > _MAX_NONCES:
            self._issued.popitem(last=False)
        return nonce

    def consume(self, nonce: str) -> bool:
        self._expire()
        return self._issued.pop(nonce, None) is not None

    def _expire(self) -> None:
        cutoff = self.clock.time() - NONCE_LIFETIME_S
        while self._issued and next(iter(self._issued.values())) < cutoff:
            self._issued.popitem(last=False)


def _required_text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value or "\x00" in value:
        raise bad_json(f"Invalid {key}")
    return value


def register_routes(router: Router, hs: HomeServer) -> None:
    nonces = NonceStore(hs.clock)

    def shared_secret() -> str:
        secret = hs.config.registration_shared_secret
        if not secret:
            raise MatrixError(400, Codes.UNKNOWN, "Shared secret registration is not enabled")
        return secret

    async def get_nonce(request: ApiRequest) -> tuple[int, Any]:
        shared_secret()
        return 200, {"nonce": nonces.issue()}

    async def register(request: ApiRequest) -> tuple[int, Any]:
        secret = shared_secret()
        body = request.json()
        nonce = body.get("nonce")
        if not isinstance(nonce, str):
            raise bad_json("nonce must be specified")
        # Used up even if the rest is wrong: each nonce allows one guess at the mac.
        if not nonces.consume(nonce):
            raise MatrixError(400, Codes.UNKNOWN, "Unrecognised nonce")
        username = _required_text(body, "username")
        password = _required_text(body, "password")
        check_password_length(password, "password")
        admin = optional_bool(body, "admin", False)
        # Accepted and covered by the mac, but we keep no user types (bot, support) yet.
        user_type = optional_str(body, "user_type")
        displayname = optional_str(body, "displayname")
        mac = body.get("mac")
        want = registration_mac(secret, nonce, username, password, admin, user_type)
        # Compared as bytes: compare_digest refuses non-ASCII str, which a client could send.
        if not isinstance(mac, str) or not hmac.compare_digest(
            want.encode("ascii"), mac.lower().encode("utf-8")
        ):
            raise forbidden("HMAC incorrect")
        user_id = await hs.accounts.check_username(username)
        await hs.accounts.create_account(user_id, password, is_admin=admin, displayname=displayname)
        session = await hs.accounts.start_session(user_id, DeviceRequest(None, None, False))
        return 200, session

    router.add("GET", PATH, get_nonce, auth="none")
    router.add("POST", PATH, register, auth="none")
