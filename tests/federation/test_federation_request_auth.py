"""The X-Matrix Authorization header: what we send, and what we accept from others."""

from __future__ import annotations

import pytest

from federation.request_auth import (
    AuthHeaderError,
    authorization_header,
    parse_authorization_header,
    request_json,
)
from homeserver.events.signing import (
    SignatureError,
    generate_signing_key,
    get_verify_key,
    verify_json_object,
)


def test_header_we_send_parses_and_its_signature_verifies() -> None:
    key = generate_signing_key("k1")
    content = {"pdus": [], "edus": [{"edu_type": "m.typing"}]}
    header = authorization_header(
        "PUT", "/_matrix/federation/v1/send/1?x=%20y", "a.example", "b.example", key, content
    )
    assert header.startswith('X-Matrix origin="a.example",destination="b.example",key=')
    auth = parse_authorization_header(header)
    assert (auth.origin, auth.destination, auth.key) == ("a.example", "b.example", "ed25519:k1")

    signed = request_json("PUT", "/_matrix/federation/v1/send/1?x=%20y", "a.example",
                          "b.example", content)
    signed["signatures"] = {"a.example": {auth.key: auth.sig}}
    verify_json_object(signed, "a.example", get_verify_key(key))
    # Any change to what was signed breaks it: the body, the target or the method.
    for field, value in (("content", {"pdus": []}), ("uri", "/other"), ("method", "POST")):
        with pytest.raises(SignatureError):
            verify_json_object({**signed, field: value}, "a.example", get_verify_key(key))


def test_parsing_follows_rfc9110_auth_params() -> None:
    auth = parse_authorization_header(
        'X-Matrix  ORIGIN=origin.example:8448 , Key="ed25519:a\\"b",\tsig = "c2ln",'
        'unknown="x",destination="dest.example"'
    )
    assert auth.origin == "origin.example:8448"  # colon in a bare value, for old senders
    assert auth.key == 'ed25519:a"b'  # backslash escape removed
    assert auth.sig == "c2ln"
    assert auth.destination == "dest.example"


def test_destination_is_optional_for_old_senders() -> None:
    auth = parse_authorization_header('X-Matrix origin=a.example,key="ed25519:1",sig="s"')
    assert auth.destination is None


@pytest.mark.parametrize(
    "header",
    [
        'Bearer origin="a",key="ed25519:1",sig="s"',
        'X-Matrix key="ed25519:1",sig="s"',
        'X-Matrix origin="a",sig="s"',
        'X-Matrix origin="a",key="ed25519:1"',
        'X-Matrix origin="a,key="ed25519:1",sig="s',
        "X-Matrix origin",
    ],
)
def test_unusable_headers_are_refused(header: str) -> None:
    with pytest.raises(AuthHeaderError):
        parse_authorization_header(header)
