"""The authorisation rules for room events, room versions 1-12, as sans-I/O functions.

Sources: the "Authorisation rules" of each room version (content/rooms/v*.md and the
v1/v3/v8 auth-rules fragments) and the server-server API sections "Auth events selection" and
"Checks performed on receipt of a PDU".

The rules are split in two, because the callers have different information:

* `check_auth_rules(event, auth_state)` runs every rule that reads room state. `auth_state`
  maps (type, state_key) to the state the rules read — the event's auth events, the state
  before it, or the current state, depending on which of the receipt checks is being run. The
  create event must always be in it, also in v12 where auth events no longer list it.
* `check_auth_events_shape(event, auth_events)` runs the rules about the `auth_events` list
  itself (duplicates, selection, rejected entries, room IDs, the v12 room ID rule). Only events
  received over federation need it: events we build ourselves choose their auth events with
  `auth_types_for_event`.

Rule numbers in comments follow room version 11's list (v12 shifts most of them by one); error
messages describe the rule in words instead, so they read the same in every version.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NoReturn

from homeserver.errors import AuthError
from homeserver.events.event import Event
from homeserver.events.room_versions import EventFormat, RoomVersion, get_room_version
from homeserver.rooms.power_levels import (
    PowerLevel,
    creators_have_infinite_power,
    get_event_send_level,
    get_named_level,
    get_user_power_level,
    is_creator,
    parse_level,
)

CREATE: Final = "m.room.create"
MEMBER: Final = "m.room.member"
POWER_LEVELS: Final = "m.room.power_levels"
JOIN_RULES: Final = "m.room.join_rules"
THIRD_PARTY_INVITE: Final = "m.room.third_party_invite"
ALIASES: Final = "m.room.aliases"
REDACTION: Final = "m.room.redaction"

JOIN: Final = "join"
INVITE: Final = "invite"
LEAVE: Final = "leave"
BAN: Final = "ban"
KNOCK: Final = "knock"

PUBLIC: Final = "public"
RESTRICTED: Final = "restricted"
KNOCK_RESTRICTED: Final = "knock_restricted"

AUTHORISING_USER: Final = "join_authorised_via_users_server"

_CREATE_KEY: Final = (CREATE, "")
_POWER_LEVELS_KEY: Final = (POWER_LEVELS, "")
_JOIN_RULES_KEY: Final = (JOIN_RULES, "")

# The top-level power levels whose changes rule 9.5 (v11 numbering) checks.
_NAMED_LEVEL_KEYS: Final = (
    "users_default",
    "events_default",
    "state_default",
    "ban",
    "redact",
    "kick",
    "invite",
)

# Server names (appendices, "Server Name"): an IPv6 literal in brackets or a DNS name / IPv4
# literal, then an optional port.
_SERVER_NAME = re.compile(r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?")

SignatureCheck = Callable[[Event, str], bool]


def _reject(message: str) -> NoReturn:
    raise AuthError(message)


def _domain(identifier: str) -> str:
    """The server name part of `&localpart:domain` ("" when there is none)."""
    return identifier.partition(":")[2]


def is_valid_user_id(user_id: object) -> bool:
    """The user ID grammar as servers must accept it over federation.

    Historical user IDs are accepted (appendices, "Historical User IDs"): the localpart may be any
    non-surrogate code points except ':' and NUL, even empty. The domain must be a server name
    and the whole ID at most 255 bytes.
    """
    if not isinstance(user_id, str) or not user_id.startswith("@"):
        return False
    localpart, colon, domain = user_id[1:].partition(":")
    if not colon or "\x00" in localpart:
        return False
    try:
        if len(user_id.encode("utf-8")) > 255:
            return False
    except UnicodeEncodeError:  # lone surrogates
        return False
    return _SERVER_NAME.fullmatch(domain) is not None


# --------------------------------------------------------------------------------------------
# Auth events selection
# --------------------------------------------------------------------------------------------


def _third_party_invite_token(content: Mapping[str, Any]) -> str | None:
    invite = content.get("third_party_invite")
    signed = invite.get("signed") if isinstance(invite, dict) else None
    token = signed.get("token") if isinstance(signed, dict) else None
    return token if isinstance(token, str) else None


def auth_types_for_event(
    room_version: RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, Any],
) -> list[tuple[str, str]]:
    """The (type, state_key) pairs whose current state events go into an event's `auth_events`
    (server-server API, "Auth events selection"). Empty for the create event."""
    if event_type == CREATE:
        return []
    # v12: the room ID names the create event, so it must not be listed again.
    types: list[tuple[str, str]] = [] if room_version.room_id_from_create_event else [_CREATE_KEY]
    types.append(_POWER_LEVELS_KEY)
    types.append((MEMBER, sender))
    if event_type != MEMBER or not isinstance(state_key, str):
        return types
    if state_key != sender:
        types.append((MEMBER, state_key))
    membership = content.get("membership")
    if membership in (JOIN, INVITE, KNOCK):
        types.append(_JOIN_RULES_KEY)
    if membership == INVITE:
        token = _third_party_invite_token(content)
        if token is not None:
            types.append((THIRD_PARTY_INVITE, token))
    if membership == JOIN and room_version.restricted_join_rule:
        authoriser = content.get(AUTHORISING_USER)
        if isinstance(authoriser, str) and (MEMBER, authoriser) not in types:
            types.append((MEMBER, authoriser))
    return types


# --------------------------------------------------------------------------------------------
# Rules about the auth_events list (federation receipt)
# --------------------------------------------------------------------------------------------


def check_auth_events_shape(
    event: Event, auth_events: list[Event], *, create_event: Event | None = None
) -> None:
    """The rules about an event's `auth_events` themselves (rule 2 of v1-v11, rules 2-3 of v12).

    `auth_events` are the events named by `event.auth_event_ids`. `create_event`, when given,
    is the room's create event, so the v12 rule "room_id is the ID of an accepted create event"
    can be checked in full; without it only the room ID's form is checked.
    """
    room_version = event.room_version
    if event.type == CREATE:
        # Rule 1 decides create events before auth events are considered.
        return
    if room_version.room_id_from_create_event:
        _check_room_id_names_create(event, create_event)
    if len(set(event.auth_event_ids)) != len(event.auth_event_ids):
        _reject("auth_events lists the same event twice")
    allowed = set(
        auth_types_for_event(room_version, event.type, event.sender, event.state_key, event.content)
    )
    seen: set[tuple[str, str | None]] = set()
    for auth_event in auth_events:
        key = (auth_event.type, auth_event.state_key)
        if key in seen:
            _reject(f"auth_events has more than one {key[0]} event for state key {key[1]!r}")
        seen.add(key)
        if key not in allowed:
            _reject(f"auth_events has an entry the auth events selection does not pick: {key}")
        if auth_event.rejected_reason is not None:
            _reject(f"auth event {auth_event.event_id} was itself rejected")
        if auth_event.room_id != event.room_id:
            _reject(f"auth event {auth_event.event_id} belongs to another room")
    if not room_version.room_id_from_create_event and _CREATE_KEY not in seen:
        _reject("auth_events has no m.room.create event")


def _check_room_id_names_create(event: Event, create_event: Event | None) -> None:
    """v12 rule 2: the room ID is the create event's ID with the '!' sigil."""
    if not event.room_id.startswith("!") or len(event.room_id) < 2:
        _reject("room_id is not the ID of a create event")
    if create_event is None:
        return
    if create_event.type != CREATE or create_event.event_id != "$" + event.room_id[1:]:
        _reject("room_id is not the ID of the room's m.room.create event")
    if create_event.rejected_reason is not None:
        _reject("the room's m.room.create event was rejected")


# --------------------------------------------------------------------------------------------
# The rules that read room state
# --------------------------------------------------------------------------------------------


class _RoomState:
    """The state the rules read, with the power levels content looked up once per check."""

    __slots__ = ("state", "create", "power_levels")

    def __init__(self, state: Mapping[tuple[str, str], Event], create: Event) -> None:
        self.state = state
        self.create = create
        pl_event = state.get(_POWER_LEVELS_KEY)
        self.power_levels: Mapping[str, Any] | None = (
            pl_event.content if pl_event is not None else None
        )

    def membership(self, user_id: str) -> object:
        member = self.state.get((MEMBER, user_id))
        return member.content.get("membership") if member is not None else None

    def join_rule(self) -> object:
        join_rules = self.state.get(_JOIN_RULES_KEY)
        return join_rules.content.get("join_rule") if join_rules is not None else None

    def level(self, user_id: str) -> PowerLevel:
        return get_user_power_level(user_id, self.power_levels, self.create)

    def named(self, name: str) -> int:
        return get_named_level(name, self.power_levels)


def check_auth_rules(
    event: Event,
    auth_state: Mapping[tuple[str, str], Event],
    *,
    is_signed_by: SignatureCheck | None = None,
) -> None:
    """Raises AuthError (403 M_FORBIDDEN) unless the room version's authorisation rules allow
    `event` against `auth_state`.

    `is_signed_by(event, server_name)` answers whether the event carries a valid signature from
    that server; it is only needed for `join_authorised_via_users_server` (v8+). None means the
    event is our own and trusted to be signed.
    """
    if event.type == CREATE:
        check_create_event(event)
        return
    create = auth_state.get(_CREATE_KEY)
    if create is None:
        _reject("there is no m.room.create event in the room state")
    if create.room_id != event.room_id:
        # v12 rule 2 for state we were handed; earlier versions' "auth event in another room".
        _reject("the m.room.create event is for a different room")
    if create.content.get("m.federate") is False and _domain(event.sender) != _domain(
        create.sender
    ):
        _reject("the room does not federate and the sender is on another server")

    room_version = event.room_version
    if room_version.special_case_aliases_auth and event.type == ALIASES:
        _check_aliases(event)
        return

    room = _RoomState(auth_state, create)
    if event.type == MEMBER:
        _check_membership(event, room, is_signed_by)
        return
    if room.membership(event.sender) != JOIN:
        _reject(f"{event.sender} is not joined to the room")
    if event.type == THIRD_PARTY_INVITE:
        if room.level(event.sender) < room.named("invite"):
            _reject(f"{event.sender} does not have the power level to invite")
        return
    _check_send_level(event, room)
    if event.type == POWER_LEVELS:
        _check_power_levels_event(event, room)
    elif event.type == REDACTION and room_version.event_format is EventFormat.V1:
        # Only v1-v2 apply the redact level in the auth rules; from v3 the redaction itself is
        # checked when it is applied. v1-v2 are exactly the rooms with domain-bearing event IDs.
        _check_v1_redaction(event, room)


def check_create_event(event: Event) -> None:
    """Rule 1: the checks on an m.room.create event that need no other event."""
    room_version = event.room_version
    if event.prev_event_ids:
        _reject("an m.room.create event must not have prev_events")
    if room_version.room_id_from_create_event:
        if "room_id" in event.pdu:
            _reject("an m.room.create event must not have a room_id in this room version")
    elif _domain(event.room_id) != _domain(event.sender):
        _reject("the room ID's domain does not match the domain of the creator")
    content = event.content
    if "room_version" in content:
        version = content["room_version"]
        if not isinstance(version, str) or get_room_version(version) is None:
            _reject(f"unrecognised room version {version!r}")
    if not room_version.implicit_room_creator and "creator" not in content:
        _reject("the m.room.create event has no creator")
    if room_version.additional_creators and "additional_creators" in content:
        extra = content["additional_creators"]
        if not isinstance(extra, list) or not all(is_valid_user_id(u) for u in extra):
            _reject("additional_creators must be an array of user IDs")


def _check_aliases(event: Event) -> None:
    """v1-v5 rule 4: a server may set the aliases under its own name, joined or not."""
    if event.state_key is None:
        _reject("an m.room.aliases event must have a state_key")
    if _domain(event.sender) != event.state_key:
        _reject("m.room.aliases may only be sent for the sender's own server name")


def _check_send_level(event: Event, room: _RoomState) -> None:
    """The required power level rule and the '@'-state-key rule (rules 7 and 8 in v11)."""
    is_state = event.state_key is not None
    required = get_event_send_level(event.type, is_state, room.power_levels)
    if required > room.level(event.sender):
        _reject(f"{event.sender} does not have the power level to send {event.type} events")
    state_key = event.state_key
    if state_key is not None and state_key.startswith("@") and state_key != event.sender:
        _reject("a state key starting with '@' may only be set by that user")


def _check_v1_redaction(event: Event, room: _RoomState) -> None:
    """v1-v2 rule 11: redacting needs the redact level unless it is the sender's server's event."""
    if room.level(event.sender) >= room.named("redact"):
        return
    redacts = event.redacts
    own_domain = _domain(event.event_id)
    if isinstance(redacts, str) and own_domain and _domain(redacts) == own_domain:
        return
    _reject(f"{event.sender} does not have the power level to redact other servers' events")


# --------------------------------------------------------------------------------------------
# m.room.member
# --------------------------------------------------------------------------------------------


def _check_membership(event: Event, room: _RoomState, is_signed_by: SignatureCheck | None) -> None:
    room_version = event.room_version
    content = event.content
    target = event.state_key
    if target is None or "membership" not in content:
        _reject("an m.room.member event needs a state_key and a membership")
    if room_version.restricted_join_rule and AUTHORISING_USER in content:
        authoriser = content[AUTHORISING_USER]
        if not is_valid_user_id(authoriser):
            _reject(f"{AUTHORISING_USER} is not a user ID")
        if is_signed_by is not None and not is_signed_by(event, _domain(authoriser)):
            _reject(f"the event is not signed by the server of {AUTHORISING_USER}")
    membership = content["membership"]
    if membership == JOIN:
        _check_join(event, target, room)
    elif membership == INVITE:
        _check_invite(event, target, room)
    elif membership == LEAVE:
        _check_leave(event, target, room)
    elif membership == BAN:
        _check_ban(event, target, room)
    elif membership == KNOCK and room_version.knock_join_rule:
        _check_knock(event, target, room)
    else:
        _reject(f"unknown membership {membership!r}")


def _is_first_join_of_creator(event: Event, target: str, room: _RoomState) -> bool:
    """The creator's own join straight after the create event (rule 4.3.1 in v11)."""
    create = room.create
    if event.prev_event_ids != [create.event_id]:
        return False
    if create.room_version.implicit_room_creator:
        # v11+: the create event's sender (in v12 not the additional creators, who join
        # like anyone else).
        return target == create.sender
    return target == create.content.get("creator")


def _check_join(event: Event, target: str, room: _RoomState) -> None:
    room_version = event.room_version
    if _is_first_join_of_creator(event, target, room):
        return
    if event.sender != target:
        _reject("users may only join on their own behalf")
    current = room.membership(target)
    if current == BAN:
        _reject(f"{target} is banned from the room")
    join_rule = room.join_rule()
    if join_rule == INVITE or (join_rule == KNOCK and room_version.knock_join_rule):
        if current in (INVITE, JOIN):
            return
        _reject(f"the room's join rule is {join_rule} and {target} is not invited")
    if (join_rule == RESTRICTED and room_version.restricted_join_rule) or (
        join_rule == KNOCK_RESTRICTED and room_version.knock_restricted_join_rule
    ):
        if current in (INVITE, JOIN):
            return
        _check_join_authoriser(event, room)
        return
    if join_rule == PUBLIC:
        return
    # Includes rooms with no m.room.join_rules event: the rules only allow listed join rules.
    _reject(f"the join rule {join_rule!r} does not let {target} join")


def _check_join_authoriser(event: Event, room: _RoomState) -> None:
    """A restricted join must be vouched for by a joined member who may invite."""
    authoriser = event.content.get(AUTHORISING_USER)
    if not isinstance(authoriser, str):
        _reject(f"a restricted join needs an invite or {AUTHORISING_USER}")
    if room.membership(authoriser) != JOIN:
        _reject(f"{AUTHORISING_USER} {authoriser} is not joined to the room")
    if room.level(authoriser) < room.named("invite"):
        _reject(f"{AUTHORISING_USER} {authoriser} does not have the power level to invite")


def _check_invite(event: Event, target: str, room: _RoomState) -> None:
    if "third_party_invite" in event.content:
        _check_third_party_invite(event, target, room)
        return
    if room.membership(event.sender) != JOIN:
        _reject(f"{event.sender} is not joined to the room and cannot invite")
    current = room.membership(target)
    if current in (JOIN, BAN):
        _reject(f"{target} cannot be invited: their membership is {current}")
    if room.level(event.sender) < room.named("invite"):
        _reject(f"{event.sender} does not have the power level to invite")


def _check_leave(event: Event, target: str, room: _RoomState) -> None:
    sender_membership = room.membership(event.sender)
    if event.sender == target:
        # Leaving, rejecting an invite, or (v7+) withdrawing a knock.
        leavable = (INVITE, JOIN, KNOCK) if event.room_version.knock_join_rule else (INVITE, JOIN)
        if sender_membership in leavable:
            return
        _reject(f"{target} cannot leave: their membership is {sender_membership}")
    if sender_membership != JOIN:
        _reject(f"{event.sender} is not joined to the room and cannot kick")
    sender_level = room.level(event.sender)
    if room.membership(target) == BAN and sender_level < room.named("ban"):
        _reject(f"{event.sender} does not have the power level to unban")
    if sender_level < room.named("kick"):
        _reject(f"{event.sender} does not have the power level to kick")
    if room.level(target) >= sender_level:
        _reject(f"{event.sender} cannot kick {target}, whose power level is not lower")


def _check_ban(event: Event, target: str, room: _RoomState) -> None:
    if room.membership(event.sender) != JOIN:
        _reject(f"{event.sender} is not joined to the room and cannot ban")
    sender_level = room.level(event.sender)
    if sender_level < room.named("ban"):
        _reject(f"{event.sender} does not have the power level to ban")
    if room.level(target) >= sender_level:
        _reject(f"{event.sender} cannot ban {target}, whose power level is not lower")


def _check_knock(event: Event, target: str, room: _RoomState) -> None:
    join_rule = room.join_rule()
    if not (
        join_rule == KNOCK
        or (join_rule == KNOCK_RESTRICTED and event.room_version.knock_restricted_join_rule)
    ):
        _reject(f"the join rule {join_rule!r} does not allow knocking")
    if event.sender != target:
        _reject("users may only knock on their own behalf")
    current = room.membership(target)
    if current in (BAN, INVITE, JOIN):
        _reject(f"{target} cannot knock: their membership is {current}")


# --------------------------------------------------------------------------------------------
# Third-party invites
# --------------------------------------------------------------------------------------------


def _check_third_party_invite(event: Event, target: str, room: _RoomState) -> None:
    """An invite that redeems an m.room.third_party_invite (rule 4.4.1 in v11). Neither the
    sender's membership nor the invite level is checked here: sending the
    m.room.third_party_invite event already needed both."""
    if room.membership(target) == BAN:
        _reject(f"{target} is banned from the room")
    invite = event.content["third_party_invite"]
    signed = invite.get("signed") if isinstance(invite, dict) else None
    if not isinstance(signed, dict):
        _reject("third_party_invite has no signed object")
    if "mxid" not in signed or "token" not in signed:
        _reject("third_party_invite.signed needs mxid and token")
    if signed["mxid"] != target:
        _reject("third_party_invite.signed.mxid does not match the invited user")
    token = signed["token"]
    third_party = room.state.get((THIRD_PARTY_INVITE, token)) if isinstance(token, str) else None
    if third_party is None:
        _reject("there is no m.room.third_party_invite event for this token")
    if third_party.sender != event.sender:
        _reject("only the sender of the m.room.third_party_invite may complete it")
    if not _signed_by_any_key(signed, _third_party_public_keys(third_party.content)):
        _reject("third_party_invite.signed is not signed by any of the invite's public keys")


def _third_party_public_keys(content: Mapping[str, Any]) -> list[str]:
    keys: list[str] = []
    if isinstance(content.get("public_key"), str):
        keys.append(content["public_key"])
    listed = content.get("public_keys")
    if isinstance(listed, list):
        for entry in listed:
            if isinstance(entry, dict) and isinstance(entry.get("public_key"), str):
                keys.append(entry["public_key"])
    return keys


def _decode_base64(value: str) -> bytes | None:
    """Unpadded base64, standard or URL-safe alphabet (appendices, "Unpadded Base64")."""
    try:
        data = value.encode("ascii").rstrip(b"=")
        return base64.b64decode(data + b"=" * (-len(data) % 4), altchars=b"-_", validate=True)
    except (ValueError, UnicodeEncodeError):
        return None


def _signed_by_any_key(signed: Mapping[str, Any], public_keys: Iterable[str]) -> bool:
    """Whether any ed25519 signature in `signed` verifies with any of `public_keys`
    (appendices, "Checking for a Signature")."""
    # Imported here: only third-party invites need crypto, not the per-message hot path.
    from nacl.exceptions import CryptoError
    from nacl.signing import VerifyKey

    from homeserver.events.canonical_json import encode_canonical_json

    signatures = signed.get("signatures")
    if not isinstance(signatures, dict):
        return False
    verify_keys = []
    for encoded in public_keys:
        raw = _decode_base64(encoded)
        if raw is not None and len(raw) == 32:
            verify_keys.append(VerifyKey(raw))
    if not verify_keys:
        return False
    try:
        message = encode_canonical_json(
            {k: v for k, v in signed.items() if k not in ("signatures", "unsigned")}
        )
    except Exception:  # content that cannot be canonicalised cannot carry a valid signature
        return False
    for by_key in signatures.values():
        if not isinstance(by_key, dict):
            continue
        for key_id, encoded_signature in by_key.items():
            if not key_id.startswith("ed25519:") or not isinstance(encoded_signature, str):
                continue
            signature = _decode_base64(encoded_signature)
            if signature is None or len(signature) != 64:
                continue
            for verify_key in verify_keys:
                try:
                    verify_key.verify(message, signature)
                    return True
                except (CryptoError, ValueError, TypeError):
                    continue
    return False


# --------------------------------------------------------------------------------------------
# m.room.power_levels
# --------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return type(value) is int  # not bool, which JSON keeps distinct


def _is_legacy_level(value: object, room_version: RoomVersion) -> bool:
    """A value that the room version accepts where an integer power level is expected."""
    if type(value) is int:
        return True
    if room_version.enforce_int_power_levels:
        return False
    if isinstance(value, str):
        return parse_level(value) is not None
    # Floats only exist in v1-v5, whose events need not be canonical JSON.
    return (
        isinstance(value, float) and not room_version.strict_canonicaljson and math.isfinite(value)
    )


def _check_power_levels_shape(content: Mapping[str, Any], room_version: RoomVersion) -> None:
    """Rules 9.1-9.3 (v11 numbering): the types of the new power levels content."""
    if room_version.enforce_int_power_levels:
        for key in _NAMED_LEVEL_KEYS:
            if key in content and not _is_int(content[key]):
                _reject(f"power levels: {key} must be an integer")
        for key in ("events", "notifications"):
            if key in content:
                value = content[key]
                if not isinstance(value, dict) or not all(_is_int(v) for v in value.values()):
                    _reject(f"power levels: {key} must be an object of integers")
    elif not room_version.strict_canonicaljson:
        _check_no_infinite_floats(content)
    # A missing `users` is read as empty (as everywhere else power levels are read); the rule
    # is taken to refuse a `users` that is present but malformed.
    users = content.get("users", {})
    if not isinstance(users, dict):
        _reject("power levels: users must be an object")
    for user_id, level in users.items():
        if not is_valid_user_id(user_id):
            _reject(f"power levels: {user_id!r} in users is not a user ID")
        if not _is_legacy_level(level, room_version):
            _reject(f"power levels: the level of {user_id} must be an integer")


def _check_no_infinite_floats(content: Mapping[str, Any]) -> None:
    """v1-v5 ("floaty power levels"): Infinity, NaN and out-of-range floats reject the event."""
    values: list[object] = [content.get(key) for key in _NAMED_LEVEL_KEYS]
    for key in ("events", "notifications", "users"):
        nested = content.get(key)
        if isinstance(nested, dict):
            values.extend(nested.values())
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            _reject("power levels must not be infinite or NaN")


def _check_power_levels_event(event: Event, room: _RoomState) -> None:
    """Rule 9 (v11 numbering) / 10 (v12): what a sender may change in the power levels."""
    room_version = event.room_version
    new = event.content
    _check_power_levels_shape(new, room_version)
    new_users = new.get("users") or {}
    if creators_have_infinite_power(room.create):
        for user_id in new_users:
            if is_creator(user_id, room.create):
                _reject(f"power levels: room creator {user_id} cannot be given a power level")
    old = room.power_levels
    if old is None:
        return
    sender_level = room.level(event.sender)
    for key in _NAMED_LEVEL_KEYS:
        _check_level_change(key, old.get(key), new.get(key), sender_level)
    maps = (
        ("events", "notifications")
        if room_version.limit_notifications_power_levels
        else ("events",)
    )
    for name in maps:
        old_map, new_map = _as_map(old.get(name)), _as_map(new.get(name))
        for key in old_map.keys() | new_map.keys():
            _check_level_change(f"{name}.{key}", old_map.get(key), new_map.get(key), sender_level)
    _check_users_changes(event.sender, _as_map(old.get("users")), new_users, sender_level)


def _as_map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _check_level_change(
    name: str, old_value: object, new_value: object, sender_level: PowerLevel
) -> None:
    """Neither the old nor the new value of a changed level may exceed the sender's own."""
    old_level, new_level = parse_level(old_value), parse_level(new_value)
    if old_level == new_level:
        return
    if old_level is not None and old_level > sender_level:
        _reject(f"power levels: cannot change {name}, currently above the sender's level")
    if new_level is not None and new_level > sender_level:
        _reject(f"power levels: cannot set {name} above the sender's level")


def _check_users_changes(
    sender: str,
    old_users: Mapping[str, Any],
    new_users: Mapping[str, Any],
    sender_level: PowerLevel,
) -> None:
    """Others at or above the sender's level are untouchable; nobody may be raised above it."""
    for user_id in old_users.keys() | new_users.keys():
        old_level = parse_level(old_users.get(user_id))
        new_level = parse_level(new_users.get(user_id))
        if old_level == new_level:
            continue
        if user_id != sender and old_level is not None and old_level >= sender_level:
            _reject(f"power levels: cannot change the level of {user_id}, not below the sender's")
        if new_level is not None and new_level > sender_level:
            _reject(f"power levels: cannot raise {user_id} above the sender's level")
