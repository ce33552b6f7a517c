"""Canonical JSON encoding, the canonical-content check and request body parsing."""

from __future__ import annotations

import math

import pytest

from homeserver.errors import Codes, MatrixError
from homeserver.events.canonical_json import (
    MAX_NESTING_DEPTH,
    check_canonical_content,
    encode_canonical_json,
    parse_json_object,
)
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS

V5 = KNOWN_ROOM_VERSIONS["5"]
V6 = KNOWN_ROOM_VERSIONS["6"]


# Appendices, "Canonical JSON" > "Examples" (input JSON text, expected canonical bytes).
SPEC_EXAMPLES = [
    ("{}", "{}"),
    ('{"one": 1, "two": "Two"}', '{"one":1,"two":"Two"}'),
    ('{"b": "2", "a": "1"}', '{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', '{"a":"1","b":"2"}'),
    (
        """{"auth": {"success": true, "mxid": "@john.doe:example.com", "profile": {
            "display_name": "John Doe", "three_pids": [
                {"medium": "email", "address": "john.doe@example.org"},
                {"medium": "msisdn", "address": "123456789"}]}}}""",
        '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
        '"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
        '{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ),
    ('{"a": "日本語"}', '{"a":"日本語"}'),
    ('{"本": 2, "日": 1}', '{"日":1,"本":2}'),
    ('{"a": "\\u65E5"}', '{"a":"日"}'),
    ('{"a": null}', '{"a":null}'),
    # The spec's last example also has "b": 1e10; we refuse exponent/float literals in events
    # (see check_canonical_content), so only the -0 half is checked here.
    ('{"a": -0}', '{"a":0}'),
]


@pytest.mark.parametrize(("text", "expected"), SPEC_EXAMPLES)
def test_spec_examples(text: str, expected: str) -> None:
    assert encode_canonical_json(parse_json_object(text.encode())) == expected.encode()


def _errcode(excinfo: pytest.ExceptionInfo[MatrixError]) -> str:
    return excinfo.value.errcode


@pytest.mark.parametrize("value", [1.5, 1.0, math.nan, math.inf, -math.inf, 1e10])
def test_floats_rejected(value: float) -> None:
    with pytest.raises(MatrixError) as excinfo:
        check_canonical_content({"body": "x", "nested": [{"n": value}]}, V6)
    assert excinfo.value.http_status == 400
    assert _errcode(excinfo) == Codes.BAD_JSON


def test_floats_rejected_even_in_lenient_versions() -> None:
    with pytest.raises(MatrixError) as excinfo:
        check_canonical_content({"n": 0.5}, V5)
    assert _errcode(excinfo) == Codes.BAD_JSON


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**64, -(2**100)])
def test_huge_ints_rejected_in_strict_versions(value: int) -> None:
    with pytest.raises(MatrixError) as excinfo:
        check_canonical_content({"a": {"b": [value]}}, V6)
    assert _errcode(excinfo) == Codes.BAD_JSON
    # No room version means strict.
    with pytest.raises(MatrixError):
        check_canonical_content({"a": value}, None)
    # v1-v5 must tolerate them (rooms v1 "Canonical JSON": servers MUST NOT strictly enforce).
    check_canonical_content({"a": {"b": [value]}}, V5)


def test_boundary_ints_and_other_values_accepted() -> None:
    check_canonical_content(
        {
            "max": 2**53 - 1,
            "min": -(2**53) + 1,
            "t": True,
            "f": False,
            "n": None,
            "s": "日本語",
            "l": [1, "2", {"3": []}],
        },
        V6,
    )


def test_nesting_limit() -> None:
    def nested(depth: int) -> object:
        value: object = "leaf"
        for _ in range(depth):
            value = [value]
        return value

    check_canonical_content(nested(MAX_NESTING_DEPTH))
    with pytest.raises(MatrixError) as excinfo:
        check_canonical_content(nested(MAX_NESTING_DEPTH + 1))
    assert _errcode(excinfo) == Codes.BAD_JSON
    # Far beyond the recursion limit: refused, not a RecursionError.
    with pytest.raises(MatrixError) as excinfo:
        check_canonical_content(nested(200_000))
    assert _errcode(excinfo) == Codes.BAD_JSON


def test_nesting_limit_counts_objects_too() -> None:
    value: object = 1
    for _ in range(MAX_NESTING_DEPTH + 1):
        value = {"k": value}
    with pytest.raises(MatrixError):
        check_canonical_content(value)


def test_lone_surrogate_rejected() -> None:
    # Request bodies are refused at parsing; content built any other way is refused again.
    with pytest.raises(MatrixError) as excinfo:
        parse_json_object(b'{"body": ["ok", {"k": "\\ud800"}]}')
    assert _errcode(excinfo) == Codes.BAD_JSON
    assert parse_json_object(b'{"body": "\\ud83d\\ude00"}') == {"body": "\U0001f600"}
    with pytest.raises(MatrixError) as excinfo:
        check_canonical_content({"body": "\ud800"}, V6)
    assert _errcode(excinfo) == Codes.BAD_JSON
    with pytest.raises(MatrixError):
        check_canonical_content({"\udfff": 1}, V6)


def test_non_json_types_rejected() -> None:
    with pytest.raises(MatrixError):
        check_canonical_content({"a": object()}, V6)


# ---------------------------------------------------------------------------- parsing


def test_parse_object() -> None:
    assert parse_json_object(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}


def test_parse_duplicate_keys_last_wins() -> None:
    assert parse_json_object(b'{"a": 1, "a": 2}') == {"a": 2}


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"{'a': 1}", b'{"a": 1} x', b"\xff\xfe{}", '{"a": 1}'.encode("utf-16")],
)
def test_parse_not_json(body: bytes) -> None:
    with pytest.raises(MatrixError) as excinfo:
        parse_json_object(body)
    assert excinfo.value.http_status == 400
    assert _errcode(excinfo) == Codes.NOT_JSON


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_parse_non_finite_constants(literal: bytes) -> None:
    with pytest.raises(MatrixError) as excinfo:
        parse_json_object(b'{"a": ' + literal + b"}")
    assert _errcode(excinfo) == Codes.BAD_JSON


@pytest.mark.parametrize("body", [b"[]", b"1", b'"s"', b"null", b"true"])
def test_parse_top_level_must_be_object(body: bytes) -> None:
    with pytest.raises(MatrixError) as excinfo:
        parse_json_object(body)
    assert _errcode(excinfo) == Codes.BAD_JSON
    assert excinfo.value.message == "Content must be a JSON object"


def test_parse_deep_nesting_is_an_error_not_a_crash() -> None:
    body = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(MatrixError) as excinfo:
        parse_json_object(body)
    assert _errcode(excinfo) == Codes.BAD_JSON


def test_parse_number_with_too_many_digits() -> None:
    with pytest.raises(MatrixError) as excinfo:
        parse_json_object(b'{"a": ' + b"9" * 5000 + b"}")
    assert _errcode(excinfo) == Codes.BAD_JSON
