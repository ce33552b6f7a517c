"""Content hashes, reference hashes and hash-derived event IDs (server-server API, "Signing
Events" and the room versions' "Event IDs").

The content hash covers the whole event, so tampering with redactable keys is detectable; the
reference hash covers only the redacted event, so an event keeps its ID when it is redacted.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from unpaddedbase64 import decode_base64, encode_base64

from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import EventFormat, RoomVersion

# Keys excluded from the content hash: unsigned and signatures change in transit, and the hash
# cannot cover itself.
_NOT_IN_CONTENT_HASH = frozenset({"unsigned", "signatures", "hashes"})


def compute_content_hash(pdu: dict[str, Any]) -> bytes:
    """SHA-256 of the canonical JSON of the full event without unsigned/signatures/hashes."""
    hashed = {key: value for key, value in pdu.items() if key not in _NOT_IN_CONTENT_HASH}
    return hashlib.sha256(encode_canonical_json(hashed)).digest()


def add_content_hash(pdu: dict[str, Any]) -> None:
    """Sets pdu["hashes"] to the event's content hash (must precede signing: it is signed)."""
    pdu["hashes"] = {"sha256": encode_base64(compute_content_hash(pdu))}


def check_content_hash(pdu: dict[str, Any]) -> bool:
    """True if the event's `hashes.sha256` matches its content.

    False means the event was altered, or we were sent a redacted copy: the spec says to use the
    redacted form of the event in that case, which is the caller's decision.
    """
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict):
        return False
    claimed = hashes.get("sha256")
    if not isinstance(claimed, str):
        return False
    try:
        claimed_bytes = decode_base64(claimed)
    except ValueError:
        # binascii.Error is a ValueError: not base64 at all.
        return False
    return hmac.compare_digest(claimed_bytes, compute_content_hash(pdu))


def redacted_signing_bytes(pdu: dict[str, Any], room_version: RoomVersion) -> bytes:
    """Canonical JSON of the redacted event without signatures or unsigned.

    This is both what the origin signs and what the reference hash is taken over.
    """
    pruned = prune_event_dict(pdu, room_version)
    pruned.pop("signatures", None)
    # prune_event_dict already drops unsigned (no version protects it).
    return encode_canonical_json(pruned)


def compute_reference_hash(pdu: dict[str, Any], room_version: RoomVersion) -> bytes:
    """SHA-256 over the redacted event without signatures/unsigned ("reference hash")."""
    return hashlib.sha256(redacted_signing_bytes(pdu, room_version)).digest()


def event_id_from_reference_hash(reference_hash: bytes, room_version: RoomVersion) -> str:
    """The event ID a hash-format room version derives from a reference hash."""
    if room_version.event_format is EventFormat.V2:
        # Room version 3: standard alphabet, which can contain "/" (awkward in URLs; hence v4).
        return "$" + encode_base64(reference_hash)
    if room_version.event_format is EventFormat.V3:
        return "$" + encode_base64(reference_hash, urlsafe=True)
    raise ValueError(f"room version {room_version.identifier} does not use hash event IDs")


def compute_event_id(pdu: dict[str, Any], room_version: RoomVersion) -> str:
    """The event's ID: chosen by the origin in v1-v2, the reference hash from v3.

    For v3+ the `pdu` must be the federation form, which has no `event_id` key: redaction keeps
    `event_id`, so a stray one would change the hash.
    """
    if room_version.event_format is EventFormat.V1:
        return pdu["event_id"]
    return event_id_from_reference_hash(compute_reference_hash(pdu, room_version), room_version)
