"""Content hashes, reference hashes and event IDs."""

from __future__ import annotations

import base64
import re
from typing import Any

from signedjson.types import SigningKey

from homeserver.events.builder import build_event
from homeserver.events.event import Event
from homeserver.events.hashing import (
    add_content_hash,
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
)
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS

V = KNOWN_ROOM_VERSIONS


def _minimal_event() -> dict[str, Any]:
    # Appendices, "Event Signing": the minimally-sized event.
    return {
        "room_id": "!x:domain",
        "sender": "@a:domain",
        "origin": "domain",
        "origin_server_ts": 1000000,
        "signatures": {},
        "hashes": {},
        "type": "X",
        "content": {},
        "prev_events": [],
        "auth_events": [],
        "depth": 3,
        "unsigned": {"age_ts": 1000000},
    }


def _message_event() -> dict[str, Any]:
    # Appendices, "Event Signing": the event containing redactable content.
    return {
        "content": {"body": "Here is the message content"},
        "event_id": "$0:domain",
        "origin": "domain",
        "origin_server_ts": 1000000,
        "type": "m.room.message",
        "room_id": "!r:domain",
        "sender": "@u:domain",
        "signatures": {},
        "unsigned": {"age_ts": 1000000},
    }


def test_spec_content_hashes() -> None:
    minimal = _minimal_event()
    add_content_hash(minimal)
    assert minimal["hashes"] == {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"}
    message = _message_event()
    add_content_hash(message)
    assert message["hashes"] == {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"}


def test_content_hash_ignores_unsigned_signatures_hashes() -> None:
    event = _minimal_event()
    digest = compute_content_hash(event)
    event["unsigned"] = {"age": 1}
    event["signatures"] = {"other": {"ed25519:x": "y"}}
    event["hashes"] = {"sha256": "whatever"}
    assert compute_content_hash(event) == digest


def test_check_content_hash_detects_tampering() -> None:
    event = _message_event()
    add_content_hash(event)
    assert check_content_hash(event)
    # Changes outside the hash are fine.
    event["unsigned"]["age"] = 99
    event["signatures"]["someone"] = {"ed25519:1": "x"}
    assert check_content_hash(event)
    tampered = dict(event, content={"body": "Here is the message content!"})
    assert not check_content_hash(tampered)
    assert not check_content_hash(dict(event, origin_server_ts=1000001))
    # A redacted copy no longer matches its content hash.
    assert not check_content_hash(prune_event_dict(event, V["1"]))


def test_check_content_hash_malformed() -> None:
    event = _message_event()
    assert not check_content_hash(event)  # no hashes at all
    for hashes in ({}, {"sha256": 5}, {"sha256": "!!not base64!!"}, "sha256", None):
        assert not check_content_hash(dict(event, hashes=hashes))


def test_v1_event_id_is_the_given_one() -> None:
    assert compute_event_id(_message_event(), V["1"]) == "$0:domain"
    assert compute_event_id(_message_event(), V["2"]) == "$0:domain"


def _hash_format_event(ts: int) -> dict[str, Any]:
    event = _minimal_event()
    del event["origin"]
    event["origin_server_ts"] = ts
    add_content_hash(event)
    return event


def test_v3_vs_v4_event_id_alphabets() -> None:
    # Find an event whose hash, in standard base64, uses "+" or "/": the case where v3 and v4 IDs
    # differ. Deterministic: the first few timestamps are enough.
    for ts in range(1000):
        event = _hash_format_event(ts)
        v3_id = compute_event_id(event, V["3"])
        if "+" in v3_id or "/" in v3_id:
            break
    else:
        raise AssertionError("no hash with + or / found")
    v4_id = compute_event_id(event, V["4"])
    reference_hash = compute_reference_hash(event, V["4"])
    assert v3_id == "$" + base64.b64encode(reference_hash).decode().rstrip("=")
    assert v4_id == "$" + base64.urlsafe_b64encode(reference_hash).decode().rstrip("=")
    assert v4_id == v3_id.replace("+", "-").replace("/", "_")
    assert len(v3_id) == len(v4_id) == 44
    assert re.fullmatch(r"\$[A-Za-z0-9_-]{43}", v4_id)
    for version in ("5", "6", "9", "10", "11", "12"):
        assert compute_event_id(event, V[version]) == v4_id


def test_event_id_survives_redaction_and_transit() -> None:
    event = _hash_format_event(1)
    event["content"] = {"body": "redactable"}
    event["type"] = "m.room.message"
    add_content_hash(event)
    event_id = compute_event_id(event, V["10"])
    assert compute_event_id(prune_event_dict(event, V["10"]), V["10"]) == event_id
    in_transit = dict(event, unsigned={"age": 5}, signatures={"domain": {"ed25519:1": "sig"}})
    assert compute_event_id(in_transit, V["10"]) == event_id
    # ...but the content hash is part of it, so changing content changes the ID.
    changed = dict(event, content={"body": "other"})
    add_content_hash(changed)
    assert compute_event_id(changed, V["10"]) != event_id


def test_event_id_depends_on_redaction_rules() -> None:
    # `origin` is protected up to v10 and not from v11, so it affects only the older IDs.
    event = _hash_format_event(1)
    with_origin = dict(event, origin="domain")
    assert compute_event_id(with_origin, V["10"]) != compute_event_id(event, V["10"])
    assert compute_event_id(with_origin, V["11"]) == compute_event_id(event, V["11"])


def test_v12_create_event_room_id(spec_key: SigningKey) -> None:
    create = build_event(
        V["12"],
        server_name="domain",
        signing_key=spec_key,
        event_type="m.room.create",
        sender="@a:domain",
        content={"room_version": "12"},
        room_id=None,
        prev_event_ids=[],
        auth_event_ids=[],
        depth=1,
        origin_server_ts=1000000,
        state_key="",
    )
    assert "room_id" not in create.pdu
    assert create.event_id == compute_event_id(create.pdu, V["12"])
    assert create.room_id == "!" + create.event_id[1:]
    assert re.fullmatch(r"![A-Za-z0-9_-]{43}", create.room_id)
    # Rebuilding from the stored PDU gives the same room.
    assert Event(dict(create.pdu), V["12"]).room_id == create.room_id
