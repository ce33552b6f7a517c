"""The redaction algorithm ("Redactions" in each room version's specification).

Redaction keeps only the keys the protocol needs, so the same function serves three purposes:
serving redacted events, computing what a signature covers, and computing the reference hash
(event IDs from v3). Getting a single key wrong therefore breaks signatures and event IDs for
the whole federation, which is why the per-version tables below are spelled out literally.

Nothing here mutates its input. The returned dicts are new at the top level and for `content`
(and anything inside content that had to be cut down), but other nested values (e.g. the
`users` map of power levels, `prev_events`) are shared with the input: copy before mutating them.
"""

from __future__ import annotations

from typing import Any

from homeserver.events.room_versions import RoomVersion

# Top-level keys kept by redaction in room versions 1-10.
_TOP_LEVEL_KEYS_V1 = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "prev_state",
        "auth_events",
        "origin",
        "origin_server_ts",
        "membership",
    }
)

# v11 stops protecting the top-level `origin`, `membership` and `prev_state`.
_TOP_LEVEL_KEYS_V11 = _TOP_LEVEL_KEYS_V1 - {"origin", "membership", "prev_state"}

_POWER_LEVELS_KEYS_V1 = frozenset(
    {"ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"}
)
# v11 also protects `invite`.
_POWER_LEVELS_KEYS_V11 = _POWER_LEVELS_KEYS_V1 | {"invite"}

# The unsigned properties of the client event format ("ClientEvent" in the client-server API).
# None of them is part of the event's own content: they describe where the event sits (age,
# prev_content/replaces_state of the state it replaced, the viewer's membership) or why it was
# redacted, so they remain meaningful after redaction. Unknown keys are dropped; bundled
# `m.relations` get their own filter (_prune_client_unsigned).
_CLIENT_UNSIGNED_KEYS = frozenset(
    {"age", "redacted_because", "transaction_id", "prev_content", "replaces_state", "membership"}
)


def prune_event_dict(pdu: dict[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """Returns the redacted form of `pdu` for `room_version`.

    `unsigned` is never kept (it is not in any version's list): this is the form that signatures
    and reference hashes cover. For events served to clients use `prune_client_event`.
    """
    top_level = _TOP_LEVEL_KEYS_V11 if room_version.updated_redaction_rules else _TOP_LEVEL_KEYS_V1
    pruned = {key: value for key, value in pdu.items() if key in top_level}
    content = pdu.get("content")
    # A PDU always has an object as content; if a malformed one does not, redaction still has to
    # yield something hashable, and an empty object is what every kept-keys rule starts from.
    pruned["content"] = (
        _prune_content(pdu.get("type"), content, room_version) if isinstance(content, dict) else {}
    )
    return pruned


def _prune_content(
    event_type: Any, content: dict[str, Any], room_version: RoomVersion
) -> dict[str, Any]:
    if event_type == "m.room.member":
        return _prune_member_content(content, room_version)
    if event_type == "m.room.create":
        # v11: the create event keeps its entire content (room_version, m.federate, ...).
        if room_version.updated_redaction_rules:
            return dict(content)
        return _keep(content, ("creator",))
    if event_type == "m.room.join_rules":
        # v8 (the version that introduced restricted rooms) keeps `allow` as well.
        if room_version.restricted_join_rule:
            return _keep(content, ("join_rule", "allow"))
        return _keep(content, ("join_rule",))
    if event_type == "m.room.power_levels":
        if room_version.updated_redaction_rules:
            return _keep(content, _POWER_LEVELS_KEYS_V11)
        return _keep(content, _POWER_LEVELS_KEYS_V1)
    if event_type == "m.room.history_visibility":
        return _keep(content, ("history_visibility",))
    if event_type == "m.room.aliases":
        # v6 removed all significance from m.room.aliases, including in redaction; that is the
        # same version boundary as the special auth rule for aliases.
        if room_version.special_case_aliases_auth:
            return _keep(content, ("aliases",))
        return {}
    if event_type == "m.room.redaction":
        # v11 moved `redacts` into content and protects it there.
        if room_version.updated_redaction_rules:
            return _keep(content, ("redacts",))
        return {}
    return {}


def _prune_member_content(content: dict[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    if room_version.restricted_join_rule_fix:
        # v9: without this key a redacted restricted join no longer passes auth (see v9 spec).
        kept = _keep(content, ("membership", "join_authorised_via_users_server"))
    else:
        kept = _keep(content, ("membership",))
    if room_version.updated_redaction_rules:
        # v11: `third_party_invite` survives, but cut down to its `signed` key.
        invite = content.get("third_party_invite")
        if isinstance(invite, dict) and "signed" in invite:
            kept["third_party_invite"] = {"signed": invite["signed"]}
    return kept


def _keep(content: dict[str, Any], keys: Any) -> dict[str, Any]:
    return {key: content[key] for key in keys if key in content}


def prune_client_event(client_event: dict[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """Redacts an event in the client-server format (event_id, room_id, unsigned, ...).

    The same key tables as `prune_event_dict` apply; the client format's keys (event_id, type,
    room_id, sender, state_key, content, origin_server_ts) are all protected by them. `unsigned`
    is not covered by redaction but clients need it, so it is rebuilt from the properties the
    client-server spec defines for it (see _CLIENT_UNSIGNED_KEYS), minus bundled `m.replace`
    aggregations, which the spec says must not be bundled with a redacted event. Other bundled
    relations (threads, references) are kept: redacting a parent leaves its children in place.
    The caller adds `unsigned.redacted_because`, as the spec asks servers to.
    """
    pruned = prune_event_dict(client_event, room_version)
    if room_version.updated_redaction_rules and client_event.get("type") == "m.room.redaction":
        # v11 spec: servers add a top-level `redacts` to redactions served to clients for older
        # clients; keep that mirror in step with the protected content.redacts.
        redacts = pruned["content"].get("redacts")
        if redacts is not None:
            pruned["redacts"] = redacts
    unsigned = client_event.get("unsigned")
    if isinstance(unsigned, dict):
        pruned["unsigned"] = _prune_client_unsigned(unsigned)
    return pruned


def _prune_client_unsigned(unsigned: dict[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in unsigned.items() if key in _CLIENT_UNSIGNED_KEYS}
    relations = unsigned.get("m.relations")
    if isinstance(relations, dict):
        relations = {key: value for key, value in relations.items() if key != "m.replace"}
        if relations:
            kept["m.relations"] = relations
    return kept
