"""GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]: the children of an event.

Pagination tokens are events-stream positions, the same as /messages and /sync tokens, which
the spec allows as `from` and `to`. Children are ordered by stream position, newest first unless
`dir=f`. With `recurse`, relations of relations are followed up to RECURSION_DEPTH levels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError, not_found
from homeserver.events.event import Event
from homeserver.rooms.access import check_room_access
from homeserver.rooms.visibility import VisibilityFilter
from homeserver.sync.render import EventRenderer
from homeserver.sync.tokens import MAX_POSITION, encode_pagination_token
from storage.relations import ChildQuery, relation_in, relation_of
from storage.store import Storage

# The spec asks for at least 3 levels when recursing.
RECURSION_DEPTH = 3
DUPLICATE_ANNOTATION = "M_DUPLICATE_ANNOTATION"
# Pages are re-read when history visibility drops events; this bounds one request's work.
MAX_PAGE_READS = 5


@dataclass(frozen=True)
class RelationsRequest:
    room_id: str
    event_id: str
    rel_type: str | None = None
    event_type: str | None = None
    from_position: int | None = None
    to_position: int | None = None
    limit: int = 5
    backwards: bool = True
    # None when the client did not say: then `recursion_depth` is left out of the response.
    recurse: bool | None = None


async def check_new_relation(
    storage: Storage, room_id: str, sender: str, event_type: str, content: dict[str, Any]
) -> None:
    """The checks the spec asks of a client's new related event, before it is sent:
    no thread off an event that is itself a child (400 M_UNKNOWN, spec: Threading), and no
    second identical annotation (400 M_DUPLICATE_ANNOTATION, spec: Event annotations)."""
    relation = relation_in(content)
    if relation is None:
        return
    if relation.rel_type == "m.thread":
        parent = await storage.events.get_event(relation.relates_to_id)
        if parent is not None and parent.room_id == room_id and relation_of(parent) is not None:
            raise MatrixError(
                400, Codes.UNKNOWN, "Cannot start a thread from an event with a relation"
            )
    if relation.rel_type == "m.annotation" and relation.key is not None:
        if await storage.relations.has_annotation(
            relation.relates_to_id, sender, event_type, relation.key
        ):
            raise MatrixError(400, DUPLICATE_ANNOTATION, "You already sent this annotation")


class RelationsHandler:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.renderer = EventRenderer(storage, clock)

    async def get_relations(
        self, user_id: str, device_id: str | None, request: RelationsRequest
    ) -> dict[str, Any]:
        upto = await self._check_parent(user_id, request.room_id, request.event_id)
        if request.backwards:
            after = request.to_position if request.to_position is not None else -MAX_POSITION
            if request.from_position is not None:
                upto = min(upto, request.from_position)
        else:
            after = request.from_position if request.from_position is not None else -MAX_POSITION
            if request.to_position is not None:
                upto = min(upto, request.to_position)
        query = ChildQuery(
            room_id=request.room_id,
            parent_id=request.event_id,
            rel_type=request.rel_type,
            event_type=request.event_type,
            after=after,
            upto=upto,
            limit=request.limit,
            newest_first=request.backwards,
            depth=RECURSION_DEPTH if request.recurse else 1,
        )
        events, next_position = await self._read(user_id, query)
        response: dict[str, Any] = {
            "chunk": await self.renderer.render(events, device_id=device_id, user_id=user_id)
        }
        if next_position is not None:
            response["next_batch"] = encode_pagination_token(next_position)
        if request.from_position is not None:
            response["prev_batch"] = encode_pagination_token(request.from_position)
        if request.recurse is not None:
            response["recursion_depth"] = query.depth
        return response

    async def _check_parent(self, user_id: str, room_id: str, event_id: str) -> int:
        """The position up to which the user may read, if they may see the parent; else 404
        (the spec's answer both for a missing parent and for one the user may not see)."""
        try:
            access = await check_room_access(self.storage, user_id, room_id)
        except MatrixError:
            raise not_found("Event not found") from None
        parent = await self.storage.events.get_event(event_id)
        if (
            parent is None
            or parent.room_id != room_id
            or parent.stream_ordering is None
            or parent.stream_ordering > access.upto
            or not await VisibilityFilter(self.storage, user_id).filter([parent])
        ):
            raise not_found("Event not found")
        return access.upto

    async def _read(self, user_id: str, query: ChildQuery) -> tuple[list[Event], int | None]:
        """Up to `limit` visible children, and the position to continue from (None at the end)."""
        collected: list[Event] = []
        visibility = VisibilityFilter(self.storage, user_id)
        for _ in range(MAX_PAGE_READS):
            wanted = query.limit - len(collected)
            if query.after >= query.upto:
                return collected, None
            rows = await self.storage.relations.get_children(replace(query, limit=wanted))
            found = await self.storage.events.get_events(event_id for event_id, _ in rows)
            page = [found[event_id] for event_id, _ in rows if event_id in found]
            collected += await visibility.filter(page)
            if len(rows) < wanted:
                return collected, None
            edge = rows[-1][1]
            if query.newest_first:
                query = replace(query, upto=edge - 1)
            else:
                query = replace(query, after=edge)
            if len(collected) >= query.limit:
                break
        return collected, (query.upto if query.newest_first else query.after)
