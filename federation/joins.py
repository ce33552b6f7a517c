"""Joining rooms across servers: make_join/send_join, as the resident and as the joiner.

Resident: we host the room; another server asks for a join template (`make_join`), signs it
and hands it back (`send_join`); we accept it into the room, countersign it, answer with the
room's state and auth chain, and pass it on to the other servers in the room.

Joiner: a local user joins a room we do not have; we ask a resident server for a template,
sign it, send it, check everything we get back, and store the room's state as outliers with
our join as the first event of our timeline.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from federation.client import FederationError, federation_path
from federation.pdus import PduError, check_signatures_and_hash, parse_pdu
from homeserver.errors import Codes, MatrixError, forbidden, not_found
from homeserver.events.event import Event
from homeserver.events.hashing import add_content_hash
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, EventFormat, get_room_version
from homeserver.events.signing import sign_event
from homeserver.identifiers import server_of
from homeserver.rooms.auth_rules import auth_types_for_event, check_auth_rules
from homeserver.rooms.spaces import restricted_join_content
from homeserver.sync.sync import INVITE_STATE_TYPES

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)


def servers_in_room(memberships: dict[str, str]) -> set[str]:
    return {server_of(user) for user, membership in memberships.items() if membership == "join"}


class JoinHandler:
    def __init__(self, hs: HomeServer) -> None:
        self.hs = hs
        self.server_name = hs.server_name

    # -- resident side ----------------------------------------------------------------------

    async def make_membership(
        self,
        origin: str,
        room_id: str,
        user_id: str,
        membership: str,
        supported_versions: list[str] | None = None,
    ) -> dict[str, Any]:
        """A template member event (join, leave or knock) for another server's user."""
        if server_of(user_id) != origin:
            raise forbidden("The user must belong to the requesting server")
        snapshot = await self.hs.storage.state.get_snapshot(room_id)
        if snapshot is None or self.server_name not in servers_in_room(snapshot.memberships):
            raise not_found("This server is not in that room")
        room_version = KNOWN_ROOM_VERSIONS[snapshot.room_version]
        if supported_versions is not None and room_version.identifier not in (
            supported_versions or ["1"]
        ):
            raise MatrixError(
                400,
                Codes.INCOMPATIBLE_ROOM_VERSION,
                f"Your server does not support room version {room_version.identifier}",
                extra={"room_version": room_version.identifier},
            )
        if room_version.event_format is EventFormat.V1:
            raise MatrixError(400, Codes.UNSUPPORTED_ROOM_VERSION,
                              "Membership changes in v1/v2 rooms through this server are not "
                              "supported")
        content = {"membership": membership}
        if membership == "join" and snapshot.membership_of(user_id) not in ("invite", "join"):
            # A restricted room admits members of the rooms it allows, vouched for by one of
            # our users (whose server, we, countersign the join in send_join).
            content.update(await restricted_join_content(
                self.hs.storage, self.server_name, snapshot, user_id
            ))
        auth_keys = auth_types_for_event(room_version, "m.room.member", user_id, user_id, content)
        auth_ids = [
            snapshot.state[key] for key in [("m.room.create", ""), *auth_keys]
            if key in snapshot.state
            and not (key == ("m.room.create", "") and room_version.room_id_from_create_event)
        ]
        template = {
            "type": "m.room.member",
            "room_id": room_id,
            "sender": user_id,
            "state_key": user_id,
            "content": content,
            "origin": self.server_name,
            "origin_server_ts": self.hs.clock.time_msec(),
            "depth": snapshot.max_depth + 1,
            "prev_events": snapshot.forward_extremities[-10:],
            "auth_events": list(dict.fromkeys(auth_ids)),
        }
        # Refuse now rather than after the other server did its work (invite-only, banned).
        await self._check_allowed(template, room_version, snapshot.state)
        return {"room_version": room_version.identifier, "event": template}

    async def _check_allowed(self, template: dict[str, Any], room_version: Any,
                             state: dict) -> None:
        probe = Event({**template, "hashes": {}, "signatures": {}}, room_version,
                      event_id="$probe")
        keys = [("m.room.create", ""), *auth_types_for_event(
            room_version, probe.type, probe.sender, probe.state_key, probe.content)]
        ids = {key: state[key] for key in keys if key in state}
        events = await self.hs.storage.events.get_events(ids.values())
        auth_state = {key: events[eid] for key, eid in ids.items() if eid in events}
        check_auth_rules(probe, auth_state, is_signed_by=lambda _e, _s: True)

    async def send_join(
        self, origin: str, room_id: str, event_id: str, pdu: Any
    ) -> dict[str, Any]:
        stored = await self.accept_membership(origin, room_id, event_id, pdu, "join")
        state_group = stored.state_group_before
        state = await self.hs.storage.state.get_state_group(state_group) if state_group else {}
        state_events = await self.hs.storage.events.get_events(state.values())
        chain = await self.hs.remote_events.load_auth_chain(
            [*state.values(), *stored.auth_event_ids]
        )
        after = await self.hs.storage.state.get_snapshot(room_id)
        return {
            "origin": self.server_name,
            "state": [e.pdu for e in state_events.values()],
            "auth_chain": [e.pdu for e in chain.values() if e.event_id not in state_events],
            "event": stored.pdu,
            "members_omitted": False,
            "servers_in_room": sorted(servers_in_room(after.memberships if after else {})),
        }

    async def send_leave(self, origin: str, room_id: str, event_id: str, pdu: Any) -> dict:
        await self.accept_membership(origin, room_id, event_id, pdu, "leave")
        return {}

    async def send_knock(self, origin: str, room_id: str, event_id: str, pdu: Any) -> dict:
        stored = await self.accept_membership(origin, room_id, event_id, pdu, "knock")
        snapshot = await self.hs.storage.state.get_snapshot(room_id)
        state = snapshot.state if snapshot else {}
        keys = [("m.room.create", ""), *((t, "") for t in INVITE_STATE_TYPES)]
        ids = [state[k] for k in dict.fromkeys(keys) if k in state]
        events = await self.hs.storage.events.get_events(ids)
        del stored
        return {"knock_room_state": [events[i].pdu for i in ids if i in events]}

    async def accept_membership(
        self, origin: str, room_id: str, event_id: str, pdu: Any, membership: str
    ) -> Event:
        """A member event another server made from our template: checked, countersigned,
        accepted into the room and passed on to the other servers in it."""
        snapshot = await self.hs.storage.state.get_snapshot(room_id)
        if snapshot is None:
            raise not_found("This server is not in that room")
        room_version = KNOWN_ROOM_VERSIONS[snapshot.room_version]
        try:
            event = parse_pdu(pdu, room_version)
        except PduError as e:
            raise MatrixError(400, Codes.BAD_JSON, str(e)) from None
        if (
            event.event_id != event_id
            or event.room_id != room_id
            or event.type != "m.room.member"
            or event.membership != membership
            or event.state_key != event.sender
            or server_of(event.sender) != origin
        ):
            raise MatrixError(400, Codes.BAD_JSON, f"Not a {membership} event of the sending "
                              "server for this room and event ID")
        # Countersigned first: a restricted join must carry the authorising server's (our)
        # signature, which the checks below require; for other events it is harmless.
        sign_event(event.pdu, room_version, self.server_name, self.hs.signing_key)
        try:
            event = await check_signatures_and_hash(self.hs.keyring, event)
        except PduError as e:
            raise forbidden(str(e)) from None
        stored = await self.hs.remote_events.receive(event)
        if stored.rejected_reason is not None:
            raise forbidden(f"Refused: {stored.rejected_reason}")
        after = await self.hs.storage.state.get_snapshot(room_id)
        destinations = servers_in_room(after.memberships if after else {}) - {origin}
        await self.hs.federation_sender.send_pdu(stored.pdu, stored.event_id, destinations)
        return stored

    # -- joining side -----------------------------------------------------------------------

    async def join_remote_room(
        self, user_id: str, room_id: str, servers: Iterable[str], content: dict[str, Any]
    ) -> Event:
        """Joins `room_id` through the first of `servers` that lets us in."""
        return await self._through_any(servers, "join", room_id,
                                       lambda s: self._join_via(s, user_id, room_id, content))

    async def leave_remote_room(
        self, user_id: str, room_id: str, servers: Iterable[str], content: dict[str, Any]
    ) -> Event:
        """Rejects an invite (or retracts a knock) to a room we are not in, through a server
        that is: the leave enters the room's graph there, and ours keeps it out of band."""
        return await self._through_any(
            servers, "leave", room_id,
            lambda s: self._out_of_band_via(s, "leave", user_id, room_id, content),
        )

    async def knock_remote_room(
        self, user_id: str, room_id: str, servers: Iterable[str], content: dict[str, Any]
    ) -> Event:
        return await self._through_any(
            servers, "knock", room_id,
            lambda s: self._out_of_band_via(s, "knock", user_id, room_id, content),
        )

    async def _through_any(
        self, servers: Iterable[str], membership: str, room_id: str,
        attempt: Callable[[str], Awaitable[Event]],
    ) -> Event:
        errors = []
        for server in dict.fromkeys(s for s in servers if s != self.server_name):
            try:
                return await attempt(server)
            except FederationError as e:
                logger.info("Could not %s %s via %s: %s", membership, room_id, server, e)
                errors.append(e)
                if e.code == 403:
                    raise MatrixError(
                        403, Codes.FORBIDDEN, f"{server} refused: {_remote_message(e)}"
                    ) from None
            except PduError as e:
                logger.info("Bad %s answer from %s for %s: %s", membership, server, room_id, e)
                errors.append(e)
        if not errors:
            raise not_found("No server to ask about the room")
        raise MatrixError(404, Codes.NOT_FOUND, f"Could not {membership} through any server")

    async def _handshake(
        self, server: str, membership: str, user_id: str, room_id: str, content: dict[str, Any]
    ) -> tuple[Event, Any]:
        """make_<membership> then send_<membership> (v2): our signed event and the answer."""
        client = self.hs.federation_client
        query = {"ver": list(KNOWN_ROOM_VERSIONS)} if membership in ("join", "knock") else None
        answer = await client.get_json(
            server,
            federation_path(f"/_matrix/federation/v1/make_{membership}/{{}}/{{}}", room_id,
                            user_id),
            query,
        )
        room_version = get_room_version(str(answer.get("room_version", "1")))
        if room_version is None:
            raise PduError(f"unsupported room version {answer.get('room_version')!r}")
        template = answer.get("event")
        _check_template(template, room_id, user_id, membership)
        pdu = self._complete_template(template, room_version, content, membership)
        event = Event(pdu, room_version)
        version = "v1" if membership == "knock" else "v2"
        answer = await client.put_json(
            server,
            federation_path(f"/_matrix/federation/{version}/send_{membership}/{{}}/{{}}",
                            room_id, event.event_id),
            pdu,
            timeout=120,
        )
        return event, answer

    async def _join_via(
        self, server: str, user_id: str, room_id: str, content: dict[str, Any]
    ) -> Event:
        event, answer = await self._handshake(server, "join", user_id, room_id, content)
        room_version = event.room_version
        if isinstance(answer.get("event"), dict):
            # The resident's countersigned copy (required for restricted joins).
            countersigned = parse_pdu(answer["event"], room_version)
            if countersigned.event_id == event.event_id:
                event = countersigned
        state = await self._checked_events(answer.get("state"), room_version, room_id)
        chain = await self._checked_events(answer.get("auth_chain"), room_version, room_id)
        await self.hs.remote_events.persist_outliers([*chain, *state])
        state_map = {e.state_tuple: e.event_id for e in state if e.state_key is not None}
        stored = await self.hs.remote_events.receive(event, state_before=state_map)
        if stored.rejected_reason is not None:
            raise MatrixError(403, Codes.FORBIDDEN, f"Join rejected: {stored.rejected_reason}")
        return stored

    async def _out_of_band_via(
        self, server: str, membership: str, user_id: str, room_id: str, content: dict[str, Any]
    ) -> Event:
        event, answer = await self._handshake(server, membership, user_id, room_id, content)
        room_state = answer.get("knock_room_state") if isinstance(answer, dict) else None
        await self.hs.remote_events.keep_out_of_band(
            event, room_state if isinstance(room_state, list) else None
        )
        return event

    def _complete_template(
        self,
        template: dict[str, Any],
        room_version: Any,
        content: dict[str, Any],
        membership: str = "join",
    ) -> dict[str, Any]:
        pdu = {
            k: copy.deepcopy(v)
            for k, v in template.items()
            if k not in ("signatures", "hashes", "unsigned", "event_id")
        }
        # Our profile fields and reason join the resident's content (which may carry
        # join_authorised_via_users_server for a restricted room).
        pdu["content"] = {**content, **pdu.get("content", {}), "membership": membership}
        pdu["origin"] = self.server_name
        pdu["origin_server_ts"] = self.hs.clock.time_msec()
        if room_version.event_format is EventFormat.V1:
            pdu["event_id"] = f"${_random_local()}:{self.server_name}"
        add_content_hash(pdu)
        sign_event(pdu, room_version, self.server_name, self.hs.signing_key)
        return pdu

    async def _checked_events(self, pdus: Any, room_version: Any, room_id: str) -> list[Event]:
        if not isinstance(pdus, list):
            raise PduError("send_join answer lacks a list of events")
        events = []
        for pdu in pdus:
            try:
                event = parse_pdu(pdu, room_version)
                if event.room_id != room_id:
                    raise PduError("event of another room")
                events.append(await check_signatures_and_hash(self.hs.keyring, event))
            except PduError as e:
                logger.info("Dropping an event from a send_join answer: %s", e)
        return events


def _check_template(template: Any, room_id: str, user_id: str, membership: str) -> None:
    if not isinstance(template, dict):
        raise PduError(f"make_{membership} answer has no event template")
    content = template.get("content")
    if (
        template.get("room_id") != room_id
        or template.get("type") != "m.room.member"
        or template.get("sender") != user_id
        or template.get("state_key") != user_id
        or not isinstance(content, dict)
        or content.get("membership") != membership
    ):
        raise PduError(f"make_{membership} template is not a {membership} of this user here")


def _remote_message(error: FederationError) -> str:
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return str(error)


def _random_local() -> str:
    import secrets

    return secrets.token_urlsafe(18)
