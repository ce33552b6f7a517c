"""Builds new, hashed and signed events of our own (sans I/O: the caller supplies everything).

This runs for every event a local user sends, so it does the minimum: one dict, the content
hash, one signature over the redacted form. The Event constructor then derives the event ID.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from signedjson.types import SigningKey

from homeserver.events.event import Event
from homeserver.events.hashing import add_content_hash
from homeserver.events.room_versions import EventFormat, RoomVersion
from homeserver.events.signing import sign_event

_EVENT_ID_CHARS = string.ascii_letters + string.digits


def build_event(
    room_version: RoomVersion,
    *,
    server_name: str,
    signing_key: SigningKey,
    event_type: str,
    sender: str,
    content: dict[str, Any],
    room_id: str | None,
    prev_event_ids: list[str],
    auth_event_ids: list[str],
    depth: int,
    origin_server_ts: int,
    state_key: str | None = None,
    redacts: str | None = None,
) -> Event:
    """A complete PDU (hashes and our signature included), wrapped in an Event.

    `room_id` must be None exactly for a v12+ m.room.create event (its room ID is derived from
    its event ID). `content` is copied, not kept, so the caller may reuse its dict.
    """
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": dict(content),
        "depth": depth,
        "origin_server_ts": origin_server_ts,
        # The top-level `origin` key is deprecated and not protected from v11 on: omitted.
    }
    _set_room_id(pdu, room_version, event_type, room_id)
    if state_key is not None:
        pdu["state_key"] = state_key
    if redacts is not None:
        _set_redacts(pdu, room_version, event_type, redacts)
    if room_version.event_format is EventFormat.V1:
        pdu["event_id"] = _new_v1_event_id(server_name)
        # v1/v2 reference events as [event_id, hashes] pairs. We only ever build v1-format
        # events in rooms someone else created (we never create v1/v2 rooms), and nothing
        # verifies these hashes, so the hashes object is left empty instead of looking up the
        # referenced events; federation-received v1 events carry whatever their origin put.
        pdu["prev_events"] = [[event_id, {}] for event_id in prev_event_ids]
        pdu["auth_events"] = [[event_id, {}] for event_id in auth_event_ids]
    else:
        pdu["prev_events"] = list(prev_event_ids)
        pdu["auth_events"] = list(auth_event_ids)
    # Order matters: the content hash is covered by the signature.
    add_content_hash(pdu)
    sign_event(pdu, room_version, server_name, signing_key)
    return Event(pdu, room_version)


def _set_room_id(
    pdu: dict[str, Any], room_version: RoomVersion, event_type: str, room_id: str | None
) -> None:
    if room_version.room_id_from_create_event and event_type == "m.room.create":
        # v12: the create event has no room_id; the room ID is its (future) event ID.
        if room_id is not None:
            raise ValueError("a v12 m.room.create event must not have a room_id")
        return
    if room_id is None:
        raise ValueError("room_id is required")
    pdu["room_id"] = room_id


def _set_redacts(
    pdu: dict[str, Any], room_version: RoomVersion, event_type: str, redacts: str
) -> None:
    if event_type != "m.room.redaction":
        raise ValueError("only m.room.redaction events have `redacts`")
    if room_version.updated_redaction_rules:
        # v11 moved `redacts` from the top level into content (where redaction protects it);
        # the top-level copy for older clients is added when serving over the client API, not
        # stored in the PDU.
        pdu["content"]["redacts"] = redacts
    else:
        pdu["redacts"] = redacts


def _new_v1_event_id(server_name: str) -> str:
    # 18 characters from 62 give ~107 bits: collisions are not a concern.
    local = "".join(secrets.choice(_EVENT_ID_CHARS) for _ in range(18))
    return f"${local}:{server_name}"
