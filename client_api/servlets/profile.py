"""Profiles: /profile/{userId} and /profile/{userId}/{keyName}.

Only displayname and avatar_url are stored (the m.profile_fields capability is not offered, so
clients assume exactly these two); other valid keys read as absent and cannot be set.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.accounts.service import MAX_AVATAR_URL_LENGTH, MAX_DISPLAYNAME_LENGTH
from homeserver.errors import Codes, MatrixError, bad_json, forbidden, not_found
from homeserver.identifiers import check_user_id, server_of

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# The spec's grammar for keyName.
_KEY_NAME = re.compile(r"^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")
_SUPPORTED = {"displayname": MAX_DISPLAYNAME_LENGTH, "avatar_url": MAX_AVATAR_URL_LENGTH}


def _key_name(request: ApiRequest) -> str:
    key = request.path_params["keyName"]
    if len(key.encode("utf-8")) > 255:
        raise MatrixError(400, "M_KEY_TOO_LARGE", "Profile key is too long")
    if not _KEY_NAME.match(key):
        raise MatrixError(400, Codes.INVALID_PARAM, "Invalid profile key")
    return key


def _own_profile(request: ApiRequest) -> str:
    """The path's user, who must be the requester: nobody edits someone else's profile."""
    assert request.requester is not None
    user_id = request.path_params["userId"]
    if user_id != request.requester.user_id:
        raise forbidden("You can only change your own profile")
    return user_id


def _check_value(key: str, value: Any) -> str | None:
    """The value to store; "" clears the field (what clients send to remove an avatar)."""
    if not isinstance(value, str):
        raise bad_json(f"{key} must be a string")
    if len(value) > _SUPPORTED[key]:
        raise MatrixError(400, Codes.TOO_LARGE, f"{key} is too long (at most {_SUPPORTED[key]})")
    if key == "avatar_url" and value and not value.startswith("mxc://"):
        raise bad_json("avatar_url must be an mxc:// URI")
    return value or None


def register_routes(router: Router, hs: HomeServer) -> None:
    async def load_profile(user_id: str) -> dict[str, str]:
        check_user_id(user_id, "userId")
        # Remote profiles need federation, which is not there yet: they are not found.
        profile = None
        if server_of(user_id) == hs.server_name:
            profile = await hs.accounts.get_profile(user_id)
        if profile is None:
            raise not_found("Profile not found")
        return profile

    async def get_profile(request: ApiRequest) -> tuple[int, Any]:
        return 200, await load_profile(request.path_params["userId"])

    async def get_field(request: ApiRequest) -> tuple[int, Any]:
        key = _key_name(request)
        profile = await load_profile(request.path_params["userId"])
        if key not in profile:
            raise not_found(f"The user has no {key}")
        return 200, {key: profile[key]}

    async def put_field(request: ApiRequest) -> tuple[int, Any]:
        key = _key_name(request)
        user_id = _own_profile(request)
        if key not in _SUPPORTED:
            raise forbidden(f"Profile field {key} cannot be set on this server")
        body = request.json()
        if key not in body:
            raise MatrixError(400, Codes.MISSING_PARAM, f"Missing {key} in the body")
        await hs.accounts.set_profile_field(user_id, key, _check_value(key, body[key]))
        return 200, {}

    async def delete_field(request: ApiRequest) -> tuple[int, Any]:
        key = _key_name(request)
        user_id = _own_profile(request)
        if key in _SUPPORTED:
            await hs.accounts.set_profile_field(user_id, key, None)
        return 200, {}

    # Profiles are public (the spec gives these GETs no security requirement).
    router.add_client("GET", "/profile/{userId}", get_profile, auth="optional")
    router.add_client("GET", "/profile/{userId}/{keyName}", get_field, auth="optional")
    router.add_client("PUT", "/profile/{userId}/{keyName}", put_field, allow_guest=True)
    router.add_client("DELETE", "/profile/{userId}/{keyName}", delete_field, allow_guest=True)
