"""Shapes of well-known event contents that local clients send.

The auth rules read some of these keys, and clients render others; a wrongly typed value stored
once would break every reader of the room. Events from other servers are not checked here
(the auth rules decide about those).
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import bad_json

# type -> {key: allowed Python types}; a listed key may be absent, but not of another type.
_STRING_KEYS: dict[str, dict[str, tuple[type, ...]]] = {
    "m.room.join_rules": {"join_rule": (str,), "allow": (list,)},
    "m.room.history_visibility": {"history_visibility": (str,)},
    "m.room.guest_access": {"guest_access": (str,)},
    "m.room.name": {"name": (str,)},
    "m.room.topic": {"topic": (str,)},
    "m.room.avatar": {"url": (str,)},
    "m.room.member": {
        "membership": (str,),
        "displayname": (str, type(None)),
        "avatar_url": (str, type(None)),
        "reason": (str,),
        "is_direct": (bool,),
    },
    "m.room.canonical_alias": {"alias": (str, type(None)), "alt_aliases": (list,)},
    "m.room.tombstone": {"body": (str,), "replacement_room": (str,)},
    "m.room.encryption": {"algorithm": (str,)},
    "m.room.pinned_events": {"pinned": (list,)},
    "m.room.server_acl": {"allow": (list,), "deny": (list,), "allow_ip_literals": (bool,)},
    "m.space.child": {"via": (list,), "order": (str,), "suggested": (bool,)},
    "m.space.parent": {"via": (list,), "canonical": (bool,)},
}

# Keys without which the event means nothing.
_REQUIRED = {
    "m.room.join_rules": "join_rule",
    "m.room.history_visibility": "history_visibility",
    "m.room.guest_access": "guest_access",
    "m.room.member": "membership",
}


def check_content_shape(event_type: str, content: dict[str, Any]) -> None:
    """Raises 400 M_BAD_JSON when a well-known key has the wrong type."""
    keys = _STRING_KEYS.get(event_type)
    if keys is None:
        return
    required = _REQUIRED.get(event_type)
    if required is not None and required not in content:
        raise bad_json(f"{event_type} needs '{required}'")
    for key, types in keys.items():
        if key in content and not isinstance(content[key], types):
            raise bad_json(f"{event_type}: '{key}' has the wrong type")
