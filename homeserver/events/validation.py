"""Size limits on events (client-server API, "Size limits") and sanity checks on client input.

The limits are in bytes of UTF-8, not characters: a 255-character state key of emoji is ~1 KB.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import Codes, MatrixError, bad_json
from homeserver.events.canonical_json import encode_canonical_json

# The complete event in the federation format, signatures included, as canonical JSON.
MAX_PDU_SIZE = 65536

# sender, room_id and event_id: the appendices cap user, room and event IDs at 255 bytes;
# state_key and type: capped at 255 bytes directly by "Size limits".
MAX_ID_SIZE = 255
_LIMITED_KEYS = ("sender", "room_id", "state_key", "type", "event_id")


def _too_large(message: str) -> MatrixError:
    return MatrixError(413, Codes.TOO_LARGE, message)


def validate_event_size(pdu: dict[str, Any]) -> None:
    """Raises 413 M_TOO_LARGE if the PDU or one of its identifier keys is over its limit.

    Call this on the finished PDU (hashes and signatures included, no `unsigned`): the spec
    measures "the complete event ... including any signatures". A non-string in one of the
    limited keys is M_BAD_JSON, since its size cannot be measured meaningfully.
    """
    for key in _LIMITED_KEYS:
        value = pdu.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise bad_json(f"'{key}' must be a string")
        if _utf8_len(value) > MAX_ID_SIZE:
            raise _too_large(f"'{key}' is over {MAX_ID_SIZE} bytes")
    try:
        size = len(encode_canonical_json(pdu))
    except ValueError:
        # NaN/Infinity, or a lone surrogate (UnicodeEncodeError is a ValueError): such an event
        # cannot be hashed or signed either.
        raise bad_json("Event cannot be encoded as canonical JSON") from None
    if size > MAX_PDU_SIZE:
        raise _too_large(f"Event is over {MAX_PDU_SIZE} bytes")


def validate_client_event_fields(event_type: Any, state_key: Any) -> None:
    """Rejects event types and state keys from a client request that could never be sent.

    Runs before the event is built, so that the client gets a precise error instead of a generic
    one from validate_event_size or a storage failure.
    """
    if not isinstance(event_type, str) or not event_type:
        raise MatrixError(400, Codes.INVALID_PARAM, "Event type must be a non-empty string")
    if _utf8_len(event_type) > MAX_ID_SIZE:
        raise _too_large(f"Event type is over {MAX_ID_SIZE} bytes")
    if "\x00" in event_type:
        # NUL cannot be stored in a PostgreSQL text column, and no legitimate type contains it.
        raise MatrixError(400, Codes.INVALID_PARAM, "Event type must not contain NUL")
    if state_key is None:
        return
    if not isinstance(state_key, str):
        raise MatrixError(400, Codes.INVALID_PARAM, "State key must be a string")
    if _utf8_len(state_key) > MAX_ID_SIZE:
        raise _too_large(f"State key is over {MAX_ID_SIZE} bytes")
    if "\x00" in state_key:
        raise MatrixError(400, Codes.INVALID_PARAM, "State key must not contain NUL")


def _utf8_len(value: str) -> int:
    # ASCII is the common case and its byte length is its length; skip the encode.
    if value.isascii():
        return len(value)
    # surrogatepass: a lone surrogate must be measured, not crash the size check.
    return len(value.encode("utf-8", "surrogatepass"))
