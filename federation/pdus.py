"""Incoming PDUs: well-formed for their room version, signed by who must sign, hash checked.

Steps 1-3 of "Checks performed on receipt of a PDU": an invalid event or a bad signature drops
the event (PduError); a bad content hash replaces the event with its redacted form.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.keyring import Keyring
from homeserver.events.event import Event
from homeserver.events.hashing import check_content_hash
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import EventFormat, RoomVersion
from homeserver.events.signing import SignatureError
from homeserver.events.validation import validate_event_size
from homeserver.identifiers import is_valid_user_id, server_of

logger = logging.getLogger(__name__)


class PduError(ValueError):
    """The PDU is not a valid event, or not signed as it must be: it is dropped."""


def parse_pdu(pdu: Any, room_version: RoomVersion) -> Event:
    """An Event from a PDU's JSON, after checking the fields every event must have."""
    if not isinstance(pdu, dict):
        raise PduError("a PDU must be a JSON object")
    pdu = {k: v for k, v in pdu.items() if k != "unsigned"}
    _require(pdu, "type", str)
    _require(pdu, "sender", str)
    _require(pdu, "content", dict)
    _require(pdu, "origin_server_ts", int)
    _require(pdu, "depth", int)
    _require(pdu, "prev_events", list)
    _require(pdu, "auth_events", list)
    _require(pdu, "hashes", dict)
    _require(pdu, "signatures", dict)
    if "state_key" in pdu and not isinstance(pdu["state_key"], str):
        raise PduError("state_key must be a string")
    if not is_valid_user_id(pdu["sender"]):
        raise PduError("sender is not a valid user ID")
    if room_version.event_format is EventFormat.V1:
        _require(pdu, "event_id", str)
    ids_ok = all(isinstance(x, str) for x in pdu["prev_events"] + pdu["auth_events"])
    if room_version.event_format is EventFormat.V1:
        ids_ok = all(
            isinstance(x, list) and x and isinstance(x[0], str)
            for x in pdu["prev_events"] + pdu["auth_events"]
        )
    if not ids_ok:
        raise PduError("prev_events and auth_events must list event IDs")
    try:
        validate_event_size(pdu)
        return Event(pdu, room_version)
    except (ValueError, KeyError) as e:
        raise PduError(f"not a valid event: {e}") from None
    except Exception as e:  # MatrixError from the size checks
        raise PduError(f"not a valid event: {e}") from None


def _require(pdu: dict[str, Any], key: str, kind: type) -> None:
    value = pdu.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PduError(f"{key} is missing or not a {kind.__name__}")


def required_signers(event: Event) -> set[str]:
    """Servers whose signatures the event must carry ("Validating hashes and signatures")."""
    signers = {server_of(event.sender)}
    if event.room_version.event_format is EventFormat.V1:
        signers.add(event.event_id.split(":", 1)[1])
    authoriser = event.content.get("join_authorised_via_users_server")
    if (
        event.type == "m.room.member"
        and event.content.get("membership") == "join"
        and event.room_version.restricted_join_rule
        and isinstance(authoriser, str)
        and is_valid_user_id(authoriser)
    ):
        signers.add(server_of(authoriser))
    return signers


async def check_signatures_and_hash(keyring: Keyring, event: Event) -> Event:
    """Drops (PduError) an event not signed by every required server with a key valid when it
    was sent; redacts one whose content does not match its hash."""
    room_version = event.room_version
    # Keys' validity matters from room version 5 on; before, any key the server had will do.
    at_ts = event.origin_server_ts if room_version.enforce_key_validity else 0
    signed = prune_event_dict(event.pdu, room_version)
    for server_name in required_signers(event):
        try:
            # The redacted event, minus signatures, is exactly what each server signed.
            await keyring.verify_json(server_name, signed, at_ts)
        except SignatureError as e:
            raise PduError(f"bad signature from {server_name}: {e}") from None
    if check_content_hash(event.pdu):
        return event
    logger.info("Content hash mismatch on %s: using the redacted event", event.event_id)
    return Event(signed, room_version, event_id=event.event_id)

