"""Server signing keys, and signing/verifying JSON and events (appendices "Signing JSON",
server-server API "Signing Events").

Events are signed over their *redacted* form so that a redacted copy still verifies; plain JSON
objects (federation requests, key responses) are signed as they are, minus `signatures` and
`unsigned`.
"""

from __future__ import annotations

import os
import secrets
import string
from typing import Any

from nacl.exceptions import BadSignatureError
from signedjson.key import (
    NACL_ED25519,
    decode_verify_key_bytes,
    encode_signing_key_base64,
    get_verify_key,
    read_signing_keys,
)
from signedjson.key import generate_signing_key as _new_ed25519_key
from signedjson.types import SigningKey, VerifyKey
from unpaddedbase64 import decode_base64, encode_base64

from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.hashing import redacted_signing_bytes
from homeserver.events.room_versions import RoomVersion

__all__ = [
    "SignatureError",
    "SigningKey",
    "VerifyKey",
    "decode_verify_key_base64",
    "encode_verify_key_base64",
    "generate_signing_key",
    "get_verify_key",
    "key_id",
    "read_signing_key",
    "sign_event",
    "sign_json_object",
    "verify_event_signature",
    "verify_json_object",
    "write_signing_key",
]


class SignatureError(Exception):
    """A required signature is missing or does not verify."""


# ----------------------------------------------------------------------------------- keys

_KEY_VERSION_CHARS = frozenset(string.ascii_letters + string.digits + "_")


def generate_signing_key(version: str | None = None) -> SigningKey:
    """A new ed25519 key; the default version is "a_" plus four random letters."""
    if version is None:
        version = "a_" + "".join(secrets.choice(string.ascii_letters) for _ in range(4))
    # The server-server spec (key objects) restricts versions to [a-zA-Z0-9_]; anything else
    # would also break the whitespace-separated key file.
    if not version or not set(version) <= _KEY_VERSION_CHARS:
        raise ValueError(f"invalid signing key version {version!r}")
    return _new_ed25519_key(version)


def read_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    """Reads the first key from a Synapse-format key file ("ed25519 <version> <base64 seed>")."""
    with open(path, encoding="utf-8") as f:
        # signedjson's reader chokes on blank lines, which editors like to leave behind.
        lines = [line for line in f if line.strip()]
    keys = read_signing_keys(lines)
    if not keys:
        raise ValueError(f"no signing key in {os.fspath(path)}")
    return keys[0]


def write_signing_key(path: str | os.PathLike[str], key: SigningKey) -> None:
    """Writes `key` in Synapse's format, readable only by the owner (it is a private key)."""
    line = f"{key.alg} {key.version} {encode_signing_key_base64(key)}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(line)


def encode_verify_key_base64(key: SigningKey | VerifyKey) -> str:
    """The public half of `key` in unpadded base64, as published in /_matrix/key/v2/server."""
    verify_key = get_verify_key(key) if hasattr(key, "verify_key") else key
    return encode_base64(verify_key.encode())


def decode_verify_key_base64(key_id_: str, key_base64: str) -> VerifyKey:
    """A VerifyKey from a key ID ("ed25519:<version>") and its base64 published form."""
    return decode_verify_key_bytes(key_id_, decode_base64(key_base64))


def key_id(key: SigningKey | VerifyKey) -> str:
    return f"{key.alg}:{key.version}"


# ------------------------------------------------------------------------ JSON signatures


def _signed_bytes(obj: dict[str, Any]) -> bytes:
    # "Signing Details": the signature covers everything except signatures and unsigned.
    return encode_canonical_json(
        {key: value for key, value in obj.items() if key not in ("signatures", "unsigned")}
    )


def _add_signature(
    obj: dict[str, Any], server_name: str, signing_key: SigningKey, message: bytes
) -> None:
    signature = encode_base64(signing_key.sign(message).signature)
    signatures = obj.setdefault("signatures", {})
    signatures.setdefault(server_name, {})[key_id(signing_key)] = signature


def sign_json_object(
    obj: dict[str, Any], server_name: str, signing_key: SigningKey
) -> dict[str, Any]:
    """Adds `server_name`'s signature to obj["signatures"]; returns obj for convenience."""
    _add_signature(obj, server_name, signing_key, _signed_bytes(obj))
    return obj


def verify_json_object(obj: dict[str, Any], server_name: str, verify_key: VerifyKey) -> None:
    """Raises SignatureError unless obj carries a valid signature by `verify_key`."""
    signatures = _server_signatures(obj, server_name)
    signature = signatures.get(key_id(verify_key))
    if signature is None:
        raise SignatureError(f"No signature from {server_name} with key {key_id(verify_key)}")
    if not _signature_is_valid(verify_key, _signed_bytes(obj), signature):
        raise SignatureError(f"Invalid signature from {server_name} with {key_id(verify_key)}")


def _server_signatures(obj: dict[str, Any], server_name: str) -> dict[str, Any]:
    signatures = obj.get("signatures")
    server_signatures = signatures.get(server_name) if isinstance(signatures, dict) else None
    if not isinstance(server_signatures, dict):
        raise SignatureError(f"No signatures from {server_name}")
    return server_signatures


def _signature_is_valid(verify_key: VerifyKey, message: bytes, signature: Any) -> bool:
    if not isinstance(signature, str):
        return False
    try:
        verify_key.verify(message, decode_base64(signature))
    except (BadSignatureError, ValueError):
        # ValueError covers bad base64 and signatures of the wrong length.
        return False
    return True


# ----------------------------------------------------------------------- event signatures


def sign_event(
    pdu: dict[str, Any], room_version: RoomVersion, server_name: str, signing_key: SigningKey
) -> None:
    """Signs the redacted form of `pdu` and stores the signature in pdu["signatures"].

    The content hash must already be in pdu["hashes"]: the hash is what ties the signature to
    the unredacted content.
    """
    _add_signature(pdu, server_name, signing_key, redacted_signing_bytes(pdu, room_version))


def verify_event_signature(
    pdu: dict[str, Any],
    room_version: RoomVersion,
    server_name: str,
    verify_keys: dict[str, VerifyKey],
) -> None:
    """Raises SignatureError unless `server_name` validly signed the (redacted) event.

    `verify_keys` are the server's keys the caller knows and considers valid at the event's
    origin_server_ts (key ID -> key). Following "Validating hashes and signatures on received
    events": signatures under other key IDs or algorithms are skipped, at least one signature
    must be under a known key, and every signature under a known key must verify (a bad
    signature is not excused by a good one next to it). Which servers must have signed (the
    sender's; in v1-v2 also the event ID's domain) is the caller's decision: call once per server.
    """
    signatures = _server_signatures(pdu, server_name)
    known = [
        (verify_keys[kid], signature)
        for kid, signature in signatures.items()
        if kid in verify_keys and kid.startswith(NACL_ED25519 + ":")
    ]
    if not known:
        raise SignatureError(f"No signature from {server_name} under a known key")
    message = redacted_signing_bytes(pdu, room_version)
    for verify_key, signature in known:
        if not _signature_is_valid(verify_key, message, signature):
            raise SignatureError(f"Invalid signature from {server_name} with {key_id(verify_key)}")
