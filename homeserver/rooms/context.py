"""Events around a point in a room: /context/{eventId} and /timestamp_to_event.

Both answer only with what the user may see: the room must be readable to them (rooms/access)
and every event passes the history-visibility rules (rooms/visibility).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.clock import Clock
from homeserver.errors import not_found
from homeserver.events.event import Event
from homeserver.ignored_users import IgnoredUsers, without_ignored
from homeserver.rooms.access import RoomAccess, check_room_access
from homeserver.rooms.visibility import VisibilityFilter
from homeserver.sync.filtering import EventFilter
from homeserver.sync.render import EventRenderer
from homeserver.sync.tokens import MAX_POSITION, encode_pagination_token
from storage.database import Txn
from storage.store import Storage

# Pages are re-read when filters drop events; this bounds the work of one request.
MAX_PAGE_READS = 5
# Events looked at around a timestamp before giving up on finding a visible one.
TIMESTAMP_CANDIDATES = 20


@dataclass
class Around:
    """Visible events on one side of an anchor, nearest first, and the token past them."""

    events: list[Event]
    token: str


class ContextHandler:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.renderer = EventRenderer(storage, clock)
        self.ignored_users = IgnoredUsers(storage)

    async def visible_event(self, user_id: str, room_id: str, event_id: str) -> Event:
        """The event, if it is in the room's timeline and the user may see it; else 404."""
        access = await check_room_access(self.storage, user_id, room_id)
        event = await self.storage.events.get_event(event_id)
        if (
            event is None
            or event.room_id != room_id
            or event.stream_ordering is None
            or event.stream_ordering > access.upto
            or not await VisibilityFilter(self.storage, user_id).filter([event])
        ):
            raise not_found("Event not found")
        return event

    async def get_context(
        self,
        user_id: str,
        device_id: str | None,
        room_id: str,
        event_id: str,
        limit: int,
        event_filter: EventFilter,
    ) -> dict[str, Any]:
        event = await self.visible_event(user_id, room_id, event_id)
        # The limit covers both sides together (spec: GET /context).
        before_limit = limit // 2
        before = await self.around(user_id, event, before_limit, event_filter, backwards=True)
        after = await self.around(
            user_id, event, limit - before_limit, event_filter, backwards=False
        )
        last = after.events[-1] if after.events else event
        render = self.renderer.render
        return {
            "event": (await render([event], device_id=device_id, user_id=user_id))[0],
            "events_before": await render(before.events, device_id=device_id, user_id=user_id),
            "events_after": await render(after.events, device_id=device_id, user_id=user_id),
            "start": before.token,
            "end": after.token,
            "state": await self._state_at(
                user_id, last, [*before.events, event, *after.events], event_filter
            ),
        }

    async def around(
        self,
        user_id: str,
        anchor: Event,
        limit: int,
        event_filter: EventFilter,
        *,
        backwards: bool,
    ) -> Around:
        """Up to `limit` visible events just before (or after) `anchor`, nearest first.

        The token continues /messages from past the last event looked at, so events the filters
        dropped are not looked at again."""
        access = await check_room_access(self.storage, user_id, anchor.room_id)
        position = anchor.stream_ordering or 0
        after, upto = (-MAX_POSITION, position - 1) if backwards else (position, access.upto)
        found, edge = await self._read(
            user_id, anchor.room_id, (after, upto), limit, backwards, event_filter
        )
        return Around(found, encode_pagination_token(edge))

    async def _read(
        self,
        user_id: str,
        room_id: str,
        bounds: tuple[int, int],
        limit: int,
        backwards: bool,
        event_filter: EventFilter,
    ) -> tuple[list[Event], int]:
        """Visible events in (after, upto] nearest to one end, and the position reached."""
        after, upto = bounds
        collected: list[Event] = []
        visibility = VisibilityFilter(self.storage, user_id)
        ignored = await self.ignored_users.get(user_id)
        edge = upto if backwards else after
        for _ in range(MAX_PAGE_READS):
            wanted = limit - len(collected)
            if wanted <= 0 or after >= upto:
                break
            page = await self.storage.events.get_timeline(
                room_id,
                after=after,
                upto=upto,
                limit=wanted,
                newest_first=backwards,
                event_filter=event_filter.sql_pushdown(),
            )
            kept = [e for e in page if event_filter.allows(e)]
            collected += without_ignored(await visibility.filter(kept), ignored)
            if not page:
                break
            if backwards:
                upto = edge = (page[-1].stream_ordering or 0) - 1
            else:
                after = edge = page[-1].stream_ordering or 0
            if len(page) < wanted:
                break
        return collected[:limit], edge

    async def _state_at(
        self, user_id: str, last: Event, shown: list[Event], event_filter: EventFilter
    ) -> list[dict[str, Any]]:
        """The room's state at the last event returned, filtered as the events are."""
        state = await self.storage.state.get_state_at_position(
            last.room_id, last.stream_ordering or 0
        )
        wanted = {k: v for k, v in (state or {}).items() if event_filter.allows_type(k[0])}
        if event_filter.lazy_load_members:
            senders = {e.sender for e in shown} | {user_id}
            wanted = {k: v for k, v in wanted.items() if k[0] != "m.room.member" or k[1] in senders}
        found = await self.storage.events.get_events(wanted.values())
        return await self.renderer.render([e for e in found.values() if event_filter.allows(e)])

    async def timestamp_to_event(
        self, user_id: str, room_id: str, ts: int, forwards: bool
    ) -> dict[str, Any]:
        """The visible event closest to `ts` in the given direction (404 if there is none)."""
        access = await check_room_access(self.storage, user_id, room_id)
        ids = await self.storage.db.run(
            "timestamp_to_event", _select_near_ts, room_id, ts, forwards, access
        )
        events = await self.storage.events.get_events(ids)
        visible = await VisibilityFilter(self.storage, user_id).filter(
            events[i] for i in ids if i in events
        )
        if not visible:
            direction = "forward" if forwards else "backward"
            raise not_found(f"Unable to find event from {ts} in {direction} direction")
        return {"event_id": visible[0].event_id, "origin_server_ts": visible[0].origin_server_ts}


def _select_near_ts(txn: Txn, room_id: str, ts: int, forwards: bool, access: RoomAccess) -> list:
    comparison, order = (">=", "ASC") if forwards else ("<=", "DESC")
    rows = txn.query(
        "SELECT event_id FROM events WHERE room_id = ? AND stream_ordering IS NOT NULL"
        f" AND stream_ordering <= ? AND rejected_reason IS NULL AND origin_server_ts {comparison} ?"
        f" ORDER BY origin_server_ts {order}, stream_ordering {order} LIMIT ?",
        (room_id, access.upto, ts, TIMESTAMP_CANDIDATES),
    )
    return [row[0] for row in rows]
