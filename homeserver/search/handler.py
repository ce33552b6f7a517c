"""POST /search, category room_events (client-server spec, "Server Side Search").

Searched are the rooms the user is in or has left (up to their leaving) and has not forgotten;
each hit passes the history-visibility rules and the request's filter, and events of ignored
users are left out. `order_by: recent` pages by stream position, `rank` by offset in the ranked
list. Results may be grouped by room or sender, each group with its own `next_batch`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from homeserver.clock import Clock
from homeserver.errors import MatrixError
from homeserver.events.event import Event
from homeserver.ignored_users import IgnoredUsers, is_hidden_from
from homeserver.rooms.access import check_room_access
from homeserver.rooms.context import ContextHandler
from homeserver.rooms.room_reader import RoomReader
from homeserver.rooms.visibility import VisibilityFilter
from homeserver.search.request import RoomEventsCriteria, SearchToken, parse_room_events
from homeserver.sync.filtering import EventFilter
from homeserver.sync.render import EventRenderer
from storage.search import SearchQuery, search_words
from storage.store import Storage

# Pages of hits are re-read when visibility drops some; this bounds one request's work.
MAX_PAGE_READS = 5


@dataclass
class Scan:
    results: list[tuple[Event, float]] = field(default_factory=list)
    # Every hit looked at (visible or not), for where each group's next page starts.
    scanned: list[Event] = field(default_factory=list)
    # Where the next page starts; None when there are no more hits.
    next_position: int | None = None


class SearchHandler:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.renderer = EventRenderer(storage, clock)
        self.context = ContextHandler(storage, clock)
        self.reader = RoomReader(storage, clock)
        self.ignored_users = IgnoredUsers(storage)

    async def search(
        self, user_id: str, device_id: str | None, body: dict[str, Any], next_batch: str | None
    ) -> dict[str, Any]:
        criteria = parse_room_events(body)
        if criteria is None:
            return {"search_categories": {}}
        token = SearchToken.decode(next_batch, criteria.order_by) if next_batch else None
        room_events = await self._room_events(user_id, device_id, criteria, token)
        return {"search_categories": {"room_events": room_events}}

    async def _room_events(
        self,
        user_id: str,
        device_id: str | None,
        criteria: RoomEventsCriteria,
        token: SearchToken | None,
    ) -> dict[str, Any]:
        group = token.group if token else None
        rooms = await self._searchable_rooms(user_id, criteria.event_filter)
        if group is not None and group[0] == "room_id":
            rooms = {room_id: upto for room_id, upto in rooms.items() if room_id == group[1]}
        words = search_words(criteria.term)
        query = SearchQuery(
            words=tuple(words),
            keys=criteria.keys,
            rooms=rooms,
            event_filter=criteria.event_filter.sql_pushdown(),
            order_by=criteria.order_by,
            limit=criteria.limit,
            sender=group[1] if group is not None and group[0] == "sender" else None,
        )
        scan = await self._scan(user_id, _from(query, token), criteria)
        response: dict[str, Any] = {
            "count": await self.storage.search.count(query),
            "highlights": words,
            "results": await self._results(user_id, device_id, scan, criteria),
        }
        if scan.next_position is not None:
            next_token = SearchToken(criteria.order_by, scan.next_position, group)
            response["next_batch"] = next_token.encode()
        if criteria.group_by:
            response["groups"] = _groups(criteria, scan, token)
        if criteria.include_state:
            room_ids = dict.fromkeys(event.room_id for event, _ in scan.results)
            response["state"] = {
                room_id: await self.reader.get_state(user_id, room_id) for room_id in room_ids
            }
        return response

    async def _searchable_rooms(self, user_id: str, event_filter: EventFilter) -> dict[str, int]:
        """room_id -> the position up to which the user may read it."""
        memberships = await self.storage.state.get_rooms_for_user(user_id)
        forgotten = await self.storage.rooms.get_forgotten(user_id)
        rooms = {}
        for room_id, membership in memberships.items():
            if membership not in ("join", "leave", "ban") or room_id in forgotten:
                continue
            if not event_filter.allows_room(room_id):
                continue
            try:
                rooms[room_id] = (await check_room_access(self.storage, user_id, room_id)).upto
            except MatrixError:
                continue
        return rooms

    async def _scan(self, user_id: str, query: SearchQuery, criteria: RoomEventsCriteria) -> Scan:
        scan = Scan()
        ignored = await self.ignored_users.get(user_id)
        visibility: dict[str, VisibilityFilter] = {}
        for _ in range(MAX_PAGE_READS):
            wanted = criteria.limit - len(scan.results)
            hits = await self.storage.search.search(replace(query, limit=wanted))
            found = await self.storage.events.get_events(hit.event_id for hit in hits)
            for hit in hits:
                event = found.get(hit.event_id)
                if event is None:
                    continue
                scan.scanned.append(event)
                if is_hidden_from(event, ignored) or not criteria.event_filter.allows(event):
                    continue
                # One filter per room: it remembers the user's joins in the room it first saw.
                room_filter = visibility.setdefault(
                    event.room_id, VisibilityFilter(self.storage, user_id)
                )
                if await room_filter.filter([event]):
                    scan.results.append((event, hit.rank))
            if len(hits) < wanted:
                return scan
            if query.order_by == "recent":
                query = replace(query, before=hits[-1].stream_ordering)
            else:
                query = replace(query, offset=query.offset + len(hits))
            if len(scan.results) >= criteria.limit:
                break
        scan.next_position = query.before if query.order_by == "recent" else query.offset
        return scan

    async def _results(
        self, user_id: str, device_id: str | None, scan: Scan, criteria: RoomEventsCriteria
    ) -> list[dict[str, Any]]:
        events = [event for event, _ in scan.results]
        rendered = await self.renderer.render(events, device_id=device_id, user_id=user_id)
        results = []
        for (event, rank), body in zip(scan.results, rendered, strict=True):
            result: dict[str, Any] = {"rank": rank, "result": body}
            if criteria.before_limit is not None:
                result["context"] = await self._context(user_id, device_id, event, criteria)
            results.append(result)
        return results

    async def _context(
        self, user_id: str, device_id: str | None, event: Event, criteria: RoomEventsCriteria
    ) -> dict[str, Any]:
        before_limit = criteria.before_limit or 0
        around = self.context.around
        before = await around(user_id, event, before_limit, criteria.event_filter, backwards=True)
        after = await around(
            user_id, event, criteria.after_limit, criteria.event_filter, backwards=False
        )
        render = self.renderer.render
        context: dict[str, Any] = {
            "start": before.token,
            "end": after.token,
            "events_before": await render(before.events, device_id=device_id, user_id=user_id),
            "events_after": await render(after.events, device_id=device_id, user_id=user_id),
        }
        if criteria.include_profile:
            senders = {e.sender for e in (event, *before.events, *after.events)}
            context["profile_info"] = await self._profiles(event, senders)
        return context

    async def _profiles(self, event: Event, senders: set[str]) -> dict[str, dict[str, Any]]:
        """Display names and avatars as they were when `event` was sent (historic profiles)."""
        group = event.state_group_before
        state = await self.storage.state.get_state_group(group) if group is not None else {}
        ids = [state[("m.room.member", s)] for s in senders if ("m.room.member", s) in state]
        profiles = {}
        for member in (await self.storage.events.get_events(ids)).values():
            profiles[member.state_key or ""] = {
                key: member.content[key]
                for key in ("displayname", "avatar_url")
                if isinstance(member.content.get(key), str)
            }
        return profiles


def _from(query: SearchQuery, token: SearchToken | None) -> SearchQuery:
    if token is None:
        return query
    if query.order_by == "recent":
        return replace(query, before=token.position)
    return replace(query, offset=max(0, token.position))


def _groups(
    criteria: RoomEventsCriteria, scan: Scan, token: SearchToken | None
) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for key in criteria.group_by:
        entries: dict[str, dict[str, Any]] = {}
        for event, _ in scan.results:
            value = event.room_id if key == "room_id" else event.sender
            entries.setdefault(value, {"results": [], "order": len(entries) + 1})
            entries[value]["results"].append(event.event_id)
        for value, entry in entries.items():
            position = _group_position(criteria, scan, token, (key, value))
            if position is not None:
                entry["next_batch"] = SearchToken(
                    criteria.order_by, position, (key, value)
                ).encode()
        groups[key] = entries
    return groups


def _group_position(
    criteria: RoomEventsCriteria, scan: Scan, token: SearchToken | None, group: tuple[str, str]
) -> int | None:
    """Where the group's own next page starts, when that is known."""
    if scan.next_position is None:
        return None
    if criteria.order_by == "recent" or (token is not None and token.group == group):
        return scan.next_position
    if token is not None:
        # Which ranks of this group earlier pages covered is not known: no group token.
        return None
    key, value = group
    return sum(1 for e in scan.scanned if (e.room_id if key == "room_id" else e.sender) == value)
