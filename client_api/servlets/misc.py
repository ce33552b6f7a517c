"""The smaller client endpoints: OpenID, reporting content, whois, TURN.

Also the federation side of OpenID (`GET /_matrix/federation/v1/openid/userinfo`), which a
third party calls to turn a user's OpenID token back into their user ID.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from client_api.servlets.accounts import body_or_empty
from homeserver.accounts.auth import Requester, hash_token
from homeserver.errors import Codes, MatrixError, bad_json, forbidden, not_found
from homeserver.identifiers import check_user_id, server_of
from homeserver.rooms.visibility import VisibilityFilter
from storage.reports import Report
from storage.whois import DeviceConnection, get_device_connections

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# How long an OpenID token lets a third party look the user up (Synapse uses the same hour).
OPENID_TOKEN_LIFETIME_S = 3600
# Event reports once carried a score from -100 (most offensive) to 0; removed in v1.18, but
# clients of the versions we advertise may still send one.
SCORE_RANGE = range(-100, 1)


def _requester(request: ApiRequest) -> Requester:
    assert request.requester is not None
    return request.requester


def _room_id(request: ApiRequest) -> str:
    room_id = request.path_params["roomId"]
    if not room_id.startswith("!"):
        raise MatrixError(400, Codes.INVALID_PARAM, "Not a room ID")
    return room_id


# -- OpenID ------------------------------------------------------------------------------------


def register_openid_routes(router: Router, hs: HomeServer) -> None:
    async def request_token(request: ApiRequest) -> tuple[int, Any]:
        user_id = _requester(request).user_id
        if request.path_params["userId"] != user_id:
            raise forbidden("Cannot request OpenID tokens for other users")
        body_or_empty(request)  # "an empty object, reserved for future expansion"
        token = secrets.token_urlsafe(32)
        now = hs.clock.time_msec()
        await hs.storage.openid.add_token(
            hash_token(token), user_id, now, now + OPENID_TOKEN_LIFETIME_S * 1000
        )
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "matrix_server_name": hs.server_name,
            "expires_in": OPENID_TOKEN_LIFETIME_S,
        }

    router.add_client("POST", "/user/{userId}/openid/request_token", request_token)


def register_federation_openid_routes(router: Router, hs: HomeServer) -> None:
    async def userinfo(request: ApiRequest) -> tuple[int, Any]:
        # ApiRequest keeps ?access_token= away from handlers (it is a client credential
        # elsewhere); here it is this endpoint's parameter, so it is read from the raw request.
        tokens = (request.raw.args or {}).get(b"access_token")
        if not tokens:
            raise MatrixError(401, Codes.MISSING_TOKEN, "Missing access_token")
        token = tokens[0].decode("utf-8", "replace")
        user_id = await hs.storage.openid.get_user(hash_token(token), hs.clock.time_msec())
        if user_id is None:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Access token unknown or expired")
        return 200, {"sub": user_id}

    path = "/_matrix/federation/v1/openid/userinfo"
    # Served by both the "federation" and the "openid" resource (Synapse's names): a listener
    # that names both registers it once.
    if not any(route.pattern == path for route in router.routes()):
        router.add("GET", path, userinfo, auth="none")


# -- reporting content -------------------------------------------------------------------------


def _reason(body: dict[str, Any], required: bool) -> str | None:
    reason = body.get("reason")
    if (reason is None and required) or (reason is not None and not isinstance(reason, str)):
        raise bad_json("reason must be a string" + (" and is required" if required else ""))
    return reason


def _score(body: dict[str, Any]) -> int | None:
    score = body.get("score")
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, int) or score not in SCORE_RANGE:
        raise bad_json("score must be an integer from -100 to 0")
    return score


def register_report_routes(router: Router, hs: HomeServer) -> None:
    async def report_event(request: ApiRequest) -> tuple[int, Any]:
        user_id = _requester(request).user_id
        room_id = _room_id(request)
        body = request.json()
        reason, score = _reason(body, required=False), _score(body)
        # The spec (v1.8): only members currently joined may report, and anything they could
        # not see is "not found", so reports cannot probe for events.
        snapshot = await hs.storage.state.get_snapshot(room_id)
        event = await hs.storage.events.get_event(request.path_params["eventId"])
        if (
            snapshot is None
            or snapshot.membership_of(user_id) != "join"
            or event is None
            or event.room_id != room_id
            or event.outlier
            or not await VisibilityFilter(hs.storage, user_id).filter([event])
        ):
            raise not_found("The event was not found or you are not joined to the room")
        await hs.storage.reports.add(
            Report(
                user_id,
                hs.clock.time_msec(),
                room_id=room_id,
                event_id=event.event_id,
                reason=reason,
                score=score,
            )
        )
        return 200, {}

    async def report_room(request: ApiRequest) -> tuple[int, Any]:
        room_id = _room_id(request)
        reason = _reason(request.json(), required=True)
        # Deliberately no membership check (spec v1.13): rooms are seen through invites and
        # the directory too.
        if await hs.storage.state.get_snapshot(room_id) is None:
            raise not_found("The room was not found")
        report = Report(
            _requester(request).user_id, hs.clock.time_msec(), room_id=room_id, reason=reason
        )
        await hs.storage.reports.add(report)
        return 200, {}

    async def report_user(request: ApiRequest) -> tuple[int, Any]:
        target = check_user_id(request.path_params["userId"], "userId")
        reason = _reason(request.json(), required=True)
        # Only our own users can be looked up; others are taken on trust (a 200 that, per the
        # spec, does not claim the user exists).
        if server_of(target) == hs.server_name and not await hs.storage.accounts.user_exists(
            target
        ):
            raise not_found("The user was not found")
        report = Report(
            _requester(request).user_id,
            hs.clock.time_msec(),
            target_user_id=target,
            reason=reason,
        )
        await hs.storage.reports.add(report)
        return 200, {}

    router.add_client("POST", "/rooms/{roomId}/report/{eventId}", report_event)
    router.add_client("POST", "/rooms/{roomId}/report", report_room)
    router.add_client("POST", "/users/{userId}/report", report_user)


# -- server administration: whois --------------------------------------------------------------


def _connection(device: DeviceConnection) -> dict[str, Any]:
    fields = {
        "ip": device.last_seen_ip,
        "last_seen": device.last_seen_ts,
        "user_agent": device.last_seen_user_agent,
    }
    return {key: value for key, value in fields.items() if value is not None}


def register_whois_routes(router: Router, hs: HomeServer) -> None:
    async def whois(request: ApiRequest) -> tuple[int, Any]:
        requester = _requester(request)
        user_id = request.path_params["userId"]
        # The spec lets the server restrict this to the user themselves and server admins.
        if user_id != requester.user_id and not requester.is_admin:
            raise forbidden("You may only look up yourself")
        if not await hs.storage.accounts.user_exists(user_id):
            raise not_found("No such user on this server")
        await hs.authenticator.wait_for_seen_writes(user_id)
        devices = await get_device_connections(hs.db, user_id)
        # Each device is one session (one login); we keep only its most recent connection.
        return 200, {
            "user_id": user_id,
            "devices": {
                d.device_id: {
                    "sessions": [
                        {"connections": [_connection(d)] if d.last_seen_ts is not None else []}
                    ]
                }
                for d in devices
            },
        }

    router.add_client("GET", "/admin/whois/{userId}", whois)


# -- VoIP: TURN credentials --------------------------------------------------------------------


def turn_credentials(hs: HomeServer, user_id: str) -> dict[str, Any]:
    """TURN servers and credentials for `user_id`; {} when there is no TURN server to offer."""
    config = hs.config
    lifetime_ms = config.turn_user_lifetime_ms
    if not config.turn_uris:
        return {}
    if config.turn_shared_secret:
        # The TURN REST API convention (coturn's use-auth-secret): the username carries its
        # own expiry, and the password is an HMAC of it that the TURN server can recompute.
        expiry_s = (hs.clock.time_msec() + lifetime_ms) // 1000
        username = f"{expiry_s}:{user_id}"
        mac = hmac.new(
            config.turn_shared_secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1
        )
        password = base64.b64encode(mac.digest()).decode("ascii")
    elif config.turn_username and config.turn_password:
        username, password = config.turn_username, config.turn_password
    else:
        return {}
    return {
        "username": username,
        "password": password,
        "uris": list(config.turn_uris),
        "ttl": lifetime_ms // 1000,
    }


def register_voip_routes(router: Router, hs: HomeServer) -> None:
    async def turn_server(request: ApiRequest) -> tuple[int, Any]:
        requester = _requester(request)
        if requester.is_guest and not hs.config.turn_allow_guests:
            raise forbidden("Guest users may not use the TURN server")
        # With no TURN server the spec names no answer (matrix-spec#373, #1795). Like Synapse
        # and Dendrite we send {}: clients read it as "no TURN" and keep calling without
        # relays, where an error would be retried and an empty `uris` list makes browsers'
        # RTCPeerConnection throw.
        return 200, turn_credentials(hs, requester.user_id)

    router.add_client("GET", "/voip/turnServer", turn_server, allow_guest=True)


def register_routes(router: Router, hs: HomeServer) -> None:
    """The client API routes of this module (the federation one is registered apart)."""
    register_openid_routes(router, hs)
    register_report_routes(router, hs)
    register_whois_routes(router, hs)
    register_voip_routes(router, hs)
