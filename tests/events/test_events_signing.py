"""Signing keys, JSON signatures and event signatures (spec test vectors included)."""

from __future__ import annotations

import copy
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from signedjson.key import get_verify_key
from signedjson.types import SigningKey
from unpaddedbase64 import decode_base64, encode_base64

from homeserver.events.hashing import add_content_hash, check_content_hash
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import (
    SignatureError,
    decode_verify_key_base64,
    encode_verify_key_base64,
    generate_signing_key,
    key_id,
    read_signing_key,
    sign_event,
    sign_json_object,
    verify_event_signature,
    verify_json_object,
    write_signing_key,
)

V = KNOWN_ROOM_VERSIONS
SPEC_SEED_BASE64 = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"


# ------------------------------------------------------------------- spec test vectors


def test_spec_json_signing_empty_object(spec_key: SigningKey) -> None:
    signed = sign_json_object({}, "domain", spec_key)
    assert signed == {
        "signatures": {
            "domain": {
                "ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
            }
        }
    }


def test_spec_json_signing_with_data(spec_key: SigningKey) -> None:
    signed = sign_json_object({"one": 1, "two": "Two"}, "domain", spec_key)
    assert signed == {
        "one": 1,
        "signatures": {
            "domain": {
                "ed25519:1": "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
            }
        },
        "two": "Two",
    }


def _spec_minimal_event() -> dict[str, Any]:
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


def _spec_message_event() -> dict[str, Any]:
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


def _hash_and_sign(event: dict[str, Any], key: SigningKey, version: str = "1") -> dict[str, Any]:
    add_content_hash(event)
    sign_event(event, V[version], "domain", key)
    return event


# The vectors' events carry `origin`, which is protected by redaction in v1-v10 only; they sign
# identically in every one of those versions.
@pytest.mark.parametrize("version", ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"])
def test_spec_event_signing_minimal(spec_key: SigningKey, version: str) -> None:
    signed = _hash_and_sign(_spec_minimal_event(), spec_key, version)
    assert signed == {
        "auth_events": [],
        "content": {},
        "depth": 3,
        "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
        "origin": "domain",
        "origin_server_ts": 1000000,
        "prev_events": [],
        "room_id": "!x:domain",
        "sender": "@a:domain",
        "signatures": {
            "domain": {
                "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
            }
        },
        "type": "X",
        "unsigned": {"age_ts": 1000000},
    }


@pytest.mark.parametrize("version", ["1", "6", "10"])
def test_spec_event_signing_redactable(spec_key: SigningKey, version: str) -> None:
    signed = _hash_and_sign(_spec_message_event(), spec_key, version)
    assert signed == {
        "content": {"body": "Here is the message content"},
        "event_id": "$0:domain",
        "hashes": {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},
        "origin": "domain",
        "origin_server_ts": 1000000,
        "type": "m.room.message",
        "room_id": "!r:domain",
        "sender": "@u:domain",
        "signatures": {
            "domain": {
                "ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
            }
        },
        "unsigned": {"age_ts": 1000000},
    }


# ------------------------------------------------------------------ event verification


def _keys(key: SigningKey) -> dict[str, Any]:
    return {key_id(key): get_verify_key(key)}


@pytest.mark.parametrize("version", ["1", "6", "11", "12"])
def test_verify_event_signature(spec_key: SigningKey, version: str) -> None:
    event = _hash_and_sign(_spec_message_event(), spec_key, version)
    verify_event_signature(event, V[version], "domain", _keys(spec_key))
    # A redacted copy still verifies (the signature covers only the redacted form)...
    verify_event_signature(
        prune_event_dict(event, V[version]), V[version], "domain", _keys(spec_key)
    )
    # ...and so does the event with changed unsigned data.
    verify_event_signature(dict(event, unsigned={"age": 1}), V[version], "domain", _keys(spec_key))


def test_verify_event_signature_wrong_key(spec_key: SigningKey) -> None:
    event = _hash_and_sign(_spec_message_event(), spec_key)
    other = generate_signing_key("1")  # same key ID, different key
    with pytest.raises(SignatureError):
        verify_event_signature(event, V["1"], "domain", _keys(other))
    # No signature under any key we know.
    with pytest.raises(SignatureError):
        verify_event_signature(event, V["1"], "domain", _keys(generate_signing_key("2")))
    # No signature from that server at all.
    with pytest.raises(SignatureError):
        verify_event_signature(event, V["1"], "elsewhere", _keys(spec_key))


def test_verify_event_signature_tampered(spec_key: SigningKey) -> None:
    event = _hash_and_sign(_spec_message_event(), spec_key)
    keys = _keys(spec_key)
    # Protected keys are covered by the signature directly.
    for key, value in (("sender", "@evil:domain"), ("origin_server_ts", 1), ("room_id", "!o:d")):
        with pytest.raises(SignatureError):
            verify_event_signature(dict(event, **{key: value}), V["1"], "domain", keys)
    # Redactable content is covered through the content hash: changing it alone leaves the
    # signature valid but fails the hash check; fixing up the hash breaks the signature.
    tampered = copy.deepcopy(event)
    tampered["content"]["body"] = "Evil content"
    verify_event_signature(tampered, V["1"], "domain", keys)
    assert not check_content_hash(tampered)
    add_content_hash(tampered)
    assert check_content_hash(tampered)
    with pytest.raises(SignatureError):
        verify_event_signature(tampered, V["1"], "domain", keys)


def test_verify_event_signature_protected_content(spec_key: SigningKey) -> None:
    event = {
        "type": "m.room.member",
        "state_key": "@a:domain",
        "sender": "@a:domain",
        "room_id": "!r:domain",
        "content": {"membership": "join"},
        "prev_events": [],
        "auth_events": [],
        "depth": 2,
        "origin_server_ts": 5,
    }
    _hash_and_sign(event, spec_key, "12")
    tampered = copy.deepcopy(event)
    tampered["content"]["membership"] = "leave"
    with pytest.raises(SignatureError):
        verify_event_signature(tampered, V["12"], "domain", _keys(spec_key))


def test_verify_event_signature_all_known_signatures_must_be_valid(spec_key: SigningKey) -> None:
    second = generate_signing_key("2")
    event = _hash_and_sign(_spec_message_event(), spec_key)
    sign_event(event, V["1"], "domain", second)
    both = {**_keys(spec_key), **_keys(second)}
    verify_event_signature(event, V["1"], "domain", both)
    event["signatures"]["domain"]["ed25519:2"] = event["signatures"]["domain"]["ed25519:1"]
    with pytest.raises(SignatureError):
        verify_event_signature(event, V["1"], "domain", both)
    # Signatures under keys we do not know (or cannot use) are skipped.
    verify_event_signature(event, V["1"], "domain", _keys(spec_key))


@pytest.mark.parametrize(
    "signatures",
    [None, "x", {"domain": "x"}, {"domain": {"ed25519:1": 5}}, {"domain": {"ed25519:1": "@@"}}],
)
def test_verify_event_signature_malformed(spec_key: SigningKey, signatures: Any) -> None:
    event = _hash_and_sign(_spec_message_event(), spec_key)
    event["signatures"] = signatures
    with pytest.raises(SignatureError):
        verify_event_signature(event, V["1"], "domain", _keys(spec_key))


# ------------------------------------------------------------------- JSON verification


def test_verify_json_object(spec_key: SigningKey) -> None:
    obj = sign_json_object({"server_name": "domain", "unsigned": {"x": 1}}, "domain", spec_key)
    verify_key = get_verify_key(spec_key)
    verify_json_object(obj, "domain", verify_key)
    verify_json_object(dict(obj, unsigned={"y": 2}), "domain", verify_key)
    with pytest.raises(SignatureError):
        verify_json_object(dict(obj, server_name="evil"), "domain", verify_key)
    with pytest.raises(SignatureError):
        verify_json_object(obj, "domain", get_verify_key(generate_signing_key("1")))
    with pytest.raises(SignatureError):
        verify_json_object(obj, "other", verify_key)
    with pytest.raises(SignatureError):
        verify_json_object({"a": 1}, "domain", verify_key)


def test_sign_json_object_keeps_other_signatures(spec_key: SigningKey) -> None:
    obj = sign_json_object({"a": 1}, "domain", spec_key)
    sign_json_object(obj, "notary", generate_signing_key("n"))
    assert set(obj["signatures"]) == {"domain", "notary"}
    verify_json_object(obj, "domain", get_verify_key(spec_key))


# ----------------------------------------------------------------------------- keys


def test_generate_signing_key_default_version() -> None:
    key = generate_signing_key()
    assert re.fullmatch(r"a_[A-Za-z]{4}", key.version)
    assert key.alg == "ed25519"
    assert key_id(key) == f"ed25519:{key.version}"
    assert generate_signing_key("abc_1").version == "abc_1"


@pytest.mark.parametrize("version", ["", "a b", "a:b", "a\n"])
def test_generate_signing_key_rejects_bad_versions(version: str) -> None:
    with pytest.raises(ValueError):
        generate_signing_key(version)


def test_key_file_round_trip(tmp_path: Path, spec_key: SigningKey) -> None:
    path = tmp_path / "signing.key"
    write_signing_key(path, spec_key)
    # Synapse's format: "<alg> <version> <unpadded base64 seed>". The spec's seed string has
    # non-zero padding bits ("...XA1"); its canonical re-encoding ends "...XA0".
    seed = encode_base64(decode_base64(SPEC_SEED_BASE64))
    assert seed.endswith("XA0")
    assert path.read_text() == f"ed25519 1 {seed}\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = read_signing_key(path)
    assert key.encode() == spec_key.encode()
    assert key_id(key) == "ed25519:1"


def test_read_signing_key_tolerates_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    path.write_text(f"\ned25519 a_Abcd {SPEC_SEED_BASE64}\n\n")
    assert key_id(read_signing_key(path)) == "ed25519:a_Abcd"
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    with pytest.raises(ValueError):
        read_signing_key(empty)


def test_verify_key_encoding(spec_key: SigningKey) -> None:
    encoded = encode_verify_key_base64(spec_key)
    assert encoded == encode_verify_key_base64(get_verify_key(spec_key))
    assert len(encoded) == 43  # 32 bytes, unpadded
    decoded = decode_verify_key_base64("ed25519:1", encoded)
    assert key_id(decoded) == "ed25519:1"
    obj = sign_json_object({"a": 1}, "domain", spec_key)
    verify_json_object(obj, "domain", decoded)
