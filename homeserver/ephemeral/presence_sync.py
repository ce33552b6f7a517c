"""The presence part of /sync: whose presence a syncing user gets, and when.

A user sees the presence of everyone they share a joined room with, and their own. An initial
sync sends all of it; an incremental one sends what changed in the window, plus the presence of
people the user has just come to share a room with (they joined one of the user's rooms, or the
user joined theirs), whose presence the client has never been sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeserver.ephemeral.common import joined_rooms, rooms_joined_since
from homeserver.sync.filtering import EventFilter
from homeserver.sync.sources import SyncContext

if TYPE_CHECKING:
    from homeserver.ephemeral.presence import PresenceService

PRESENCE = "m.presence"


class PresenceSync:
    def __init__(self, service: PresenceService) -> None:
        self.service = service
        self.storage = service.storage

    async def may_have_news(self, user_id: str, since: int) -> bool:
        changed = self.service.log.changed_after(since)
        if changed is None:
            return True
        if user_id in changed:
            return True
        mine = await joined_rooms(self.storage, user_id)
        for other in changed:
            if not mine.isdisjoint(await joined_rooms(self.storage, other)):
                return True
        return False

    async def add_to_sync(self, context: SyncContext) -> None:
        presence_filter = context.request.sync_filter.presence
        if presence_filter.allows_nothing() or not presence_filter.allows_type(PRESENCE):
            return
        now_ms = self.service.clock.time_msec()
        for user_id in sorted(await self._users_to_send(context)):
            presence = self.service.states.get(user_id)
            if presence is None or not _sender_allowed(presence_filter, user_id):
                continue
            context.extras.presence.append(
                {"type": PRESENCE, "sender": user_id, "content": presence.content(now_ms)}
            )

    async def _users_to_send(self, context: SyncContext) -> set[str]:
        user_id = context.request.user_id
        mine = await joined_rooms(self.storage, user_id)
        if context.since is None:
            return {user_id} | await self._members(mine)
        since = context.since.presence
        changed = self.service.log.changed_after(since)
        if changed is None:
            # A token older than what the log remembers: compare every candidate's position.
            candidates = {user_id} | await self._members(mine)
            states = self.service.states
            users = {
                u
                for u in candidates
                if u in states and since < states[u].stream_id <= context.now.presence
            }
        else:
            users = set()
            for other in changed:
                if other == user_id or not mine.isdisjoint(await joined_rooms(self.storage, other)):
                    users.add(other)
        return users | await self._new_companions(context, mine)

    async def _new_companions(self, context: SyncContext, mine: set[str]) -> set[str]:
        """Users the syncing user started sharing a room with inside the window."""
        assert context.since is not None
        since = context.since.events
        fresh = await rooms_joined_since(self.storage, context)
        users = await self._members(fresh)
        membership_changes = self.storage.persister.membership_changes
        for room_id in mine - fresh:
            # Only a room with new events can have a new member.
            if await self.storage.events.get_room_position(room_id) <= since:
                continue
            snapshot = await self.storage.state.get_snapshot(room_id)
            if snapshot is not None:
                users.update(
                    u for u in snapshot.joined_users() if membership_changes.changed_since(u, since)
                )
        return users

    async def _members(self, room_ids: set[str]) -> set[str]:
        users: set[str] = set()
        for room_id in room_ids:
            snapshot = await self.storage.state.get_snapshot(room_id)
            if snapshot is not None:
                users.update(snapshot.joined_users())
        return users


def _sender_allowed(presence_filter: EventFilter, user_id: str) -> bool:
    if user_id in presence_filter.not_senders:
        return False
    return presence_filter.senders is None or user_id in presence_filter.senders
