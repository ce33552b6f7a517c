"""The user directory: POST /user_directory/search.

Who is found: users joined to a room the searcher is joined to, or to a room whose members are
public (public join rule or world_readable history), as the spec requires at a minimum. That is
decided at query time from `current_state` (indexed by user) and `room_stats`, so membership and
join rule changes count immediately.

What is matched: the words of each user's ID and display name, stored casefolded in
`user_directory_terms` and matched by prefix through an index, so a search reads the matching
terms only, never every user. The names come from the user's own profile for local users (a
profile change is sent to the user's rooms as member events, which refresh the entry) and from
their latest member event for remote ones.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from homeserver.directory.refresher import Refresher
from homeserver.directory.room_stats import RoomStatsUpdater
from homeserver.events.event import Event
from homeserver.identifiers import server_of
from storage.database import Row
from storage.directory import escape_like
from storage.store import Storage

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
# Rows ranked per search: the best matches of a very common prefix are among the first few
# hundred by user ID often enough, and ranking more costs every search.
CANDIDATES = 500
MAX_SEARCH_WORDS = 8

_WORD = re.compile(r"\w+")


def search_terms(user_id: str, display_name: str | None) -> set[str]:
    """What a user can be found by: their ID, localpart and display name, whole and by word."""
    localpart = user_id[1:].split(":", 1)[0]
    terms = {user_id.casefold(), localpart.casefold()}
    terms.update(_WORD.findall(localpart.casefold()))
    if display_name:
        folded = display_name.casefold()
        terms.add(folded)
        terms.update(folded.split())
        terms.update(_WORD.findall(folded))
    return {t for t in terms if t}


class UserDirectory:
    def __init__(self, storage: Storage, server_name: str, room_stats: RoomStatsUpdater) -> None:
        self.storage = storage
        self.server_name = server_name
        self.room_stats = room_stats
        self.refresher = Refresher("user directory", self.refresh)

    async def start(self) -> None:
        stale = await self.storage.directory.users_with_stale_entries()
        if stale:
            logger.info("refreshing %d user directory entries", len(stale))
        for user_id in stale:
            await self.refresh(user_id)

    def on_new_events(self, events: list[Event]) -> None:
        """Persister observer: a member event may carry a new name or avatar."""
        for event in events:
            if event.type == "m.room.member" and event.state_key:
                self.refresher.schedule(event.state_key)

    async def refresh(self, user_id: str) -> None:
        if server_of(user_id) == self.server_name:
            profile = await self.storage.accounts.get_profile(user_id)
            name, avatar = profile if profile is not None else (None, None)
        else:
            name, avatar = await self._remote_profile(user_id)
        await self.storage.directory.upsert_user(user_id, name, avatar, search_terms(user_id, name))

    async def _remote_profile(self, user_id: str) -> tuple[str | None, str | None]:
        """The name and avatar of a joined member event of theirs (no federation profile yet)."""
        rooms = await self.storage.state.get_rooms_for_user(user_id)
        for room_id in sorted(r for r, m in rooms.items() if m == "join"):
            snapshot = await self.storage.state.get_snapshot(room_id)
            event_id = snapshot.state.get(("m.room.member", user_id)) if snapshot else None
            event = await self.storage.events.get_event(event_id) if event_id else None
            if event is not None:
                name, avatar = event.content.get("displayname"), event.content.get("avatar_url")
                return (
                    name if isinstance(name, str) else None,
                    avatar if isinstance(avatar, str) else None,
                )
        return None, None

    async def search(self, searcher: str, search_term: str, limit: int) -> dict[str, Any]:
        # NUL is in no stored term (and PostgreSQL refuses it in a query parameter).
        words = search_term.replace("\x00", "").casefold().split()[:MAX_SEARCH_WORDS]
        limit = max(0, min(limit, MAX_LIMIT))
        if not words:
            return {"results": [], "limited": False}
        await self.refresher.flush()
        await self.room_stats.flush()
        patterns = [escape_like(word) + "%" for word in words]
        rows = await self.storage.directory.search_users(searcher, patterns, CANDIDATES)
        folded = " ".join(words)
        ranked = sorted(rows, key=lambda row: _rank(row, folded))
        return {
            "results": [_result(row) for row in ranked[:limit]],
            "limited": len(rows) > limit,
        }


def _rank(row: Row, term: str) -> tuple[int, int, str]:
    """Whole-name matches first, then name prefixes, then word matches; then users with a
    display name and avatar (the spec: "by rank and then whether profile info is available")."""
    user_id, name, avatar = row
    localpart = user_id[1:].split(":", 1)[0].casefold()
    names = [localpart, user_id.casefold()] + ([name.casefold()] if name else [])
    if term in names:
        closeness = 0
    elif any(n.startswith(term) for n in names):
        closeness = 1
    else:
        closeness = 2
    missing_profile = (name is None) + (avatar is None)
    return closeness, missing_profile, user_id


def _result(row: Row) -> dict[str, Any]:
    user_id, name, avatar = row
    result: dict[str, Any] = {"user_id": user_id}
    if name is not None:
        result["display_name"] = name
    if avatar is not None:
        result["avatar_url"] = avatar
    return result
