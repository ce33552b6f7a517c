"""Membership changes asked for by local users: join, leave, invite, kick, ban, unban, forget.

The room's auth rules decide what is allowed; this module only shapes the member event and
turns a few cases the rules would allow silently (a no-op join, unbanning someone not banned)
into what clients expect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from homeserver.errors import Codes, MatrixError, forbidden, not_found
from homeserver.events.event import Event
from homeserver.identifiers import server_of
from homeserver.rooms.event_creation import EventCreator, EventDraft
from homeserver.rooms.spaces import restricted_join_content
from storage.state import RoomSnapshot
from storage.store import Storage

# (user_id, room_id, candidate servers, member content) -> the join event, once accepted.
RemoteJoiner = Callable[[str, str, Iterable[str], dict[str, Any]], Awaitable[Event]]


class MembershipService:
    def __init__(self, server_name: str, storage: Storage, creator: EventCreator) -> None:
        self.server_name = server_name
        self.storage = storage
        self.creator = creator
        # Join, leave (reject an invite) or knock on rooms this server is not in, through
        # servers that are (set by server.py).
        self.remote_joiner: RemoteJoiner | None = None
        self.remote_leaver: RemoteJoiner | None = None
        self.remote_knocker: RemoteJoiner | None = None
        # Has another server sign our invite of its user (it may refuse), set by server.py.
        self.remote_inviter: Callable[[Event], Awaitable[None]] | None = None
        # Another server's alias -> (room ID, servers in the room), asked of that server.
        self.remote_alias_resolver: Callable[[str], Awaitable[tuple[str, list[str]]]] | None = (
            None
        )

    async def profile_content(self, user_id: str) -> dict[str, Any]:
        """displayname and avatar_url as member events carry them."""
        profile = await self.storage.accounts.get_profile(user_id)
        content: dict[str, Any] = {}
        if profile:
            if profile[0] is not None:
                content["displayname"] = profile[0]
            if profile[1] is not None:
                content["avatar_url"] = profile[1]
        return content

    async def resolve_room(self, room_id_or_alias: str) -> str:
        if room_id_or_alias.startswith("#"):
            found = await self.storage.rooms.get_alias(room_id_or_alias)
            if found is None:
                raise not_found("Room alias not found")
            return found[0]
        if not room_id_or_alias.startswith("!"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Not a room ID or alias")
        return room_id_or_alias

    async def resolve_room_and_servers(self, room_id_or_alias: str) -> tuple[str, list[str]]:
        """The room ID, and servers to join it through when it is another server's alias."""
        if (
            room_id_or_alias.startswith("#")
            and ":" in room_id_or_alias
            and server_of(room_id_or_alias) != self.server_name
            and self.remote_alias_resolver is not None
        ):
            return await self.remote_alias_resolver(room_id_or_alias)
        return await self.resolve_room(room_id_or_alias), []

    async def _current_membership(self, room_id: str, user_id: str) -> str | None:
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is None:
            raise not_found("Unknown room")
        return snapshot.membership_of(user_id)

    async def join(
        self,
        user_id: str,
        room_id: str,
        reason: str | None = None,
        servers: Iterable[str] = (),
    ) -> Event | None:
        """Joins a room; None when the user is already joined. A room this server is not in
        is joined through `servers` (the `via` of the request, the room ID's server)."""
        content = {"membership": "join", **await self.profile_content(user_id)}
        if reason:
            content["reason"] = reason
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is None or self._must_join_remotely(snapshot):
            if snapshot is not None:
                servers = [*servers, *await self._inviting_servers(snapshot, user_id)]
            return await self._join_remote(user_id, room_id, servers, content)
        membership = snapshot.membership_of(user_id)
        if membership == "join":
            return None
        if membership != "invite":
            # A restricted room admits members of the rooms it allows, vouched for by a member.
            snapshot = await self.storage.state.get_snapshot(room_id)
            assert snapshot is not None
            content.update(
                await restricted_join_content(self.storage, self.server_name, snapshot, user_id)
            )
        await self.storage.rooms.unforget(user_id, room_id)
        return await self._send(room_id, user_id, user_id, content)

    def _must_join_remotely(self, snapshot: RoomSnapshot) -> bool:
        """True when we hold only an invite to the room (no create event), or only other
        servers' users are joined: then a join must go through one of them."""
        if ("m.room.create", "") not in snapshot.state:
            return True
        servers = {
            server_of(u) for u, membership in snapshot.memberships.items() if membership == "join"
        }
        return bool(servers) and self.server_name not in servers

    async def _inviting_servers(self, snapshot: RoomSnapshot, user_id: str) -> list[str]:
        """The server of whoever invited the user: it is in the room."""
        invite_id = snapshot.state.get(("m.room.member", user_id))
        invite = await self.storage.events.get_event(invite_id) if invite_id else None
        if invite is None or invite.membership != "invite":
            return []
        return [server_of(invite.sender)]

    async def _join_remote(
        self, user_id: str, room_id: str, servers: Iterable[str], content: dict[str, Any]
    ) -> Event:
        event = await self._remotely(self.remote_joiner, user_id, room_id, servers, content)
        await self.storage.rooms.unforget(user_id, room_id)
        return event

    async def _remotely(
        self,
        handshake: RemoteJoiner | None,
        user_id: str,
        room_id: str,
        servers: Iterable[str],
        content: dict[str, Any],
    ) -> Event:
        candidates = list(servers)
        if ":" in room_id:
            candidates.append(room_id.split(":", 1)[1])  # room IDs before v12 name a server
        candidates = [s for s in dict.fromkeys(candidates) if s != self.server_name]
        if handshake is None or not candidates:
            raise not_found("Unknown room")
        return await handshake(user_id, room_id, candidates, content)

    async def check_guest_may_join(self, room_id: str) -> None:
        """Guests join only rooms whose m.room.guest_access is "can_join"."""
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is None:
            raise not_found("Unknown room")
        event_id = snapshot.state.get(("m.room.guest_access", ""))
        event = await self.storage.events.get_event(event_id) if event_id else None
        if event is None or event.content.get("guest_access") != "can_join":
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access is not allowed")

    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> Event:
        membership = await self._current_membership(room_id, user_id)
        if membership not in ("join", "invite", "knock"):
            raise forbidden("You are not in this room")
        content: dict[str, Any] = {"membership": "leave"}
        if reason:
            content["reason"] = reason
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is not None and ("m.room.create", "") not in snapshot.state:
            # An invite or knock to a room we are not in: rejected through the other server.
            servers = await self._inviting_servers(snapshot, user_id)
            return await self._remotely(self.remote_leaver, user_id, room_id, servers, content)
        return await self._send(room_id, user_id, user_id, content)

    async def knock(
        self, user_id: str, room_id: str, reason: str | None = None, servers: Iterable[str] = ()
    ) -> Event:
        """Asks to be let in; the auth rules refuse rooms whose join rule does not allow it."""
        content: dict[str, Any] = {"membership": "knock", **await self.profile_content(user_id)}
        if reason:
            content["reason"] = reason
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is None or self._must_join_remotely(snapshot):
            event = await self._remotely(self.remote_knocker, user_id, room_id, servers, content)
            await self.storage.rooms.unforget(user_id, room_id)
            return event
        event = await self._send(room_id, user_id, user_id, content)
        # A forgotten room comes back to /sync once the user knocks on it again.
        await self.storage.rooms.unforget(user_id, room_id)
        return event

    async def invite(
        self,
        sender: str,
        room_id: str,
        target: str,
        reason: str | None = None,
        is_direct: bool = False,
    ) -> Event:
        remote = server_of(target) != self.server_name
        if remote and self.remote_inviter is None:
            raise MatrixError(
                403, Codes.FORBIDDEN, f"Cannot invite {target}: federation is not enabled"
            )
        if not remote and not await self.storage.accounts.user_exists(target):
            raise not_found(f"User {target} does not exist")
        membership = await self._current_membership(room_id, target)
        if membership == "join":
            raise forbidden(f"{target} is already in the room")
        if membership == "ban":
            raise forbidden(f"{target} is banned from the room")
        content: dict[str, Any] = {"membership": "invite", **await self.profile_content(target)}
        if reason:
            content["reason"] = reason
        if is_direct:
            content["is_direct"] = True
        if remote:
            draft = EventDraft("m.room.member", sender, content, state_key=target)
            return await self.creator.send(room_id, draft, countersign=self.remote_inviter)
        return await self._send(room_id, sender, target, content)

    async def kick(self, sender: str, room_id: str, target: str, reason: str | None) -> Event:
        membership = await self._current_membership(room_id, target)
        if membership not in ("join", "invite", "knock"):
            raise forbidden(f"{target} is not in the room")
        content: dict[str, Any] = {"membership": "leave"}
        if reason:
            content["reason"] = reason
        return await self._send(room_id, sender, target, content)

    async def ban(self, sender: str, room_id: str, target: str, reason: str | None) -> Event:
        content: dict[str, Any] = {"membership": "ban"}
        if reason:
            content["reason"] = reason
        return await self._send(room_id, sender, target, content)

    async def unban(self, sender: str, room_id: str, target: str, reason: str | None) -> Event:
        if await self._current_membership(room_id, target) != "ban":
            raise forbidden(f"{target} is not banned")
        content: dict[str, Any] = {"membership": "leave"}
        if reason:
            content["reason"] = reason
        return await self._send(room_id, sender, target, content)

    async def forget(self, user_id: str, room_id: str) -> None:
        membership = await self._current_membership(room_id, user_id)
        if membership in ("join", "invite", "knock"):
            raise MatrixError(400, Codes.UNKNOWN, "The user has not left the room")
        await self.storage.rooms.forget(user_id, room_id)

    async def _send(self, room_id: str, sender: str, target: str, content: dict[str, Any]) -> Event:
        draft = EventDraft("m.room.member", sender, content, state_key=target)
        return await self.creator.send(room_id, draft)
