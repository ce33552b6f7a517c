"""Building our own signed events."""

from __future__ import annotations

import re
from typing import Any

import pytest
from signedjson.key import get_verify_key
from signedjson.types import SigningKey

from homeserver.events.builder import build_event
from homeserver.events.event import Event
from homeserver.events.hashing import check_content_hash, compute_event_id
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import key_id, verify_event_signature

V = KNOWN_ROOM_VERSIONS


def _build(key: SigningKey, version: str = "12", **overrides: Any) -> Event:
    kwargs: dict[str, Any] = dict(
        server_name="example.org",
        signing_key=key,
        event_type="m.room.message",
        sender="@alice:example.org",
        content={"msgtype": "m.text", "body": "hello"},
        room_id="!room:example.org",
        prev_event_ids=["$prev"],
        auth_event_ids=["$create", "$power", "$member"],
        depth=7,
        origin_server_ts=1_700_000_000_000,
    )
    kwargs.update(overrides)
    return build_event(V[version], **kwargs)


@pytest.mark.parametrize("version", ["3", "4", "6", "9", "10", "11", "12"])
def test_message_event_is_complete_and_signed(spec_key: SigningKey, version: str) -> None:
    event = _build(spec_key, version)
    pdu = event.pdu
    assert set(pdu) == {
        "type",
        "sender",
        "content",
        "depth",
        "origin_server_ts",
        "room_id",
        "prev_events",
        "auth_events",
        "hashes",
        "signatures",
    }
    assert pdu["prev_events"] == ["$prev"]
    assert pdu["auth_events"] == ["$create", "$power", "$member"]
    assert check_content_hash(pdu)
    verify_event_signature(
        pdu, V[version], "example.org", {key_id(spec_key): get_verify_key(spec_key)}
    )
    assert event.event_id == compute_event_id(pdu, V[version])
    assert event.room_id == "!room:example.org"
    assert event.prev_event_ids == ["$prev"]
    alphabet = "A-Za-z0-9+/" if version == "3" else "A-Za-z0-9_-"
    assert re.fullmatch(rf"\$[{alphabet}]{{43}}", event.event_id)


def test_v1_event(spec_key: SigningKey) -> None:
    event = _build(spec_key, "1")
    assert re.fullmatch(r"\$[A-Za-z0-9]{18,}:example\.org", event.event_id)
    assert event.pdu["event_id"] == event.event_id
    assert event.pdu["prev_events"] == [["$prev", {}]]
    assert event.pdu["auth_events"] == [["$create", {}], ["$power", {}], ["$member", {}]]
    assert event.prev_event_ids == ["$prev"]
    assert event.auth_event_ids == ["$create", "$power", "$member"]
    assert check_content_hash(event.pdu)
    verify_event_signature(
        event.pdu, V["1"], "example.org", {"ed25519:1": get_verify_key(spec_key)}
    )
    assert _build(spec_key, "1").event_id != event.event_id


def test_no_origin_no_unsigned(spec_key: SigningKey) -> None:
    pdu = _build(spec_key, "10").pdu
    assert "origin" not in pdu
    assert "unsigned" not in pdu


def test_state_event(spec_key: SigningKey) -> None:
    event = _build(
        spec_key,
        event_type="m.room.member",
        state_key="@alice:example.org",
        content={"membership": "join"},
    )
    assert event.state_key == "@alice:example.org"
    assert event.is_state()
    assert event.membership == "join"


def test_v12_create_event_has_no_room_id(spec_key: SigningKey) -> None:
    event = _build(
        spec_key,
        event_type="m.room.create",
        state_key="",
        content={"room_version": "12"},
        room_id=None,
        prev_event_ids=[],
        auth_event_ids=[],
    )
    assert "room_id" not in event.pdu
    assert event.room_id == "!" + event.event_id[1:]
    with pytest.raises(ValueError):
        _build(spec_key, event_type="m.room.create", state_key="", room_id="!r:example.org")


def test_v11_create_event_needs_a_room_id(spec_key: SigningKey) -> None:
    with pytest.raises(ValueError):
        _build(spec_key, "11", event_type="m.room.create", state_key="", room_id=None)
    event = _build(spec_key, "11", event_type="m.room.create", state_key="", content={})
    assert event.room_id == "!room:example.org"


def test_room_id_required(spec_key: SigningKey) -> None:
    with pytest.raises(ValueError):
        _build(spec_key, room_id=None)


def test_redacts_placement(spec_key: SigningKey) -> None:
    old = _build(spec_key, "10", event_type="m.room.redaction", content={}, redacts="$target")
    assert old.pdu["redacts"] == "$target"
    assert "redacts" not in old.pdu["content"]
    assert old.redacts == "$target"
    new = _build(
        spec_key, "11", event_type="m.room.redaction", content={"reason": "r"}, redacts="$target"
    )
    assert new.pdu["content"] == {"reason": "r", "redacts": "$target"}
    assert "redacts" not in new.pdu
    assert new.redacts == "$target"
    with pytest.raises(ValueError):
        _build(spec_key, redacts="$target")


def test_content_not_aliased(spec_key: SigningKey) -> None:
    content = {"reason": "r"}
    event = _build(spec_key, "11", event_type="m.room.redaction", content=content, redacts="$t")
    assert content == {"reason": "r"}
    content["reason"] = "changed"
    assert event.pdu["content"]["reason"] == "r"
