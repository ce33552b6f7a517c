"""Accounts: registration, password login, token refresh, logout, password changes,
deactivation, devices and profiles.

Sans-HTTP: the client API parses requests and calls these methods; errors are MatrixErrors
with the codes the spec gives each endpoint. Rate limiting stays in the HTTP layer, which owns
the limiters and knows the client's address.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from homeserver.accounts import passwords
from homeserver.accounts.auth import hash_token, new_token
from homeserver.accounts.threepids import (
    EMAIL_STAGE,
    ValidatedThreepid,
    canonicalise_email,
    threepid_in_use,
)
from homeserver.accounts.uia import InteractiveAuth, check_dummy
from homeserver.clock import Clock
from homeserver.config import HomeServerConfig
from homeserver.errors import Codes, MatrixError, bad_json, forbidden
from homeserver.identifiers import (
    new_device_id,
    server_of,
    user_id_from_localpart,
    validate_new_localpart,
)
from homeserver.rooms.event_creation import EventDraft
from homeserver.rooms.membership import MembershipService
from storage.store import Storage
from storage.threepids import Threepid, ThreepidInUse

logger = logging.getLogger(__name__)

# One message for unknown users and wrong passwords, so a login does not reveal which it was.
_BAD_LOGIN = "Invalid username or password"
# Synapse's limits; longer device names are cut, not refused, at login and registration.
MAX_DEVICE_DISPLAY_NAME_LENGTH = 100
MAX_DISPLAYNAME_LENGTH = 256
MAX_AVATAR_URL_LENGTH = 1000
MAX_DEVICE_ID_LENGTH = 255
_PROFILE_FIELDS = ("displayname", "avatar_url")
# Memberships that deactivation ends (leave, or reject the invite / withdraw the knock).
_ACTIVE_MEMBERSHIPS = ("join", "invite", "knock")

# Called with a user ID after some of the user's devices were deleted (end-to-end encryption
# deletes their keys and pending to-device messages, and announces the device-list change).
DeviceObserver = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class DeviceRequest:
    """The device a login or registration asks for: an ID to reuse or None, and a name."""

    device_id: str | None
    display_name: str | None
    refreshable: bool


class AccountService:
    def __init__(
        self,
        config: HomeServerConfig,
        storage: Storage,
        clock: Clock,
        membership: MembershipService,
    ) -> None:
        self.config = config
        self.server_name = config.server_name
        self.store = storage.accounts
        self.storage = storage
        self.clock = clock
        self.membership = membership
        self.uia = InteractiveAuth(
            self.store,
            clock,
            {"m.login.dummy": check_dummy, "m.login.password": self._check_password_stage},
        )
        self.device_observers: list[DeviceObserver] = []

    # Registration ------------------------------------------------------------------------------

    def registration_flows(self) -> list[list[str]]:
        """The flows /register offers; 403 when registration is closed."""
        config = self.config
        if not config.enable_registration:
            raise forbidden("Registration has been disabled")
        if "email" in config.registrations_require_3pid:
            return [[EMAIL_STAGE]]
        if not config.enable_registration_without_verification:
            # The config refuses this combination; a server without a verification method
            # it may skip offers nothing rather than sign-ups without verification.
            raise forbidden("Registration has been disabled")
        if config.email is not None:
            # As in Synapse: an address is optional, and validated when one is given.
            return [["m.login.dummy"], [EMAIL_STAGE]]
        return [["m.login.dummy"]]

    async def check_username(self, username: str) -> str:
        """The user ID `username` would get; M_INVALID_USERNAME or M_USER_IN_USE otherwise.

        Upper case is mapped to lower case rather than refused: the spec lets a server map a
        username onto the localpart grammar "in a logical manner", people type capitals into
        sign-up forms, and Synapse does the same, so clients expect it.
        """
        localpart = username.lower()
        validate_new_localpart(localpart, self.server_name)
        if localpart.isdigit():
            # Numeric localparts are what we generate for guests and unnamed accounts.
            raise MatrixError(
                400, Codes.INVALID_USERNAME, "Numeric user IDs are reserved for guest users"
            )
        user_id = user_id_from_localpart(localpart, self.server_name)
        if await self.store.user_exists(user_id):
            raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken")
        return user_id

    async def create_account(
        self,
        user_id: str | None,
        password: str | None,
        *,
        is_admin: bool = False,
        is_guest: bool = False,
        displayname: str | None = None,
        threepid: ValidatedThreepid | None = None,
    ) -> str:
        """Creates the account (with a generated numeric ID when user_id is None), with the
        validated `threepid` bound to it (400 M_THREEPID_IN_USE, and no account, if another
        account has the address by now)."""
        password_hash = None
        if password is not None:
            password_hash = await passwords.hash_password(password, self.config.bcrypt_rounds)
        now = self.clock.time_msec()
        try:
            if user_id is not None:
                await self._create_named_account(
                    user_id, password_hash, now, is_admin, is_guest, displayname, threepid
                )
                return user_id
            return await self._create_numeric_account(
                password_hash, now, is_admin, is_guest, threepid
            )
        except ThreepidInUse:
            raise threepid_in_use() from None

    async def _create_named_account(
        self,
        user_id: str,
        password_hash: str | None,
        now: int,
        is_admin: bool,
        is_guest: bool,
        displayname: str | None,
        threepid: ValidatedThreepid | None,
    ) -> None:
        # The default display name is the localpart, as Synapse sets it.
        name = displayname if displayname is not None else user_id[1:].split(":", 1)[0]
        created = await self.store.create_user(
            user_id,
            password_hash,
            now,
            is_admin=is_admin,
            displayname=name,
            is_guest=is_guest,
            threepid=_bound(threepid, user_id, now),
        )
        if not created:
            raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken")

    async def _create_numeric_account(
        self,
        password_hash: str | None,
        now: int,
        is_admin: bool,
        is_guest: bool,
        threepid: ValidatedThreepid | None,
    ) -> str:
        for _ in range(10):
            localpart = str(10**9 + secrets.randbelow(9 * 10**9))
            user_id = user_id_from_localpart(localpart, self.server_name)
            if await self.store.create_user(
                user_id,
                password_hash,
                now,
                is_admin=is_admin,
                displayname=localpart,
                is_guest=is_guest,
                threepid=_bound(threepid, user_id, now),
            ):
                return user_id
        raise MatrixError(500, Codes.UNKNOWN, "Could not allocate a user ID")

    # Sessions: access and refresh tokens ------------------------------------------------------

    async def start_session(self, user_id: str, device: DeviceRequest) -> dict[str, Any]:
        """A new access token (and refresh token) for a new or reused device."""
        device_id = device.device_id or new_device_id()
        access_token = new_token("syt")
        access_until, refresh, extra = self._token_lifetimes(device.refreshable)
        display_name = device.display_name
        if display_name is not None:
            display_name = display_name[:MAX_DEVICE_DISPLAY_NAME_LENGTH]
        await self.store.store_device_and_token(
            user_id,
            device_id,
            display_name,
            hash_token(access_token),
            access_until,
            (hash_token(refresh), self._refresh_expiry()) if refresh else None,
            self.clock.time_msec(),
        )
        result = {
            "user_id": user_id,
            "access_token": access_token,
            "device_id": device_id,
            # Deprecated, but clients (and Synapse's own tools) still read it.
            "home_server": self.server_name,
            **extra,
        }
        if refresh:
            result["refresh_token"] = refresh
        return result

    def _token_lifetimes(self, refreshable: bool) -> tuple[int | None, str | None, dict[str, int]]:
        """(access token valid until, refresh token or None, expires_in_ms for the client)."""
        now = self.clock.time_msec()
        if refreshable:
            lifetime = self.config.refreshable_access_token_lifetime_ms
            return now + lifetime, new_token("syr"), {"expires_in_ms": lifetime}
        lifetime = self.config.nonrefreshable_access_token_lifetime_ms
        if lifetime is None:
            return None, None, {}
        return now + lifetime, None, {"expires_in_ms": lifetime}

    def _refresh_expiry(self) -> int | None:
        lifetime = self.config.refresh_token_lifetime_ms
        return None if lifetime is None else self.clock.time_msec() + lifetime

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """A new token pair; the old refresh token works until the new pair is used."""
        old_hash = hash_token(refresh_token)
        info = await self.store.get_refresh_token(old_hash)
        now = self.clock.time_msec()
        if info is None or (info.expiry_ts is not None and now >= info.expiry_ts):
            raise _unknown_refresh_token()
        access_token = new_token("syt")
        access_until, new_refresh, extra = self._token_lifetimes(refreshable=True)
        assert new_refresh is not None
        exchanged = await self.store.exchange_refresh_token(
            old_hash,
            info.user_id,
            info.device_id,
            hash_token(access_token),
            access_until,
            (hash_token(new_refresh), self._refresh_expiry()),
            now,
        )
        if not exchanged:
            raise _unknown_refresh_token()
        return {"access_token": access_token, "refresh_token": new_refresh, **extra}

    async def logout(self, access_token_hash: str) -> None:
        """Ends the session: the token's device and all its tokens go."""
        info = await self.store.get_token(access_token_hash)
        await self.store.delete_access_token(access_token_hash)
        if info is not None:
            await self._devices_deleted(info.user_id)

    async def logout_all(self, user_id: str) -> None:
        await self.store.delete_all_devices(user_id)
        await self._devices_deleted(user_id)

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        await self.store.delete_devices(user_id, device_ids)
        await self._devices_deleted(user_id)

    async def _devices_deleted(self, user_id: str) -> None:
        for observer in self.device_observers:
            try:
                await observer(user_id)
            except Exception:
                # The devices are gone either way; what is left behind is cleaned up the next
                # time a device of the user is deleted.
                logger.warning("Device deletion hook failed for %s", user_id, exc_info=True)

    # Passwords and login ------------------------------------------------------------------------

    async def user_id_from_identifier(self, body: dict[str, Any]) -> str:
        """The user ID a login (or m.login.password stage) names, not yet checked to exist.

        Accepts `identifier` of type m.id.user or m.id.thirdparty (an address bound to an
        account), and the deprecated top-level `user`, or `medium` and `address`. An address
        no account has is refused like a wrong password (403), as the spec asks. Phone numbers
        are never bound here, so m.id.phone always is.
        """
        identifier = body.get("identifier")
        if identifier is None:
            if "medium" in body or "address" in body:
                return await self._user_id_from_threepid(body)
            user = body.get("user")
        else:
            if not isinstance(identifier, dict):
                raise bad_json("identifier must be an object")
            id_type = identifier.get("type")
            if id_type == "m.id.thirdparty":
                return await self._user_id_from_threepid(identifier)
            if id_type == "m.id.phone":
                raise forbidden(_BAD_LOGIN)
            if id_type != "m.id.user":
                raise MatrixError(400, Codes.UNKNOWN, f"Unknown identifier type {id_type!r}")
            user = identifier.get("user")
        if not isinstance(user, str) or not user:
            raise bad_json("Missing user identifier")
        if user.startswith("@"):
            return user
        return user_id_from_localpart(user, self.server_name)

    async def _user_id_from_threepid(self, identifier: dict[str, Any]) -> str:
        medium, address = identifier.get("medium"), identifier.get("address")
        if not isinstance(medium, str) or not isinstance(address, str):
            raise bad_json("medium and address must be strings")
        if medium != "email":
            raise forbidden(_BAD_LOGIN)
        try:
            address = canonicalise_email(address)
        except MatrixError:
            raise forbidden(_BAD_LOGIN) from None
        user_id = await self.storage.threepids.get_owner(medium, address)
        if user_id is None:
            raise forbidden(_BAD_LOGIN)
        return user_id

    async def check_password(self, user_id: str, password: Any) -> str:
        """The canonical ID of the account `user_id` names if `password` is its password.

        Like Synapse, an ID that does not exist exactly is looked up case-insensitively
        (accounts from before localparts had to be lower case), if that finds one account.
        """
        if not isinstance(password, str):
            raise bad_json("password must be a string")
        if ":" not in user_id or server_of(user_id) != self.server_name:
            raise forbidden(_BAD_LOGIN)
        canonical = await self._find_account(user_id)
        if canonical is None:
            raise forbidden(_BAD_LOGIN)
        user = await self.store.get_user(canonical)
        if user is None:
            raise forbidden(_BAD_LOGIN)
        password_hash, _, deactivated = user
        if deactivated:
            # Deactivation wiped the password, so this cannot wait for a password check.
            raise MatrixError(403, Codes.USER_DEACTIVATED, "This account has been deactivated")
        if not await passwords.check_password(password, password_hash):
            raise forbidden(_BAD_LOGIN)
        return canonical

    async def _find_account(self, user_id: str) -> str | None:
        if await self.store.user_exists(user_id):
            return user_id
        matches = await self.store.find_user_case_insensitive(user_id)
        return matches[0] if len(matches) == 1 else None

    async def _check_password_stage(self, auth: dict[str, Any], user_id: str | None) -> None:
        """m.login.password inside user-interactive auth: the requester's own password."""
        if user_id is None:
            raise forbidden("Log in first: the password stage confirms the logged-in user")
        if "identifier" in auth or "user" in auth:
            named = await self.user_id_from_identifier(auth)
            if named.lower() != user_id.lower():
                raise forbidden("You can only authenticate as yourself")
        await self.check_password(user_id, auth.get("password"))

    async def change_password(
        self, user_id: str, new_password: str, keep_device_id: str | None, logout_devices: bool
    ) -> None:
        password_hash = await passwords.hash_password(new_password, self.config.bcrypt_rounds)
        await self.store.set_password_hash(user_id, password_hash)
        if logout_devices:
            await self.store.delete_other_tokens(user_id, keep_device_id)
            await self._devices_deleted(user_id)

    # Deactivation -------------------------------------------------------------------------------

    async def deactivate(self, user_id: str) -> None:
        """Locks the account first (tokens, devices, password, profile), then leaves its rooms.

        In that order the account is unusable as soon as the call starts; a room that refuses
        the leave (or fails) does not stop the rest.
        """
        await self.store.deactivate_user(user_id)
        await self._devices_deleted(user_id)
        rooms = await self.storage.state.get_rooms_for_user(user_id)
        for room_id, membership in list(rooms.items()):
            if membership not in _ACTIVE_MEMBERSHIPS:
                continue
            try:
                await self.membership.leave(user_id, room_id)
            except Exception:
                logger.warning(
                    "Deactivating %s: could not leave %s", user_id, room_id, exc_info=True
                )

    # Profiles -----------------------------------------------------------------------------------

    async def get_profile(self, user_id: str) -> dict[str, str] | None:
        """{displayname, avatar_url} without unset fields; None for an unknown user."""
        profile = await self.store.get_profile(user_id)
        if profile is None:
            return None
        values = dict(zip(_PROFILE_FIELDS, profile, strict=True))
        return {key: value for key, value in values.items() if value is not None}

    async def set_profile_field(self, user_id: str, field: str, value: str | None) -> None:
        """Stores the field and tells every joined room, as an updated member event."""
        await self.store.set_profile_field(user_id, field, value)
        rooms = await self.storage.state.get_rooms_for_user(user_id)
        joined = [room_id for room_id, membership in list(rooms.items()) if membership == "join"]
        for room_id in joined:
            try:
                await self._update_member_event(room_id, user_id, field, value)
            except Exception:
                # One room refusing (power levels, a broken room) must not undo the change.
                logger.warning(
                    "Profile change of %s not sent to %s", user_id, room_id, exc_info=True
                )

    async def _update_member_event(
        self, room_id: str, user_id: str, field: str, value: str | None
    ) -> None:
        snapshot = await self.storage.state.get_snapshot(room_id)
        event_id = snapshot.state.get(("m.room.member", user_id)) if snapshot else None
        event = await self.storage.events.get_event(event_id) if event_id else None
        if event is None or event.content.get("membership") != "join":
            return
        content = dict(event.content)
        # That signature authorised one particular join into a restricted room, not this one.
        content.pop("join_authorised_via_users_server", None)
        if value is None:
            content.pop(field, None)
        else:
            content[field] = value
        if content == event.content:
            return
        draft = EventDraft("m.room.member", user_id, content, state_key=user_id)
        await self.membership.creator.send(room_id, draft)


def _bound(threepid: ValidatedThreepid | None, user_id: str, now: int) -> Threepid | None:
    """The row that binds a validated address to a new account."""
    if threepid is None:
        return None
    return Threepid(threepid.medium, threepid.address, user_id, threepid.validated_at, now)


def _unknown_refresh_token() -> MatrixError:
    # soft_logout false: the session is over, logging in again is the only way on.
    return MatrixError(
        401,
        Codes.UNKNOWN_TOKEN,
        "Unknown, used or expired refresh token",
        extra={"soft_logout": False},
    )
