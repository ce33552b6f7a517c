"""The room versions we know, and the rules each one switches on.

Room versions are opaque strings to clients; to the server each names a bundle of algorithms
(event ID format, redaction, auth rules, state resolution). Code asks the `RoomVersion` for the
flag it cares about instead of comparing version strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class EventFormat(Enum):
    # v1-v2: event_id chosen by the origin ("$local:server"), prev/auth events are [id, hashes] pairs.
    V1 = 1
    # v3: event_id is the reference hash in standard unpadded base64.
    V2 = 2
    # v4+: event_id is the reference hash in URL-safe unpadded base64.
    V3 = 3


class StateResolution(Enum):
    V1 = 1
    V2 = 2
    # v12: state resolution v2 revised (starts from an empty state, creator power, ...).
    V2_1 = 3


@dataclass(frozen=True)
class RoomVersion:
    identifier: str
    event_format: EventFormat
    state_resolution: StateResolution
    # v5+: signing keys must be valid at the event's origin_server_ts.
    enforce_key_validity: bool
    # v1-v5: m.room.aliases has special auth rules.
    special_case_aliases_auth: bool
    # v6+: integers outside [-(2**53)+1, (2**53)-1] are rejected in canonical JSON.
    strict_canonicaljson: bool
    # v6+: auth checks changes to the "notifications" key of power levels (redaction does not
    # keep that key in any version).
    limit_notifications_power_levels: bool
    # v7+: the "knock" membership and join rule.
    knock_join_rule: bool
    # v8+: the "restricted" join rule.
    restricted_join_rule: bool
    # v9+: redaction preserves join_authorised_via_users_server in member content.
    restricted_join_rule_fix: bool
    # v10+: the "knock_restricted" join rule.
    knock_restricted_join_rule: bool
    # v10+: power level values must be integers (not strings).
    enforce_int_power_levels: bool
    # v11+: the create event has no "creator"; the sender is the creator. Redaction changes.
    implicit_room_creator: bool
    updated_redaction_rules: bool
    # v12+: room ID is the create event's reference hash; creators have infinite power.
    room_id_from_create_event: bool
    additional_creators: bool


def _version(identifier: str, **flags: object) -> RoomVersion:
    """Builds a version from v1's defaults plus the flags that changed since."""
    base: dict[str, object] = dict(
        event_format=EventFormat.V1,
        state_resolution=StateResolution.V1,
        enforce_key_validity=False,
        special_case_aliases_auth=True,
        strict_canonicaljson=False,
        limit_notifications_power_levels=False,
        knock_join_rule=False,
        restricted_join_rule=False,
        restricted_join_rule_fix=False,
        knock_restricted_join_rule=False,
        enforce_int_power_levels=False,
        implicit_room_creator=False,
        updated_redaction_rules=False,
        room_id_from_create_event=False,
        additional_creators=False,
    )
    base.update(flags)
    return RoomVersion(identifier=identifier, **base)  # type: ignore[arg-type]


_V2 = dict(state_resolution=StateResolution.V2)
_V3 = dict(_V2, event_format=EventFormat.V2)
_V4 = dict(_V3, event_format=EventFormat.V3)
_V5 = dict(_V4, enforce_key_validity=True)
_V6 = dict(
    _V5,
    special_case_aliases_auth=False,
    strict_canonicaljson=True,
    limit_notifications_power_levels=True,
)
_V7 = dict(_V6, knock_join_rule=True)
_V8 = dict(_V7, restricted_join_rule=True)
_V9 = dict(_V8, restricted_join_rule_fix=True)
_V10 = dict(_V9, knock_restricted_join_rule=True, enforce_int_power_levels=True)
_V11 = dict(_V10, implicit_room_creator=True, updated_redaction_rules=True)
_V12 = dict(
    _V11,
    state_resolution=StateResolution.V2_1,
    room_id_from_create_event=True,
    additional_creators=True,
)

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    v.identifier: v
    for v in (
        _version("1"),
        _version("2", **_V2),
        _version("3", **_V3),
        _version("4", **_V4),
        _version("5", **_V5),
        _version("6", **_V6),
        _version("7", **_V7),
        _version("8", **_V8),
        _version("9", **_V9),
        _version("10", **_V10),
        _version("11", **_V11),
        _version("12", **_V12),
    )
}

DEFAULT_ROOM_VERSION = "12"


def get_room_version(identifier: str) -> RoomVersion | None:
    return KNOWN_ROOM_VERSIONS.get(identifier)
