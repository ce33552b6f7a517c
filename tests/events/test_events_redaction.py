"""The redaction algorithm, per room version."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from homeserver.events.redaction import prune_client_event, prune_event_dict
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS

V = KNOWN_ROOM_VERSIONS


def _pdu(event_type: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    pdu: dict[str, Any] = {
        "event_id": "$e:example.org",
        "type": event_type,
        "room_id": "!r:example.org",
        "sender": "@u:example.org",
        "content": content,
        "hashes": {"sha256": "abc"},
        "signatures": {"example.org": {"ed25519:1": "sig"}},
        "depth": 5,
        "prev_events": [["$p:example.org", {"sha256": "x"}]],
        "prev_state": [],
        "auth_events": [["$a:example.org", {"sha256": "y"}]],
        "origin": "example.org",
        "origin_server_ts": 1234,
        "membership": "join",
        "unsigned": {"age": 5},
        "some_other_key": "dropped",
    }
    pdu.update(extra)
    return pdu


V1_TOP_LEVEL = {
    "event_id",
    "type",
    "room_id",
    "sender",
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


@pytest.mark.parametrize("version", ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"])
def test_top_level_keys_v1_to_v10(version: str) -> None:
    pruned = prune_event_dict(_pdu("m.room.message", {"body": "hi"}), V[version])
    assert set(pruned) == V1_TOP_LEVEL
    assert pruned["content"] == {}


@pytest.mark.parametrize("version", ["11", "12"])
def test_top_level_keys_v11(version: str) -> None:
    pruned = prune_event_dict(_pdu("m.room.message", {"body": "hi"}, state_key=""), V[version])
    assert set(pruned) == (V1_TOP_LEVEL | {"state_key"}) - {"origin", "membership", "prev_state"}


def test_state_key_is_kept_and_unsigned_dropped() -> None:
    pruned = prune_event_dict(_pdu("m.room.topic", {"topic": "t"}, state_key=""), V["1"])
    assert pruned["state_key"] == ""
    assert "unsigned" not in pruned
    assert pruned["content"] == {}


def test_v1_member_and_create() -> None:
    member = _pdu(
        "m.room.member",
        {"membership": "join", "displayname": "U", "join_authorised_via_users_server": "@x:y"},
    )
    assert prune_event_dict(member, V["1"])["content"] == {"membership": "join"}
    create = _pdu("m.room.create", {"creator": "@u:example.org", "m.federate": False})
    assert prune_event_dict(create, V["1"])["content"] == {"creator": "@u:example.org"}


def test_aliases_protected_only_before_v6() -> None:
    aliases = _pdu("m.room.aliases", {"aliases": ["#a:example.org"], "other": 1})
    assert prune_event_dict(aliases, V["5"])["content"] == {"aliases": ["#a:example.org"]}
    assert prune_event_dict(aliases, V["6"])["content"] == {}


POWER_LEVELS = {
    "ban": 50,
    "events": {"m.room.name": 100},
    "events_default": 0,
    "invite": 0,
    "kick": 50,
    "notifications": {"room": 50},
    "redact": 50,
    "state_default": 50,
    "users": {"@u:example.org": 100},
    "users_default": 0,
}


def test_power_levels_v6_keeps_neither_invite_nor_notifications() -> None:
    pruned = prune_event_dict(_pdu("m.room.power_levels", POWER_LEVELS), V["6"])
    expected = {k: v for k, v in POWER_LEVELS.items() if k not in ("invite", "notifications")}
    assert pruned["content"] == expected


def test_power_levels_v11_keeps_invite() -> None:
    pruned = prune_event_dict(_pdu("m.room.power_levels", POWER_LEVELS), V["11"])
    expected = {k: v for k, v in POWER_LEVELS.items() if k != "notifications"}
    assert pruned["content"] == expected


def test_join_rules_allow_kept_from_v8() -> None:
    content = {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}], "x": 1}
    event = _pdu("m.room.join_rules", content)
    assert prune_event_dict(event, V["7"])["content"] == {"join_rule": "restricted"}
    assert prune_event_dict(event, V["8"])["content"] == {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership"}],
    }


def test_join_authorised_via_users_server_kept_from_v9() -> None:
    content = {
        "membership": "join",
        "join_authorised_via_users_server": "@admin:example.org",
        "displayname": "U",
    }
    event = _pdu("m.room.member", content, state_key="@u:example.org")
    assert prune_event_dict(event, V["8"])["content"] == {"membership": "join"}
    assert prune_event_dict(event, V["9"])["content"] == {
        "membership": "join",
        "join_authorised_via_users_server": "@admin:example.org",
    }


def test_history_visibility() -> None:
    event = _pdu("m.room.history_visibility", {"history_visibility": "shared", "x": 1})
    for version in ("1", "6", "9", "11"):
        assert prune_event_dict(event, V[version])["content"] == {"history_visibility": "shared"}


def test_create_v11_keeps_all_content_v10_only_creator() -> None:
    content = {"creator": "@u:example.org", "room_version": "10", "m.federate": False, "x": [1]}
    event = _pdu("m.room.create", content, state_key="")
    assert prune_event_dict(event, V["10"])["content"] == {"creator": "@u:example.org"}
    assert prune_event_dict(event, V["11"])["content"] == content
    v11_content = {"room_version": "11", "m.federate": False}
    event = _pdu("m.room.create", v11_content, state_key="")
    assert prune_event_dict(event, V["11"])["content"] == v11_content
    assert prune_event_dict(event, V["10"])["content"] == {}


def test_redaction_event_redacts_v10_vs_v11() -> None:
    old = _pdu("m.room.redaction", {"reason": "spam"}, redacts="$x:example.org")
    assert "redacts" not in prune_event_dict(old, V["10"])
    assert prune_event_dict(old, V["10"])["content"] == {}
    new = _pdu("m.room.redaction", {"reason": "spam", "redacts": "$x"})
    assert prune_event_dict(new, V["11"])["content"] == {"redacts": "$x"}
    assert prune_event_dict(new, V["10"])["content"] == {}


def test_v11_third_party_invite_cut_to_signed() -> None:
    signed = {"mxid": "@u:example.org", "token": "t", "signatures": {}}
    content = {
        "membership": "invite",
        "third_party_invite": {"display_name": "alice", "signed": signed},
    }
    event = _pdu("m.room.member", content, state_key="@u:example.org")
    assert prune_event_dict(event, V["10"])["content"] == {"membership": "invite"}
    assert prune_event_dict(event, V["11"])["content"] == {
        "membership": "invite",
        "third_party_invite": {"signed": signed},
    }
    # Without a `signed` key there is nothing to keep.
    event["content"]["third_party_invite"] = {"display_name": "alice"}
    assert prune_event_dict(event, V["11"])["content"] == {"membership": "invite"}


@pytest.mark.parametrize("version", sorted(V))
def test_input_never_mutated(version: str) -> None:
    events = [
        _pdu("m.room.message", {"body": "x"}),
        _pdu("m.room.create", {"creator": "@u:example.org", "room_version": "11"}),
        _pdu("m.room.member", {"membership": "invite", "third_party_invite": {"signed": {}}}),
        _pdu("m.room.power_levels", POWER_LEVELS),
    ]
    for event in events:
        before = copy.deepcopy(event)
        pruned = prune_event_dict(event, V[version])
        assert event == before
        assert pruned is not event and pruned["content"] is not event["content"]


def test_non_object_content() -> None:
    assert prune_event_dict(_pdu("m.room.member", "junk"), V["9"])["content"] == {}  # type: ignore[arg-type]


def test_redaction_is_idempotent() -> None:
    for version in sorted(V):
        for event in (
            _pdu("m.room.member", {"membership": "join", "avatar_url": "mxc://a/b"}),
            _pdu("m.room.create", {"room_version": "11"}),
        ):
            once = prune_event_dict(event, V[version])
            assert prune_event_dict(once, V[version]) == once


# ----------------------------------------------------------------------- client format


def _client_event(**extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "$e",
        "room_id": "!r:example.org",
        "type": "m.room.message",
        "sender": "@u:example.org",
        "origin_server_ts": 1234,
        "content": {"body": "secret", "msgtype": "m.text"},
        "unsigned": {
            "age": 10,
            "transaction_id": "txn1",
            "membership": "join",
            "redacted_because": {"type": "m.room.redaction"},
            "m.relations": {"m.replace": {"event_id": "$edit"}, "m.thread": {"count": 2}},
            "io.example.custom": 1,
        },
    }
    event.update(extra)
    return event


def test_prune_client_event() -> None:
    event = _client_event()
    before = copy.deepcopy(event)
    pruned = prune_client_event(event, V["10"])
    assert event == before
    assert pruned == {
        "event_id": "$e",
        "room_id": "!r:example.org",
        "type": "m.room.message",
        "sender": "@u:example.org",
        "origin_server_ts": 1234,
        "content": {},
        "unsigned": {
            "age": 10,
            "transaction_id": "txn1",
            "membership": "join",
            "redacted_because": {"type": "m.room.redaction"},
            "m.relations": {"m.thread": {"count": 2}},
        },
    }


def test_prune_client_event_v11_redaction_keeps_redacts_mirror() -> None:
    event = _client_event(
        type="m.room.redaction",
        content={"redacts": "$target", "reason": "spam"},
        redacts="$target",
        unsigned={},
    )
    pruned = prune_client_event(event, V["11"])
    assert pruned["content"] == {"redacts": "$target"}
    assert pruned["redacts"] == "$target"
    assert pruned["unsigned"] == {}
    # Before v11 `redacts` is not protected at all.
    assert "redacts" not in prune_client_event(event, V["10"])
