"""Invites across servers (`PUT /_matrix/federation/v2/invite`), both ways.

Out: our invite of another server's user must carry that server's signature, so it is sent
there before we persist it; a refusal fails the invite. In: we check and countersign an invite
of one of our users; when we are not in the room we keep it "out of band" with the stripped
state the inviting server sent, so the invitee sees it in /sync and can join through them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from federation.client import FederationError, federation_path
from federation.joins import servers_in_room
from federation.pdus import PduError, check_signatures_and_hash, parse_pdu
from homeserver.errors import Codes, MatrixError
from homeserver.events.event import Event
from homeserver.events.room_versions import get_room_version
from homeserver.events.signing import sign_event
from homeserver.identifiers import is_valid_user_id, server_of
from homeserver.sync.sync import INVITE_STATE_TYPES

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)


def _invalid(message: str) -> MatrixError:
    return MatrixError(400, Codes.INVALID_PARAM, message)


class InviteHandler:
    def __init__(self, hs: HomeServer) -> None:
        self.hs = hs
        self.server_name = hs.server_name

    # -- ours, out --------------------------------------------------------------------------

    async def countersign(self, event: Event) -> None:
        """Has the invitee's server sign our invite; raises if it refuses or cannot be asked."""
        destination = server_of(event.state_key or "")
        body = {
            "room_version": event.room_version.identifier,
            "event": event.pdu,
            "invite_room_state": await self._room_state_for_invite(event),
        }
        try:
            answer = await self.hs.federation_client.put_json(
                destination,
                federation_path("/_matrix/federation/v2/invite/{}/{}", event.room_id,
                                event.event_id),
                body,
                timeout=30,
            )
        except FederationError as e:
            status = e.code if e.code in (400, 403, 404) else 502
            raise MatrixError(status, e.errcode or Codes.FORBIDDEN,
                              f"{destination} refused the invite: {e}") from None
        signed = answer.get("event") if isinstance(answer, dict) else None
        try:
            returned = parse_pdu(signed, event.room_version)
            if returned.event_id != event.event_id:
                raise PduError("the returned invite is a different event")
            await check_signatures_and_hash(self.hs.keyring, returned)
        except PduError as e:
            raise MatrixError(502, Codes.UNKNOWN, f"{destination} answered badly: {e}") from None
        theirs = returned.pdu["signatures"].get(destination)
        if not theirs:
            raise MatrixError(502, Codes.UNKNOWN, f"{destination} did not sign the invite")
        event.pdu["signatures"][destination] = theirs

    async def _room_state_for_invite(self, event: Event) -> list[dict[str, Any]]:
        snapshot = await self.hs.storage.state.get_snapshot(event.room_id)
        if snapshot is None:
            return []
        keys = [("m.room.create", ""), *((t, "") for t in INVITE_STATE_TYPES),
                ("m.room.member", event.sender)]
        ids = [snapshot.state[k] for k in dict.fromkeys(keys) if k in snapshot.state]
        events = await self.hs.storage.events.get_events(ids)
        # Full PDUs, as the spec asks from v1.16; the invitee strips them for its clients.
        return [events[i].pdu for i in ids if i in events]

    # -- theirs, in ---------------------------------------------------------------------------

    async def on_invite(self, origin: str, room_id: str, event_id: str, body: Any) -> dict:
        if not isinstance(body, dict):
            raise _invalid("The body must be an object")
        room_version = get_room_version(str(body.get("room_version", "")))
        if room_version is None:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION,
                              "This server does not support that room version",
                              extra={"room_version": body.get("room_version")})
        try:
            event = parse_pdu(body.get("event"), room_version)
        except PduError as e:
            raise _invalid(str(e)) from None
        self._check_invite(origin, room_id, event_id, event)
        try:
            event = await check_signatures_and_hash(self.hs.keyring, event)
        except PduError as e:
            raise _invalid(str(e)) from None
        if not await self.hs.storage.accounts.user_exists(event.state_key or ""):
            raise MatrixError(404, Codes.NOT_FOUND, "No such user here")
        sign_event(event.pdu, room_version, self.server_name, self.hs.signing_key)
        snapshot = await self.hs.storage.state.get_snapshot(room_id)
        if snapshot is None or self.server_name not in servers_in_room(snapshot.memberships):
            room_state = body.get("invite_room_state")
            await self.hs.remote_events.keep_out_of_band(
                event, room_state if isinstance(room_state, list) else None
            )
        # Otherwise it reaches us again in a transaction, as part of the room we share.
        return {"event": event.pdu}

    def _check_invite(self, origin: str, room_id: str, event_id: str, event: Event) -> None:
        target = event.state_key
        if event.event_id != event_id or event.room_id != room_id:
            raise _invalid("The event does not match the room and event ID of the request")
        if event.type != "m.room.member" or event.membership != "invite":
            raise _invalid("Not an invite")
        if server_of(event.sender) != origin:
            raise _invalid("The sender is not a user of the requesting server")
        if not target or not is_valid_user_id(target) or server_of(target) != self.server_name:
            raise _invalid("The invited user is not a user of this server")
