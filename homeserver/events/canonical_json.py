"""Canonical JSON (appendices, "Canonical JSON") and the checks that keep event content inside it.

Three jobs, kept apart on purpose:

* `encode_canonical_json` turns a value into the exact bytes that are hashed and signed.
* `parse_json_object` turns an HTTP body into a dict. It is lenient about floats because many
  non-event endpoints (filters, account data, ...) legitimately carry them.
* `check_canonical_content` is the strict check applied to anything that will end up inside an
  event, where a float or an out-of-range integer would make the event unsignable/unhashable
  in a way other servers agree on.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

import canonicaljson

from homeserver.errors import Codes, MatrixError, bad_json
from homeserver.events.room_versions import RoomVersion

# Integers must survive a round trip through an IEEE double (appendices, "Canonical JSON").
MAX_SAFE_INTEGER = 2**53 - 1
MIN_SAFE_INTEGER = -(2**53) + 1

# How many containers (objects/arrays) may enclose a value. Legitimate content is shallow; the
# cap keeps later recursive code (encoders, clients) far away from Python's recursion limit.
MAX_NESTING_DEPTH = 100


def encode_canonical_json(obj: Any) -> bytes:
    """The canonical UTF-8 encoding: shortest form, keys sorted by code point."""
    return canonicaljson.encode_canonical_json(obj)


def check_canonical_content(obj: Any, room_version: RoomVersion | None = None) -> None:
    """Refuses (400 M_BAD_JSON) values that canonical JSON cannot represent.

    Floats (NaN and the infinities included) are always refused: no room version can sign them
    reproducibly. Integers outside the safe range are refused only when the room version enforces
    strict canonical JSON (v6+); `room_version=None` means strict, for callers that have no room.
    Strings that cannot be encoded as UTF-8 (lone surrogates from "\\ud800"-style escapes) and
    nesting deeper than MAX_NESTING_DEPTH are refused too.
    """
    strict = room_version is None or room_version.strict_canonicaljson
    # An explicit stack instead of recursion, so that the depth check, not Python's recursion
    # limit, is what stops hostile input. Each entry is (value, depth of its container).
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        # Dispatch on exact type first: str and dict dominate real content.
        if isinstance(value, str):
            _check_string(value)
        elif isinstance(value, dict):
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                _too_deep()
            for key, item in value.items():
                if isinstance(key, str):
                    _check_string(key)
                stack.append((item, depth))
        elif isinstance(value, list | tuple):
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                _too_deep()
            stack.extend((item, depth) for item in value)
        elif isinstance(value, bool) or value is None:
            # bool is a subclass of int: test it before the integer range check.
            continue
        elif isinstance(value, int):
            if strict and not MIN_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                raise bad_json(f"Integer {value} is out of the range allowed in canonical JSON")
        elif isinstance(value, float):
            raise bad_json("Bad JSON value: floats are not allowed in canonical JSON")
        else:
            raise bad_json(f"Bad JSON value of type {type(value).__name__}")


def _check_string(value: str) -> None:
    # ASCII strings are always encodable; only pay for the encode attempt on the rest.
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_json("Strings must be valid Unicode (no lone surrogates)") from None


def _too_deep() -> NoReturn:
    raise bad_json(f"JSON is nested more than {MAX_NESTING_DEPTH} levels deep")


def _reject_constant(name: str) -> NoReturn:
    # json.loads accepts NaN/Infinity/-Infinity as an extension to JSON. We answer M_BAD_JSON,
    # not M_NOT_JSON: the body *was* parsed, and what is wrong is a value Matrix does not allow,
    # the same class of error as a float or huge integer in event content (which the room
    # version rules say is M_BAD_JSON). It also means clients see one errcode for "your number
    # is not acceptable", however it was spelled.
    raise bad_json(f"Bad JSON value: {name} is not allowed")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parses a request body that must be a JSON object.

    Invalid UTF-8 or invalid JSON is 400 M_NOT_JSON; NaN/Infinity literals, absurd nesting and a
    top level that is not an object are 400 M_BAD_JSON. Duplicate keys are allowed, the last one
    wins (json.loads behaviour). Floats are allowed here; event content is checked separately
    with `check_canonical_content`.
    """
    try:
        # Decode explicitly: json.loads(bytes) would also guess UTF-16/UTF-32, but Matrix bodies
        # are UTF-8 only.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MatrixError(400, Codes.NOT_JSON, "Content not JSON: invalid UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError:
        raise MatrixError(400, Codes.NOT_JSON, "Content not JSON") from None
    except RecursionError:
        # The C scanner recurses per nesting level; thousands of "[" must not become a 500.
        raise bad_json("JSON is nested too deeply") from None
    except ValueError:
        # Integers with more digits than Python's int/str conversion limit (4300 by default).
        raise bad_json("Bad JSON value: number too large") from None
    if not isinstance(value, dict):
        raise bad_json("Content must be a JSON object")
    if _SURROGATE_ESCAPE.search(text):
        # "\ud800" escapes decode to lone surrogates, which no database or encoder accepts.
        # Only bodies that contain such an escape pay for the walk.
        _reject_lone_surrogates(value)
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_lone_surrogates(value: Any) -> None:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_string(key)
                pending.append(child)
        elif isinstance(item, list):
            pending.extend(item)
