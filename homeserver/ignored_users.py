"""Ignoring users (client-server spec, "Ignoring Users").

A user's ignore list is the global account data `m.ignored_user_list`
`{"ignored_users": {"@user:server": {}}}`. Once someone is ignored, their events no longer
reach the ignoring user, except state events (so a room's name does not look different just
because its setter is ignored); their invites are not shown at all. Nothing is retroactive:
after a change the server simply starts (or stops) leaving those events out, and clients that
want the history re-filtered do a fresh initial sync.

/sync asks for the list on every request, so it is cached per user and trusted as long as the
account data stream says the user's account data has not changed since it was read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeserver.errors import Codes, MatrixError, bad_json
from homeserver.events.event import Event
from homeserver.identifiers import is_valid_user_id
from storage.lru import LruCache
from storage.store import Storage

IGNORED_USER_LIST = "m.ignored_user_list"


def validate_ignored_user_list(content: dict[str, Any]) -> None:
    """Refuses content that is not the spec's shape, so a typo cannot silently ignore no one."""
    users = content.get("ignored_users")
    if not isinstance(users, dict):
        raise bad_json("ignored_users must be an object mapping user IDs to objects")
    for user_id, value in users.items():
        if not is_valid_user_id(user_id):
            raise MatrixError(
                400, Codes.INVALID_PARAM, f"{user_id!r} in ignored_users is not a user ID"
            )
        if not isinstance(value, dict):
            raise bad_json(f"ignored_users[{user_id!r}] must be an object")


def ignored_in(content: dict[str, Any] | None) -> frozenset[str]:
    """The user IDs of stored content; tolerant, since data may predate the validation."""
    users = (content or {}).get("ignored_users")
    if not isinstance(users, dict):
        return frozenset()
    return frozenset(u for u in users if isinstance(u, str))


def is_hidden_from(event: Event, ignored: frozenset[str]) -> bool:
    """Whether `event` is left out for someone ignoring `ignored`: state events never are."""
    return event.sender in ignored and not event.is_state()


def without_ignored(events: Iterable[Event], ignored: frozenset[str]) -> list[Event]:
    if not ignored:
        return list(events)
    return [event for event in events if not is_hidden_from(event, ignored)]


class IgnoredUsers:
    """Each user's ignore list, cached and invalidated by account data stream position."""

    def __init__(self, storage: Storage, cache_size: int = 10000) -> None:
        self.storage = storage
        # user_id -> (account data position the list was read at, the list)
        self._cache: LruCache[str, tuple[int, frozenset[str]]] = LruCache(cache_size)

    async def get(self, user_id: str) -> frozenset[str]:
        account_data = self.storage.account_data
        cached = self._cache.get(user_id)
        if cached is not None and not account_data.changes.changed_since(user_id, cached[0]):
            return cached[1]
        # The position is taken before the read: a write that lands in between makes the entry
        # look stale next time (a harmless re-read), never fresh when it is not.
        position = account_data.stream.current
        content = await account_data.get(user_id, "", IGNORED_USER_LIST)
        # Ignoring yourself would hide your own messages from you; it means nothing.
        ignored = ignored_in(content) - {user_id}
        self._cache.set(user_id, (position, ignored))
        return ignored

    async def hides_invite(self, user_id: str, room_id: str) -> bool:
        """Whether the user's pending invite to the room came from someone they ignore."""
        ignored = await self.get(user_id)
        if not ignored:
            return False
        snapshot = await self.storage.state.get_snapshot(room_id)
        event_id = snapshot.state.get(("m.room.member", user_id)) if snapshot else None
        invite = await self.storage.events.get_event(event_id) if event_id else None
        return invite is not None and invite.sender in ignored
