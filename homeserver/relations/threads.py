"""GET /rooms/{roomId}/threads: a room's thread roots, the most recently active first.

The `from`/`next_batch` token is the events-stream position of a thread's latest reply: the next
page holds the threads whose latest reply is older. A thread that gets a new reply between two
pages moves to the front, as it would in the client's list.
"""

from __future__ import annotations

from typing import Any

from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.events.redaction import prune_client_event
from homeserver.ignored_users import IgnoredUsers
from homeserver.rooms.access import check_room_access
from homeserver.rooms.visibility import VisibilityFilter
from homeserver.sync.render import EventRenderer
from homeserver.sync.tokens import encode_pagination_token
from storage.relations import relation_of
from storage.store import Storage

MAX_PAGE_READS = 5
# The thread ID of the main timeline, in threaded receipts and notification counts.
MAIN_THREAD = "main"
# The spec recommends following at most three relations to find an event's thread.
MAX_THREAD_HOPS = 3
UNKNOWN_THREAD = object()


async def thread_of(storage: Storage, event: Event) -> str | None | object:
    """The root of the event's thread, None for the main timeline, UNKNOWN_THREAD when a
    related event is missing (then nobody can tell).

    Relations are followed up to MAX_THREAD_HOPS, so a reaction to a reply in a thread is in
    that thread too (spec: "Receiving notifications")."""
    current = event
    for _ in range(MAX_THREAD_HOPS):
        relation = relation_of(current)
        if relation is None:
            return None
        if relation.rel_type == "m.thread":
            return relation.relates_to_id
        parent = await storage.events.get_event(relation.relates_to_id)
        if parent is None:
            return UNKNOWN_THREAD
        current = parent
    return None


class ThreadsHandler:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.renderer = EventRenderer(storage, clock)
        self.ignored_users = IgnoredUsers(storage)

    async def list_threads(
        self,
        user_id: str,
        device_id: str | None,
        room_id: str,
        *,
        participated_only: bool,
        from_position: int | None,
        limit: int,
    ) -> dict[str, Any]:
        access = await check_room_access(self.storage, user_id, room_id)
        upto = access.upto if from_position is None else min(from_position, access.upto)
        roots, next_position = await self._read(
            user_id, room_id, upto, limit, user_id if participated_only else None
        )
        chunk = await self.renderer.render(roots, device_id=device_id, user_id=user_id)
        # A root sent by an ignored user is shown redacted, as a client aggregating the thread
        # itself would show it (spec: GET /threads).
        ignored = await self.ignored_users.get(user_id)
        chunk = [
            prune_client_event(body, root.room_version) if root.sender in ignored else body
            for root, body in zip(roots, chunk, strict=True)
        ]
        response: dict[str, Any] = {"chunk": chunk}
        if next_position is not None:
            response["next_batch"] = encode_pagination_token(next_position)
        return response

    async def _read(
        self, user_id: str, room_id: str, upto: int, limit: int, participant: str | None
    ) -> tuple[list[Event], int | None]:
        """Up to `limit` visible roots with activity at or below `upto`, and where to go on."""
        collected: list[Event] = []
        visibility = VisibilityFilter(self.storage, user_id)
        for _ in range(MAX_PAGE_READS):
            wanted = limit - len(collected)
            rows = await self.storage.relations.get_threads(room_id, upto, wanted, participant)
            found = await self.storage.events.get_events(thread_id for thread_id, _ in rows)
            roots = [found[thread_id] for thread_id, _ in rows if thread_id in found]
            collected += await visibility.filter(roots)
            if len(rows) < wanted:
                return collected, None
            upto = rows[-1][1] - 1
            if len(collected) >= limit:
                break
        return collected, upto
