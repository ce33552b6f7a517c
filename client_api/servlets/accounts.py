"""Registration, login, token refresh, logout, whoami, password change and deactivation.

Request bodies are checked here; the work is done by `hs.accounts` (homeserver.accounts.service).
Rate limits live here too, because this layer has the limiters and the client's address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.accounts.passwords import MAX_PASSWORD_LENGTH
from homeserver.accounts.service import MAX_DEVICE_ID_LENGTH, DeviceRequest
from homeserver.accounts.threepids import (
    EMAIL_STAGE,
    PASSWORD_RESET,
    REGISTRATION,
    ValidatedThreepid,
)
from homeserver.accounts.uia import UiaResult
from homeserver.errors import (
    Codes,
    InteractiveAuthRequired,
    LimitExceeded,
    MatrixError,
    bad_json,
)
from homeserver.ratelimit import Ratelimiter

if TYPE_CHECKING:
    from homeserver.server import HomeServer

PASSWORD_FLOWS = [["m.login.password"]]


# -- helpers shared with the devices servlet ---------------------------------------------------


def precheck(limiter: Ratelimiter, key: str) -> None:
    """Refuses (429) if `key` has no allowance left, without using any of it."""
    if not limiter.can_do(key):
        limiter.check(key)  # raises LimitExceeded with the wait


def record(limiter: Ratelimiter, key: str) -> None:
    """Counts an action that already happened; the client's answer does not change."""
    try:
        limiter.check(key)
    except LimitExceeded:
        pass


def body_or_empty(request: ApiRequest) -> dict[str, Any]:
    """The JSON body; old clients send none at all to UIA endpoints such as DELETE /devices."""
    return request.json() if request.body.strip() else {}


def optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_json(f"{key} must be a string")
    return value


def optional_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise bad_json(f"{key} must be true or false")
    return value


def check_password_length(password: str | None, key: str) -> None:
    # M_BAD_JSON: the value of a body key is unacceptable, which is that code's meaning.
    # (M_WEAK_PASSWORD would tell the user to pick a *stronger* password, which misleads.)
    if password is not None and len(password) > MAX_PASSWORD_LENGTH:
        raise bad_json(f"{key} is too long (at most {MAX_PASSWORD_LENGTH} characters)")


async def password_uia(hs: HomeServer, request: ApiRequest, body: dict[str, Any]) -> None:
    """User-interactive auth with the requester's password; wrong passwords count as failed
    logins, so UIA is not a way around the login rate limits."""
    requester = request.requester
    assert requester is not None
    failed = hs.rate_limiters["login_failed"]
    key = requester.user_id.lower()
    precheck(failed, key)
    try:
        await hs.accounts.uia.check(
            body.get("auth"), PASSWORD_FLOWS, request.path, request.method, requester.user_id
        )
    except InteractiveAuthRequired as challenge:
        if challenge.body.get("errcode") == Codes.FORBIDDEN:
            record(failed, key)
        raise


def validated_threepid(result: UiaResult) -> ValidatedThreepid | None:
    """The address the m.login.email.identity stage validated, if the flow had that stage."""
    found = result.results.get(EMAIL_STAGE)
    return ValidatedThreepid.from_json(found) if found is not None else None


def _device_request(body: dict[str, Any]) -> DeviceRequest:
    device_id = optional_str(body, "device_id")
    if device_id is not None and not 0 < len(device_id) <= MAX_DEVICE_ID_LENGTH:
        raise bad_json(f"device_id must be 1 to {MAX_DEVICE_ID_LENGTH} characters")
    return DeviceRequest(
        device_id=device_id,
        display_name=optional_str(body, "initial_device_display_name"),
        refreshable=optional_bool(body, "refresh_token", False),
    )


@dataclass(frozen=True)
class _Registration:
    username: str | None
    password: str | None
    inhibit_login: bool
    device: DeviceRequest

    @classmethod
    def parse(cls, body: dict[str, Any]) -> _Registration:
        password = optional_str(body, "password")
        check_password_length(password, "password")
        return cls(
            username=optional_str(body, "username"),
            password=password,
            inhibit_login=optional_bool(body, "inhibit_login", False),
            device=_device_request(body),
        )


# -- routes ------------------------------------------------------------------------------------


def register_routes(router: Router, hs: HomeServer) -> None:
    _register_registration(router, hs)
    _register_sessions(router, hs)
    _register_account(router, hs)


def _register_registration(router: Router, hs: HomeServer) -> None:
    limiter = hs.rate_limiters["registration"]

    async def register(request: ApiRequest) -> tuple[int, Any]:
        kind = request.query_str("kind", "user")
        if kind == "guest":
            return await register_guest(request)
        if kind != "user":
            raise MatrixError(400, Codes.INVALID_PARAM, "kind must be 'user' or 'guest'")
        body = request.json()
        flows = hs.accounts.registration_flows()
        params = _Registration.parse(body)
        # Counted only when an account is made: the UIA round trips are not registrations.
        precheck(limiter, request.client_ip)
        # The spec wants a bad or taken username refused before any authentication stage.
        user_id = None
        if params.username is not None:
            user_id = await hs.accounts.check_username(params.username)
        email_stage = {EMAIL_STAGE: hs.threepids.stage_checker(REGISTRATION)}
        result = await hs.accounts.uia.check(
            body.get("auth"), flows, request.path, "POST", None, checkers=email_stage
        )
        # Checked only now: clients probe for the flows with an empty body first.
        if params.password is None:
            raise bad_json("Missing password")
        threepid = validated_threepid(result)
        user_id = await hs.accounts.create_account(user_id, params.password, threepid=threepid)
        if threepid is not None:
            await hs.threepids.consume(threepid)
        record(limiter, request.client_ip)
        if params.inhibit_login:
            return 200, {"user_id": user_id, "home_server": hs.server_name}
        return 200, await hs.accounts.start_session(user_id, params.device)

    async def register_guest(request: ApiRequest) -> tuple[int, Any]:
        if not hs.config.allow_guest_access:
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access is disabled")
        # The spec: everything but initial_device_display_name is ignored for guests.
        body = body_or_empty(request)
        display_name = body.get("initial_device_display_name")
        precheck(limiter, request.client_ip)
        user_id = await hs.accounts.create_account(None, None, is_guest=True)
        record(limiter, request.client_ip)
        device = DeviceRequest(
            None, display_name if isinstance(display_name, str) else None, refreshable=False
        )
        return 200, await hs.accounts.start_session(user_id, device)

    async def available(request: ApiRequest) -> tuple[int, Any]:
        # Like Synapse, a closed server does not answer: it would only help enumerate users.
        hs.accounts.registration_flows()
        username = request.query_str("username", required=True)
        assert username is not None
        await hs.accounts.check_username(username)
        return 200, {"available": True}

    router.add_client("POST", "/register", register, auth="none")
    router.add_client("GET", "/register/available", available, auth="none")


def _register_sessions(router: Router, hs: HomeServer) -> None:
    async def login_flows(request: ApiRequest) -> tuple[int, Any]:
        return 200, {"flows": [{"type": "m.login.password"}]}

    async def login(request: ApiRequest) -> tuple[int, Any]:
        body = request.json()
        if body.get("type") != "m.login.password":
            raise MatrixError(400, Codes.UNKNOWN, "Unknown login type")
        device = _device_request(body)
        user_id = await hs.accounts.user_id_from_identifier(body)
        canonical = await _check_login_password(hs, user_id, body.get("password"))
        # Synapse's rc_login.account: successful logins per account.
        hs.rate_limiters["login_account"].check(canonical.lower())
        result = await hs.accounts.start_session(canonical, device)
        result["well_known"] = {"m.homeserver": {"base_url": hs.config.public_baseurl}}
        return 200, result

    async def refresh(request: ApiRequest) -> tuple[int, Any]:
        token = request.json().get("refresh_token")
        if not isinstance(token, str):
            raise bad_json("refresh_token must be a string")
        return 200, await hs.accounts.refresh(token)

    async def logout(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        await hs.accounts.logout(request.requester.access_token_hash)
        return 200, {}

    async def logout_all(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        await hs.accounts.logout_all(request.requester.user_id)
        return 200, {}

    router.add_client("GET", "/login", login_flows, auth="none")
    # rc_login.address: every attempt from one address counts, whatever its outcome.
    router.add_client("POST", "/login", login, auth="none", ratelimit="login_address")
    router.add_client("POST", "/refresh", refresh, auth="none")
    router.add_client("POST", "/logout", logout, allow_guest=True)
    router.add_client("POST", "/logout/all", logout_all, allow_guest=True)


async def _check_login_password(hs: HomeServer, user_id: str, password: Any) -> str:
    """rc_login.failed_attempts: only wrong passwords count, per named account."""
    failed = hs.rate_limiters["login_failed"]
    key = user_id.lower()
    precheck(failed, key)
    try:
        return await hs.accounts.check_password(user_id, password)
    except MatrixError as error:
        if error.errcode == Codes.FORBIDDEN:
            record(failed, key)
        raise


def _register_account(router: Router, hs: HomeServer) -> None:
    async def whoami(request: ApiRequest) -> tuple[int, Any]:
        requester = request.requester
        assert requester is not None
        result: dict[str, Any] = {
            "user_id": requester.user_id,
            "is_guest": requester.is_guest,
        }
        if requester.device_id is not None:
            result["device_id"] = requester.device_id
        return 200, result

    async def change_password(request: ApiRequest) -> tuple[int, Any]:
        # The access token is optional: without one, the account is the one whose address the
        # email stage validated (a password reset).
        body = request.json()
        new_password = optional_str(body, "new_password")
        check_password_length(new_password, "new_password")
        logout_devices = optional_bool(body, "logout_devices", True)
        requester = request.requester
        if requester is None:
            return await reset_password(request, body, new_password, logout_devices)
        await password_uia(hs, request, body)
        if not new_password:
            raise bad_json("Missing new_password")
        await hs.accounts.change_password(
            requester.user_id, new_password, requester.device_id, logout_devices
        )
        return 200, {}

    async def reset_password(
        request: ApiRequest, body: dict[str, Any], new_password: str | None, logout_devices: bool
    ) -> tuple[int, Any]:
        if not hs.threepids.enabled:
            # Nothing but an access token can say whose password this is.
            raise MatrixError(401, Codes.MISSING_TOKEN, "Missing access token")
        email_stage = {EMAIL_STAGE: hs.threepids.stage_checker(PASSWORD_RESET)}
        result = await hs.accounts.uia.check(
            body.get("auth"), [[EMAIL_STAGE]], request.path, "POST", None, checkers=email_stage
        )
        if not new_password:
            raise bad_json("Missing new_password")
        threepid = validated_threepid(result)
        assert threepid is not None  # the only flow has the email stage
        user_id = await hs.threepids.find_user(threepid.medium, threepid.address)
        if user_id is None:
            # The address was removed from its account after the mail was sent.
            raise MatrixError(400, Codes.THREEPID_NOT_FOUND, "No account has this address")
        # No device of the requester to keep: a reset logs out every device (unless asked not).
        await hs.accounts.change_password(user_id, new_password, None, logout_devices)
        await hs.threepids.consume(threepid)
        return 200, {}

    async def deactivate(request: ApiRequest) -> tuple[int, Any]:
        requester = request.requester
        assert requester is not None
        body = body_or_empty(request)
        optional_str(body, "id_server")
        optional_bool(body, "erase", False)
        await password_uia(hs, request, body)
        await hs.accounts.deactivate(requester.user_id)
        # The spec: "success" when there were no third-party IDs to unbind, and this server
        # has none (no 3PID support), so nothing can have failed to unbind.
        return 200, {"id_server_unbind_result": "success"}

    router.add_client("GET", "/account/whoami", whoami, allow_guest=True)
    router.add_client("POST", "/account/password", change_password, auth="optional")
    router.add_client("POST", "/account/deactivate", deactivate)
