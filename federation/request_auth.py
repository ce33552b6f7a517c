"""Request authentication between servers: the `X-Matrix` Authorization header.

Plain functions over data (server-server API, "Request Authentication"): the sender signs a JSON
object holding the method, the target (path and query), both server names and the parsed body,
and sends the signature in the header; the receiver rebuilds the same object from the request
it got and checks the signature with the origin's key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.events.signing import SigningKey, key_id, sign_json_object


class AuthHeaderError(ValueError):
    """The Authorization header is not a usable X-Matrix header."""


@dataclass(frozen=True)
class XMatrixAuth:
    origin: str
    destination: str | None  # optional for servers older than spec v1.3
    key: str
    sig: str


def request_json(
    method: str, uri: str, origin: str, destination: str, content: Any | None
) -> dict[str, Any]:
    """The object whose signature authenticates one request."""
    obj: dict[str, Any] = {
        "method": method,
        "uri": uri,
        "origin": origin,
        "destination": destination,
    }
    if content is not None:
        obj["content"] = content
    return obj


def authorization_header(
    method: str,
    uri: str,
    origin: str,
    destination: str,
    signing_key: SigningKey,
    content: Any | None = None,
) -> str:
    """The `Authorization` value for a request we send: lower-case names, no spaces, quoted."""
    signed = sign_json_object(request_json(method, uri, origin, destination, content), origin,
                              signing_key)
    signature = signed["signatures"][origin][key_id(signing_key)]
    return (
        f'X-Matrix origin="{origin}",destination="{destination}",'
        f'key="{key_id(signing_key)}",sig="{signature}"'
    )


def parse_authorization_header(header: str) -> XMatrixAuth:
    """Parses `X-Matrix origin=...,destination=...,key=...,sig=...` (RFC 9110 auth params).

    Names are case-insensitive, values may be quoted (with backslash escapes) or bare tokens,
    bare values may contain colons for old senders, and unknown parameters are ignored.
    """
    scheme, _, params_text = header.strip().partition(" ")
    if scheme.lower() != "x-matrix":
        raise AuthHeaderError("Authorization scheme is not X-Matrix")
    params = _parse_params(params_text)
    missing = [name for name in ("origin", "key", "sig") if not params.get(name)]
    if missing:
        raise AuthHeaderError(f"X-Matrix header lacks {', '.join(missing)}")
    return XMatrixAuth(
        origin=params["origin"],
        destination=params.get("destination"),
        key=params["key"],
        sig=params["sig"],
    )


def _parse_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    position = 0
    while position < len(text):
        position = _skip(text, position, " \t,")
        if position >= len(text):
            break
        equals = text.find("=", position)
        if equals < 0:
            raise AuthHeaderError("X-Matrix parameter without a value")
        name = text[position:equals].strip().lower()
        value, position = _read_value(text, equals + 1)
        params.setdefault(name, value)
    return params


def _skip(text: str, position: int, chars: str) -> int:
    while position < len(text) and text[position] in chars:
        position += 1
    return position


def _read_value(text: str, position: int) -> tuple[str, int]:
    position = _skip(text, position, " \t")
    if position < len(text) and text[position] == '"':
        return _read_quoted(text, position + 1)
    end = text.find(",", position)
    end = len(text) if end < 0 else end
    return text[position:end].strip(), end


def _read_quoted(text: str, position: int) -> tuple[str, int]:
    chars: list[str] = []
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            chars.append(text[position + 1])
            position += 2
        elif char == '"':
            return "".join(chars), position + 1
        else:
            chars.append(char)
            position += 1
    raise AuthHeaderError("unterminated quoted value in X-Matrix header")
