"""Device lists: telling clients whose devices to re-query ("Tracking the device list for a
user" and the /sync `device_lists` extension).

A user is told about another user's device or key changes while they share a room (joined, as
/keys/changes defines it), and about themselves. Membership changes count too: someone who starts
sharing a room with the user is `changed` (the client's copy of their devices may be stale),
someone who no longer shares any room is `left`. The spec scopes this to encrypted rooms and
allows a superset; every room is used here, so that a room turning encrypted needs no special
case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from homeserver.identifiers import server_of
from homeserver.sync.notifier import Notifier
from homeserver.sync.sources import SyncContext
from homeserver.sync.tokens import StreamToken
from storage.database import Txn
from storage.device_lists import DeviceListChange
from storage.events import chunks, placeholders
from storage.store import Storage

logger = logging.getLogger(__name__)


@dataclass
class DeviceListNews:
    changed: set[str] = field(default_factory=set)
    left: set[str] = field(default_factory=set)


class DeviceListService:
    """The device-list stream as a /sync source, and /keys/changes."""

    stream = "device_lists"

    def __init__(self, server_name: str, storage: Storage, notifier: Notifier) -> None:
        self.server_name = server_name
        self.storage = storage
        self.store = storage.e2ee.device_lists
        self.notifier = notifier
        # Told the ID of a local user whose devices or keys changed, as seen by everyone
        # sharing a room with them (federation announces it to other servers).
        self.local_change_observers: list[Callable[[str], None]] = []

    def current_position(self) -> int:
        return self.store.stream.current

    async def may_have_news(self, user_id: str, device_id: str | None, since: int) -> bool:
        # Membership news arrives with room events, which the sync handler checks itself.
        if self._nothing_since(since):
            return False
        return self._may_have_changes(user_id, await self.shared_users(user_id), since)

    def _nothing_since(self, since: int) -> bool:
        return self.store.last_change <= since and since >= self.store.public_changes.floor

    def _may_have_changes(self, user_id: str, shared: set[str], since: int) -> bool:
        if self._nothing_since(since):
            return False
        if self.store.private_changes.changed_since(user_id, since):
            return True
        return any(self.store.public_changes.changed_since(user, since) for user in shared)

    async def add_to_sync(self, context: SyncContext) -> None:
        # The spec: device_lists need only be filled in for an incremental sync.
        if context.since is None:
            return
        news = await self.news_between(context.request.user_id, context.since, context.now)
        context.extras.device_lists_changed |= news.changed
        context.extras.device_lists_left |= news.left

    async def news_between(
        self, user_id: str, since: StreamToken, upto: StreamToken
    ) -> DeviceListNews:
        """Who `user_id` should re-query (changed) or stop tracking (left) between two tokens."""
        shared = await self.shared_users(user_id)
        news = DeviceListNews()
        if self._may_have_changes(user_id, shared, since.device_lists):
            changes = await self.store.get_changes(user_id, since.device_lists, upto.device_lists)
            for change in changes:
                if change.only_for == user_id or change.user_id in shared:
                    news.changed.add(change.user_id)
        joined, parted = await self._membership_news(user_id, since.events, upto.events)
        news.changed |= (joined & shared) - {user_id}
        news.left = parted - shared
        return news

    async def shared_users(self, user_id: str) -> set[str]:
        """Everyone joined to a room the user is joined to, and the user."""
        users = {user_id}
        rooms = await self.storage.state.get_rooms_for_user(user_id)
        for room_id, membership in list(rooms.items()):
            if membership != "join":
                continue
            snapshot = await self.storage.state.get_snapshot(room_id)
            if snapshot is not None:
                users.update(snapshot.joined_users())
        return users

    async def notify(self, changes: Iterable[DeviceListChange]) -> None:
        """Wakes the long-polls of everyone the changes are news for."""
        users: set[str] = set()
        local: list[str] = []
        for change in changes:
            if change.only_for is not None:
                users.add(change.only_for)
            else:
                users |= await self.shared_users(change.user_id)
                if server_of(change.user_id) == self.server_name:
                    local.append(change.user_id)
        self.notifier.wake_users(users)
        for user_id in dict.fromkeys(local):
            for observer in self.local_change_observers:
                try:
                    observer(user_id)
                except Exception:
                    logger.exception("A device list observer failed for %s", user_id)

    async def _membership_news(
        self, user_id: str, after: int, upto: int
    ) -> tuple[set[str], set[str]]:
        """(users who joined a room with the user, users who left one) in (after, upto]."""
        if after >= upto:
            return set(), set()
        rooms = await self.storage.state.get_rooms_for_user(user_id)
        candidates = set()
        for room_id, membership in list(rooms.items()):
            if (
                membership == "join"
                and await self.storage.events.get_room_position(room_id) > after
            ):
                candidates.add(room_id)
        if self.storage.persister.membership_changes.changed_since(user_id, after):
            # Rooms the user left are no longer "join" above, but their members may be `left`.
            candidates |= await self._own_membership_rooms(user_id, after, upto)
        joined: set[str] = set()
        parted: set[str] = set()
        for room_id, member, membership in await self._rows_in_rooms(candidates, after, upto):
            if member == user_id:
                # Everyone in a room the user joined or left is news (as far as they share
                # or no longer share any room, which the caller decides).
                members = await self._joined_members(room_id)
                (joined if membership == "join" else parted).update(members)
            elif membership == "join":
                joined.add(member)
            else:
                parted.add(member)
        return joined, parted

    async def _joined_members(self, room_id: str) -> set[str]:
        snapshot = await self.storage.state.get_snapshot(room_id)
        return set(snapshot.joined_users()) if snapshot is not None else set()

    async def _own_membership_rooms(self, user_id: str, after: int, upto: int) -> set[str]:
        rows = await self.storage.db.run(
            "own_membership_changes",
            lambda txn: txn.query(
                "SELECT room_id FROM room_memberships"
                " WHERE user_id = ? AND stream_ordering > ? AND stream_ordering <= ?",
                (user_id, after, upto),
            ),
        )
        return {row[0] for row in rows}

    async def _rows_in_rooms(
        self, rooms: set[str], after: int, upto: int
    ) -> list[tuple[str, str, str]]:
        """(room, user, membership) of membership events in the rooms, oldest first."""
        if not rooms:
            return []

        def txn_fn(txn: Txn) -> list[tuple[str, str, str]]:
            found: list[tuple[str, str, str]] = []
            for chunk in chunks(sorted(rooms)):
                found += txn.query(
                    "SELECT room_id, user_id, membership FROM room_memberships"
                    " WHERE stream_ordering > ? AND stream_ordering <= ?"
                    f" AND room_id IN ({placeholders(len(chunk))}) ORDER BY stream_ordering",
                    (after, upto, *chunk),
                )
            return found

        return await self.storage.db.run("membership_rows_in_rooms", txn_fn)
