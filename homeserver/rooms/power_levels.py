"""Reading `m.room.power_levels` content: defaults, legacy value formats and room creators.

Everything here is a pure function of event content, so the room service can pre-check what a
user may do and the auth rules can share the exact same reading.

Reading is deliberately lenient: whatever made it into room state passed the auth rules of its
room version, and those rules are what refuse badly typed values (strings from v10, floats from
v6 through canonical JSON). Old room versions can therefore hold legacy values — numeric strings
(v1-v9, "stringy power levels") and floats (v1-v5, "floaty power levels") — which are coerced to
integers as the room version specs describe. A value that cannot be read as an integer at all is
treated as absent, i.e. the default applies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

from homeserver.events.event import Event

# Room creators in v12+ outrank every integer level. A float infinity compares correctly with
# any int (`inf > 2**63`, `inf >= inf`), so callers can use plain comparison operators.
CREATOR_POWER_LEVEL: Final = math.inf

# Before v12, when the room has no power levels event, its creator has 100 and everyone else 0.
DEFAULT_CREATOR_LEVEL: Final = 100

# Defaults from the m.room.power_levels schema and the server-server "Definitions". They apply
# whether the key is missing or there is no power levels event at all (spec v1.7 removed the old
# "state_default is 0 without a power levels event" wording).
NAMED_LEVEL_DEFAULTS: Final[Mapping[str, int]] = {
    "ban": 50,
    "kick": 50,
    "redact": 50,
    "invite": 0,
    "users_default": 0,
    "events_default": 0,
    "state_default": 50,
}

# The `notifications.room` default; the spec names no other key, so unknown keys share it (the
# safe choice: a notification type nobody configured needs moderator-like power).
DEFAULT_NOTIFICATION_LEVEL: Final = 50

# "Stringy" power levels (v1-v9): base-10 digits, one optional sign, optional whitespace around.
# Python's int() alone would also accept "1_000" and non-ASCII digits, which the spec does not.
_INT_STRING = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)

PowerLevel = int | float  # float only ever for CREATOR_POWER_LEVEL


def parse_level(value: Any) -> int | None:
    """A power level value as an int, or None if it cannot be read as one.

    Accepts ints, integer strings and finite floats (truncated toward zero). Whether such legacy
    forms are *allowed* in a given room version is the auth rules' business, not this function's.
    """
    # bool is a subclass of int, but JSON true/false are not numbers.
    if type(value) is int:
        return value
    if isinstance(value, str):
        if _INT_STRING.fullmatch(value):
            return int(value)
        return None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    return None


def _mapping(content: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    """A sub-object of the content, or an empty one when missing or not an object."""
    if content is None:
        return {}
    value = content.get(key)
    return value if isinstance(value, dict) else {}


def get_creators(create_event: Event) -> frozenset[str]:
    """The room's creators as the room version defines them.

    v1-v10: `content.creator`. v11: the create event's sender. v12+: the sender plus
    `content.additional_creators` (only the well-formed entries; the auth rules reject a create
    event whose list is malformed).
    """
    room_version = create_event.room_version
    if room_version.additional_creators:
        extra = create_event.content.get("additional_creators")
        if isinstance(extra, list):
            return frozenset([create_event.sender, *(u for u in extra if isinstance(u, str))])
        return frozenset((create_event.sender,))
    if room_version.implicit_room_creator:
        return frozenset((create_event.sender,))
    creator = create_event.content.get("creator")
    return frozenset((creator,)) if isinstance(creator, str) else frozenset()


def is_creator(user_id: str, create_event: Event) -> bool:
    """Whether `user_id` is a room creator; avoids building a set on the hot path."""
    room_version = create_event.room_version
    if room_version.implicit_room_creator or room_version.additional_creators:
        if user_id == create_event.sender:
            return True
        if not room_version.additional_creators:
            return False
        extra = create_event.content.get("additional_creators")
        return isinstance(extra, list) and user_id in extra
    return create_event.content.get("creator") == user_id


def creators_have_infinite_power(create_event: Event) -> bool:
    """v12+: creators' power is infinite and they may not appear in the `users` map."""
    return create_event.room_version.additional_creators


def get_user_power_level(
    user_id: str, power_levels: Mapping[str, Any] | None, create_event: Event
) -> PowerLevel:
    """The power level of `user_id`, given the current power levels content (None if the room
    has no power levels event) and the room's create event."""
    if creators_have_infinite_power(create_event):
        if is_creator(user_id, create_event):
            return CREATOR_POWER_LEVEL
        if power_levels is None:
            return 0
    elif power_levels is None:
        return DEFAULT_CREATOR_LEVEL if is_creator(user_id, create_event) else 0
    level = parse_level(_mapping(power_levels, "users").get(user_id))
    if level is not None:
        return level
    return get_named_level("users_default", power_levels)


def get_named_level(name: str, power_levels: Mapping[str, Any] | None) -> int:
    """One of the top-level levels: ban, kick, redact, invite, users_default, events_default,
    state_default, with the spec's default when missing or unreadable."""
    default = NAMED_LEVEL_DEFAULTS[name]
    if power_levels is None:
        return default
    level = parse_level(power_levels.get(name))
    return default if level is None else level


def get_event_send_level(
    event_type: str, is_state: bool, power_levels: Mapping[str, Any] | None
) -> int:
    """The *required power level* to send an event of this type (events[type], else
    state_default or events_default)."""
    level = parse_level(_mapping(power_levels, "events").get(event_type))
    if level is not None:
        return level
    return get_named_level("state_default" if is_state else "events_default", power_levels)


def get_notification_level(key: str, power_levels: Mapping[str, Any] | None) -> int:
    """The level needed to trigger the `key` notification (e.g. "room" for @room)."""
    level = parse_level(_mapping(power_levels, "notifications").get(key))
    return DEFAULT_NOTIFICATION_LEVEL if level is None else level
