"""Event size limits and client input checks."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.errors import Codes, MatrixError
from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.validation import (
    MAX_PDU_SIZE,
    validate_client_event_fields,
    validate_event_size,
)


def _pdu(**overrides: Any) -> dict[str, Any]:
    pdu: dict[str, Any] = {
        "type": "m.room.message",
        "sender": "@u:example.org",
        "room_id": "!r:example.org",
        "content": {"body": ""},
        "depth": 1,
        "origin_server_ts": 1,
        "prev_events": [],
        "auth_events": [],
        "hashes": {"sha256": "x" * 43},
        "signatures": {"example.org": {"ed25519:1": "s" * 86}},
    }
    pdu.update(overrides)
    return pdu


def _padded(size: int) -> dict[str, Any]:
    pdu = _pdu()
    pdu["content"]["body"] = "a" * (size - len(encode_canonical_json(pdu)))
    assert len(encode_canonical_json(pdu)) == size
    return pdu


def test_total_size_limit() -> None:
    validate_event_size(_pdu())
    validate_event_size(_padded(MAX_PDU_SIZE))
    with pytest.raises(MatrixError) as excinfo:
        validate_event_size(_padded(MAX_PDU_SIZE + 1))
    assert excinfo.value.http_status == 413
    assert excinfo.value.errcode == Codes.TOO_LARGE


def test_total_size_counts_bytes_not_characters() -> None:
    pdu = _pdu()
    pdu["content"]["body"] = "é" * 33_000  # 33,000 characters, 66,000 bytes
    with pytest.raises(MatrixError) as excinfo:
        validate_event_size(pdu)
    assert excinfo.value.errcode == Codes.TOO_LARGE


@pytest.mark.parametrize("key", ["sender", "room_id", "state_key", "type", "event_id"])
def test_key_limits(key: str) -> None:
    validate_event_size(_pdu(**{key: "x" * 255}))
    with pytest.raises(MatrixError) as excinfo:
        validate_event_size(_pdu(**{key: "x" * 256}))
    assert excinfo.value.http_status == 413
    assert excinfo.value.errcode == Codes.TOO_LARGE
    # Bytes, not characters: 128 two-byte characters are 256 bytes.
    with pytest.raises(MatrixError):
        validate_event_size(_pdu(**{key: "é" * 128}))


def test_key_must_be_string() -> None:
    with pytest.raises(MatrixError) as excinfo:
        validate_event_size(_pdu(state_key=5))
    assert excinfo.value.errcode == Codes.BAD_JSON


def test_unencodable_event() -> None:
    with pytest.raises(MatrixError) as excinfo:
        validate_event_size(_pdu(content={"body": "\ud800"}))
    assert excinfo.value.errcode == Codes.BAD_JSON


def test_client_event_fields_ok() -> None:
    validate_client_event_fields("m.room.message", None)
    validate_client_event_fields("m.room.topic", "")
    validate_client_event_fields("x" * 255, "y" * 255)


@pytest.mark.parametrize(
    ("event_type", "state_key", "errcode"),
    [
        ("", None, Codes.INVALID_PARAM),
        (None, None, Codes.INVALID_PARAM),
        ("m.x\x00", None, Codes.INVALID_PARAM),
        ("m.x", "\x00", Codes.INVALID_PARAM),
        ("m.x", 5, Codes.INVALID_PARAM),
        ("x" * 256, None, Codes.TOO_LARGE),
        ("m.x", "é" * 128, Codes.TOO_LARGE),
    ],
)
def test_client_event_fields_bad(event_type: Any, state_key: Any, errcode: str) -> None:
    with pytest.raises(MatrixError) as excinfo:
        validate_client_event_fields(event_type, state_key)
    assert excinfo.value.errcode == errcode
