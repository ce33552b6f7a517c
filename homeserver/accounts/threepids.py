"""Email addresses of accounts: validating them by mail, binding them, finding accounts by them.

A validation session starts with a requestToken call for one purpose (sign-up, adding an
address, password reset): it stores an unguessable token (only its SHA-256) and mails a link
holding it. Following the link validates the session, once, before the token expires. The
client then proves the validation with the session's (sid, client_secret): as the
m.login.email.identity stage of user-interactive auth, or to /account/3pid/add. What the
validated session was for is used up when it has been done.

Sans-HTTP, like the account service: errors are MatrixErrors; the pages the links open are the
HTTP layer's. Unlike the account service this one rate-limits itself, because only it knows
whether a request is going to send a mail (a repeated send_attempt sends nothing).
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from homeserver.accounts.auth import hash_token
from homeserver.accounts.uia import StageChecker
from homeserver.clock import Clock
from homeserver.config import HomeServerConfig
from homeserver.errors import Codes, MatrixError, bad_json
from homeserver.identifiers import random_string
from homeserver.mail.mailer import Mailer
from homeserver.ratelimit import Ratelimiter
from storage.threepids import Threepid, ThreepidInUse, ThreepidStore, ValidationSession

EMAIL_STAGE = "m.login.email.identity"

REGISTRATION = "registration"
ADD_THREEPID = "add_threepid"
PASSWORD_RESET = "password_reset"

# Where the link in each purpose's mail points (Synapse's paths, so links look the same), its
# templates (name.txt and name.html) and its subject.
LINK_PATHS = {
    REGISTRATION: "_matrix/client/unstable/registration/email/submit_token",
    ADD_THREEPID: "_matrix/client/unstable/add_threepid/email/submit_token",
    PASSWORD_RESET: "_synapse/client/password_reset/email/submit_token",
}
_SUBJECTS = {
    REGISTRATION: "[%(server_name)s] Validate your email",
    ADD_THREEPID: "[%(server_name)s] Validate your email",
    PASSWORD_RESET: "[%(server_name)s] Password reset",
}

# The spec's grammar for client secrets and session IDs.
_SECRET_RE = re.compile(r"[0-9a-zA-Z.=_-]{1,255}")
# RFC 5321's limit on an address in an SMTP command.
MAX_EMAIL_LENGTH = 254
# What this server accepts in an address: the local part's unquoted characters (RFC 5322
# dot-atom) and a DNS domain. Quoted local parts and address literals are refused: they have
# no use in sign-ups and are easy to get wrong when put into mail headers.
_LOCAL_RE = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")

_NOT_VALID = "This link is not valid: it has been used already, or a newer mail replaced it."
_USED = "This link has already been used."
_EXPIRED = "This link has expired. Ask your app to send a new mail."


def canonicalise_email(address: str) -> str:
    """The address as stored and compared: trimmed and lower case (as Synapse stores them);
    400 M_INVALID_PARAM when it is not an address this server can mail."""
    address = address.strip().lower()
    local, _, domain = address.rpartition("@")
    if (
        len(address) > MAX_EMAIL_LENGTH
        or not _LOCAL_RE.fullmatch(local)
        or not _DOMAIN_RE.fullmatch(domain)
    ):
        raise MatrixError(400, Codes.INVALID_PARAM, "Not an email address this server accepts")
    return address


def check_client_secret(client_secret: str) -> None:
    if not _SECRET_RE.fullmatch(client_secret):
        raise MatrixError(
            400,
            Codes.INVALID_PARAM,
            "client_secret must be 1 to 255 of the characters 0-9, a-z, A-Z, '.', '=', '_', '-'",
        )


def medium_not_supported() -> MatrixError:
    return MatrixError(
        400,
        Codes.THREEPID_MEDIUM_NOT_SUPPORTED,
        "This server does not validate email addresses or phone numbers",
    )


@dataclass(frozen=True)
class TokenRequest:
    """The body of a requestToken call."""

    purpose: str
    client_secret: str
    email: str
    send_attempt: int


@dataclass(frozen=True)
class ValidatedThreepid:
    """A validated session: proof that whoever holds its client_secret reads `address`."""

    sid: str
    medium: str
    address: str
    validated_at: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ValidatedThreepid:
        return cls(data["sid"], data["medium"], data["address"], data["validated_at"])


class ThreepidService:
    def __init__(
        self,
        config: HomeServerConfig,
        store: ThreepidStore,
        clock: Clock,
        mailer: Mailer | None,
        limiters: Iterable[tuple[str, Ratelimiter]],
    ) -> None:
        """`limiters`: ("address" or "ip", limiter) pairs that every mail sent counts against."""
        self.config = config
        self.store = store
        self.clock = clock
        self.mailer = mailer
        self.limiters = list(limiters)
        self.lifetime_ms = config.email.validation_token_lifetime_ms if config.email else 0

    @property
    def enabled(self) -> bool:
        """Whether this server can validate addresses (it has an email section)."""
        return self.mailer is not None

    # requestToken -------------------------------------------------------------------------------

    async def request_email_token(self, request: TokenRequest, client_ip: str) -> str:
        """Mails a validation link unless this send_attempt was seen; returns the sid."""
        if self.mailer is None:
            raise medium_not_supported()
        check_client_secret(request.client_secret)
        address = canonicalise_email(request.email)
        if not await self._address_acceptable(request.purpose, address):
            # Answer as if a mail was sent, with a sid that no session has.
            return random_string(32)
        existing = await self.store.find_session(
            request.client_secret, "email", address, request.purpose
        )
        if existing is not None and not self._needs_mail(existing, request.send_attempt):
            return existing.session_id
        self._count_mail(address, client_ip)
        token = secrets.token_urlsafe(32)
        now = self.clock.time_msec()
        session = await self.store.start_session(
            ValidationSession(
                session_id=existing.session_id if existing else random_string(32),
                purpose=request.purpose,
                medium="email",
                address=address,
                client_secret=request.client_secret,
                last_send_attempt=request.send_attempt,
                token_hash=hash_token(token),
                expires_at=now + self.lifetime_ms,
                validated_at=None,
            ),
            now,
        )
        self._mail_link(session, token)
        return session.session_id

    async def _address_acceptable(self, purpose: str, address: str) -> bool:
        """Sign-ups and additions need a free address, resets a bound one; the spec's error
        when not, or False when the config hides that."""
        owner = await self.store.get_owner("email", address)
        if purpose == PASSWORD_RESET and owner is None:
            error = MatrixError(400, Codes.THREEPID_NOT_FOUND, "No account has this address")
        elif purpose != PASSWORD_RESET and owner is not None:
            error = threepid_in_use()
        else:
            return True
        if self.config.request_token_inhibit_3pid_errors:
            return False
        raise error

    def _needs_mail(self, session: ValidationSession, send_attempt: int) -> bool:
        # The spec: only a send_attempt above the last one seen sends again. A validated
        # session that can still be used needs no mail at all.
        still_usable = session.expires_at > self.clock.time_msec()
        if session.validated_at is not None and still_usable:
            return False
        return send_attempt > session.last_send_attempt

    def _count_mail(self, address: str, client_ip: str) -> None:
        """429 M_LIMIT_EXCEEDED if the address or the client has had too many mails."""
        keys = {"address": address, "ip": client_ip}
        for kind, limiter in self.limiters:
            if not limiter.can_do(keys[kind]):
                limiter.check(keys[kind])  # raises with the wait
        for kind, limiter in self.limiters:
            limiter.check(keys[kind])

    def _mail_link(self, session: ValidationSession, token: str) -> None:
        assert self.mailer is not None
        query = urlencode(
            {"token": token, "client_secret": session.client_secret, "sid": session.session_id}
        )
        link = f"{self.config.public_baseurl}{LINK_PATHS[session.purpose]}?{query}"
        subject = _SUBJECTS[session.purpose] % {"server_name": self.config.server_name}
        self.mailer.send(session.address, subject, session.purpose, {"link": link})

    # The link in the mail ----------------------------------------------------------------------

    async def link_problem(
        self, purpose: str, sid: str, client_secret: str, token: str
    ) -> str | None:
        """Why following this link would fail (for the user), or None if it would work."""
        session = await self._session(purpose, sid, client_secret)
        if session is None:
            return _NOT_VALID
        if session.validated_at is not None:
            return _USED
        if session.token_hash is None or not hmac.compare_digest(
            session.token_hash, hash_token(token)
        ):
            return _NOT_VALID
        if self.clock.time_msec() >= session.expires_at:
            return _EXPIRED
        return None

    async def validate_link(
        self, purpose: str, sid: str, client_secret: str, token: str
    ) -> str | None:
        """Validates the session; None on success, else why not (for the user)."""
        problem = await self.link_problem(purpose, sid, client_secret, token)
        if problem is not None:
            return problem
        now = self.clock.time_msec()
        # From now on the lifetime counts how long the validated address may be used.
        if not await self.store.mark_validated(sid, hash_token(token), now, now + self.lifetime_ms):
            return _USED  # another request used it in between
        return None

    async def _session(
        self, purpose: str, sid: str, client_secret: str
    ) -> ValidationSession | None:
        session = await self.store.get_session(sid)
        if (
            session is None
            or session.purpose != purpose
            # As bytes: compare_digest refuses str with non-ASCII characters.
            or not hmac.compare_digest(session.client_secret.encode(), client_secret.encode())
        ):
            return None
        return session

    # Using a validated session ------------------------------------------------------------------

    async def validated(self, purpose: str, sid: str, client_secret: str) -> ValidatedThreepid:
        """The address the session validated for `purpose`; 401 M_UNAUTHORIZED otherwise."""
        session = await self._session(purpose, sid, client_secret)
        if session is None or session.validated_at is None:
            raise MatrixError(
                401,
                Codes.UNAUTHORIZED,
                "The email address has not been validated: follow the link in the mail first",
            )
        if self.clock.time_msec() >= session.expires_at:
            raise MatrixError(
                401, Codes.UNAUTHORIZED, "The email validation has expired: ask for a new mail"
            )
        return ValidatedThreepid(sid, session.medium, session.address, session.validated_at)

    def stage_checker(self, purpose: str) -> StageChecker:
        """The m.login.email.identity stage for an endpoint whose sessions are for `purpose`;
        its result is the ValidatedThreepid (as JSON)."""

        async def check(auth: dict[str, Any], user_id: str | None) -> dict[str, Any]:
            # "threepidCreds" is what clients sent before r0.
            creds = auth.get("threepid_creds", auth.get("threepidCreds"))
            if not isinstance(creds, dict):
                raise bad_json("threepid_creds must be an object with sid and client_secret")
            sid, client_secret = creds.get("sid"), creds.get("client_secret")
            if not isinstance(sid, str) or not isinstance(client_secret, str):
                raise bad_json("threepid_creds.sid and .client_secret must be strings")
            return asdict(await self.validated(purpose, sid, client_secret))

        return check

    async def consume(self, threepid: ValidatedThreepid) -> None:
        """What the validation was for has been done: the session cannot be used again."""
        await self.store.delete_session(threepid.sid)

    # Bound addresses ----------------------------------------------------------------------------

    async def list_threepids(self, user_id: str) -> list[Threepid]:
        return await self.store.get_threepids(user_id)

    async def add(self, user_id: str, threepid: ValidatedThreepid) -> None:
        """Binds the validated address to the account; 400 M_THREEPID_IN_USE if it is bound."""
        try:
            await self.store.add_threepid(
                Threepid(
                    threepid.medium,
                    threepid.address,
                    user_id,
                    threepid.validated_at,
                    self.clock.time_msec(),
                )
            )
        except ThreepidInUse:
            raise threepid_in_use() from None
        await self.consume(threepid)

    async def remove(self, user_id: str, medium: str, address: str) -> None:
        """Unbinds the address if the account has it (the spec's answer is 200 either way)."""
        if medium == "email":
            address = address.strip().lower()
        await self.store.delete_threepid(user_id, medium, address)

    async def find_user(self, medium: str, address: str) -> str | None:
        """The account an address is bound to (login by email), if any."""
        if medium != "email":
            return None
        try:
            address = canonicalise_email(address)
        except MatrixError:
            return None
        return await self.store.get_owner(medium, address)


def threepid_in_use() -> MatrixError:
    return MatrixError(400, Codes.THREEPID_IN_USE, "This address is already in use")
