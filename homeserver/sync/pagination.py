"""/rooms/{roomId}/messages: paging through a room's history in either direction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.ignored_users import IgnoredUsers, without_ignored
from homeserver.rooms.access import check_room_access
from homeserver.rooms.visibility import VisibilityFilter
from homeserver.sync.filtering import EventFilter
from homeserver.sync.render import EventRenderer
from homeserver.sync.tokens import MAX_POSITION, encode_pagination_token
from storage.store import Storage

# Pages are re-read when filters drop events; this bounds the work of one request.
MAX_PAGE_READS = 5


class PaginationHandler:
    def __init__(
        self,
        storage: Storage,
        max_limit: int,
        clock: Clock,
        *,
        ignored_users: IgnoredUsers | None = None,
    ) -> None:
        self.storage = storage
        self.ignored_users = ignored_users or IgnoredUsers(storage)
        self.max_limit = max_limit
        self.renderer = EventRenderer(storage, clock)
        # (room_id, limit) -> whether older events were fetched from another server: called
        # when a backwards page reaches the start of what we hold (set by server.py).
        self.backfiller: Callable[[str, int], Awaitable[bool]] | None = None

    async def messages(
        self,
        user_id: str,
        device_id: str | None,
        room_id: str,
        *,
        from_position: int | None,
        to_position: int | None,
        backwards: bool,
        limit: int,
        event_filter: EventFilter,
    ) -> dict[str, Any]:
        access = await check_room_access(self.storage, user_id, room_id)
        limit = max(0, min(limit, self.max_limit))
        if from_position is None:
            from_position = access.upto if backwards else -MAX_POSITION
        start_token = encode_pagination_token(from_position)
        if backwards:
            after = to_position if to_position is not None else -MAX_POSITION
            upto = min(from_position, access.upto)
        else:
            after = from_position
            upto = min(to_position, access.upto) if to_position is not None else access.upto
        events, end = await self._read(
            user_id, room_id, after, upto, limit, backwards, event_filter
        )
        if backwards and end is None and to_position is None and self.backfiller is not None:
            # The start of our copy of the room; older history may live on other servers.
            if await self.backfiller(room_id, limit - len(events)):
                oldest = min((e.stream_ordering or 0 for e in events), default=upto + 1)
                more, end = await self._read(
                    user_id, room_id, after, oldest - 1, limit - len(events), backwards,
                    event_filter,
                )
                events = events + more
        response: dict[str, Any] = {
            "start": start_token,
            "chunk": await self.renderer.render(events, device_id=device_id, user_id=user_id),
        }
        if end is not None:
            response["end"] = encode_pagination_token(end)
        if event_filter.lazy_load_members and events:
            response["state"] = await self._member_state(events)
        return response

    async def _read(
        self,
        user_id: str,
        room_id: str,
        after: int,
        upto: int,
        limit: int,
        backwards: bool,
        event_filter: EventFilter,
    ) -> tuple[list[Event], int | None]:
        """Up to `limit` visible events in (after, upto], and the token position to go on from."""
        collected: list[Event] = []
        visibility = VisibilityFilter(self.storage, user_id)
        ignored = await self.ignored_users.get(user_id)
        for _ in range(MAX_PAGE_READS):
            if after >= upto or limit == 0:
                return collected, None
            page = await self.storage.events.get_timeline(
                room_id,
                after=after,
                upto=upto,
                limit=limit - len(collected),
                newest_first=backwards,
                event_filter=event_filter.sql_pushdown(),
            )
            if not page:
                return collected, None
            wanted = len(page) == limit - len(collected)
            kept = [e for e in page if event_filter.allows(e)]
            # Events from ignored users are left out, their state events excepted.
            collected.extend(without_ignored(await visibility.filter(kept), ignored))
            edge = page[-1].stream_ordering or 0
            if backwards:
                upto = edge - 1
            else:
                after = edge
            if not wanted:
                # The database had fewer than asked for: this is the end of the history.
                return collected, None
            if len(collected) >= limit:
                break
        return collected, upto if backwards else after

    async def _member_state(self, events: list[Event]) -> list[dict[str, Any]]:
        """Member events of the chunk's senders as of the chunk, for lazy-loading clients."""
        by_group: dict[int, set[str]] = {}
        for event in events:
            if event.state_group_before is not None:
                by_group.setdefault(event.state_group_before, set()).add(event.sender)
        member_ids: dict[str, str] = {}
        for group, senders in by_group.items():
            state = await self.storage.state.get_state_group(group)
            for sender in senders:
                event_id = state.get(("m.room.member", sender))
                if event_id is not None and sender not in member_ids:
                    member_ids[sender] = event_id
        found = await self.storage.events.get_events(member_ids.values())
        return await self.renderer.render([found[i] for i in member_ids.values() if i in found])
