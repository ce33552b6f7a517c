"""Server key documents (`/_matrix/key/v2/server`): ours, signed, and other servers', checked.

Plain functions over data; fetching and caching are the keyring's work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homeserver.events.signing import (
    SignatureError,
    SigningKey,
    VerifyKey,
    decode_verify_key_base64,
    encode_verify_key_base64,
    key_id,
    sign_json_object,
    verify_json_object,
)

# "Servers MUST use the lesser of this field and 7 days into the future".
MAX_KEY_VALIDITY_MS = 7 * 24 * 3600 * 1000


class KeyDocumentError(ValueError):
    """A server key document is malformed, for another server, or not signed by itself."""


@dataclass(frozen=True)
class ServerKey:
    """One verify key of a server, and until when it may verify signatures."""

    server_name: str
    key_id: str
    verify_key: VerifyKey
    # For a current key: the document's valid_until_ts. For an old key: its expired_ts.
    valid_until_ts: int
    # A current key also signs requests; an old key only verifies events made before it expired.
    is_current: bool


def own_key_document(
    server_name: str,
    signing_key: SigningKey,
    old_keys: Mapping[str, tuple[str, int]],
    valid_until_ts: int,
) -> dict[str, Any]:
    """What we publish: our current key, the old ones, signed with the current key."""
    document = {
        "server_name": server_name,
        "verify_keys": {key_id(signing_key): {"key": encode_verify_key_base64(signing_key)}},
        "old_verify_keys": {
            kid: {"key": public, "expired_ts": expired_ts}
            for kid, (public, expired_ts) in old_keys.items()
        },
        "valid_until_ts": valid_until_ts,
    }
    return sign_json_object(document, server_name, signing_key)


def parse_key_document(document: Any, server_name: str, now_ms: int) -> list[ServerKey]:
    """The keys in another server's self-signed document, after checking it.

    The document must name `server_name` and carry a valid signature from every one of its
    current keys (so a notary cannot add a key the server never signed for). The validity of a
    current key is capped at 7 days from now, as the spec requires.
    """
    if not isinstance(document, dict) or document.get("server_name") != server_name:
        raise KeyDocumentError(f"key document is not for {server_name}")
    valid_until = document.get("valid_until_ts")
    if not isinstance(valid_until, int) or isinstance(valid_until, bool):
        raise KeyDocumentError("key document lacks an integer valid_until_ts")
    valid_until = min(valid_until, now_ms + MAX_KEY_VALIDITY_MS)
    current = _decode_keys(document.get("verify_keys"), "verify_keys")
    if not current:
        raise KeyDocumentError(f"key document of {server_name} has no verify_keys")
    for verify_key in current.values():
        try:
            verify_json_object(document, server_name, verify_key)
        except SignatureError as e:
            raise KeyDocumentError(str(e)) from None
    keys = [
        ServerKey(server_name, kid, vk, valid_until, is_current=True) for kid, vk in current.items()
    ]
    old = document.get("old_verify_keys") or {}
    old_keys = _decode_keys(old, "old_verify_keys")
    for kid, verify_key in old_keys.items():
        expired_ts = old[kid].get("expired_ts")
        if isinstance(expired_ts, int) and not isinstance(expired_ts, bool):
            keys.append(ServerKey(server_name, kid, verify_key, expired_ts, is_current=False))
    return keys


def check_notary_signature(
    document: dict[str, Any], notary_name: str, notary_keys: Mapping[str, VerifyKey]
) -> None:
    """Raises KeyDocumentError unless a notary signed the document with a key we trust."""
    for verify_key in notary_keys.values():
        try:
            verify_json_object(document, notary_name, verify_key)
            return
        except SignatureError:
            continue
    raise KeyDocumentError(f"key document is not signed by notary {notary_name}")


def _decode_keys(keys: Any, field: str) -> dict[str, VerifyKey]:
    if keys is None:
        return {}
    if not isinstance(keys, dict):
        raise KeyDocumentError(f"{field} is not an object")
    decoded = {}
    for kid, entry in keys.items():
        if not kid.startswith("ed25519:"):
            continue  # algorithms we do not know cannot verify anything for us
        public = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(public, str):
            raise KeyDocumentError(f"{field}.{kid} has no key")
        try:
            decoded[kid] = decode_verify_key_base64(kid, public)
        except Exception:
            raise KeyDocumentError(f"{field}.{kid} is not a valid ed25519 key") from None
    return decoded
