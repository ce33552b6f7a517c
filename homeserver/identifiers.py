"""Matrix identifiers: user IDs, room aliases, server names, and fresh random IDs."""

from __future__ import annotations

import re
import secrets
import string

from homeserver.errors import Codes, MatrixError

_LOCALPART = re.compile(r"^[a-z0-9._=\-/+]+$")
_SERVER_NAME = re.compile(
    r"^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.\-]{1,255})(?::\d{1,5})?$"
)
MAX_ID_LENGTH = 255


def split_id(identifier: str, sigil: str) -> tuple[str, str]:
    """'@alice:example.org' -> ('alice', 'example.org'); raises ValueError when malformed."""
    if not identifier.startswith(sigil) or ":" not in identifier:
        raise ValueError(f"not a {sigil}-identifier: {identifier!r}")
    localpart, domain = identifier[1:].split(":", 1)
    if not domain or not is_valid_server_name(domain):
        raise ValueError(f"bad server name in {identifier!r}")
    return localpart, domain


def is_valid_server_name(name: str) -> bool:
    return bool(_SERVER_NAME.match(name))


def is_valid_user_id(user_id: str) -> bool:
    """Accepts historical user IDs (any printable ASCII localpart), as other servers send them."""
    if len(user_id.encode("utf-8")) > MAX_ID_LENGTH:
        return False
    try:
        localpart, _ = split_id(user_id, "@")
    except ValueError:
        return False
    return bool(localpart) and all(0x21 <= ord(c) <= 0x7E and c != ":" for c in localpart)


def check_user_id(user_id: object, what: str = "user_id") -> str:
    if not isinstance(user_id, str) or not is_valid_user_id(user_id):
        raise MatrixError(400, Codes.INVALID_PARAM, f"{what} is not a valid user ID")
    return user_id


def validate_new_localpart(localpart: str, server_name: str) -> None:
    """The rules for a localpart we allocate (registration), stricter than for existing IDs."""
    if not localpart or not _LOCALPART.match(localpart):
        raise MatrixError(
            400,
            Codes.INVALID_USERNAME,
            "User ID can only contain characters a-z, 0-9, or '=_-./+'",
        )
    if localpart.startswith("_"):
        raise MatrixError(400, Codes.INVALID_USERNAME, "User ID may not begin with '_'")
    if len(f"@{localpart}:{server_name}".encode()) > MAX_ID_LENGTH:
        raise MatrixError(400, Codes.INVALID_USERNAME, "User ID is too long")


def user_id_from_localpart(localpart: str, server_name: str) -> str:
    return f"@{localpart}:{server_name}"


def server_of(identifier: str) -> str:
    return identifier.split(":", 1)[1]


def host_of(server_name: str) -> str:
    """The server name without its port: `evil.com:8448` -> `evil.com`, `[::1]:80` -> `[::1]`."""
    if server_name.startswith("["):
        end = server_name.find("]")
        return server_name[: end + 1] if end != -1 else server_name
    host, _, _port = server_name.partition(":")
    return host


def random_string(length: int, alphabet: str = string.ascii_letters) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_device_id() -> str:
    return random_string(10, string.ascii_uppercase)


def is_valid_room_alias(alias: str) -> bool:
    if len(alias.encode("utf-8")) > MAX_ID_LENGTH:
        return False
    try:
        localpart, _ = split_id(alias, "#")
    except ValueError:
        return False
    return bool(localpart)
