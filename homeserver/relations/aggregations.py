"""Bundled aggregations: the `unsigned["m.relations"]` of events served to clients.

Per the client-server spec ("Aggregations of child events" and each relation's module):
- `m.replace`: the most recent valid edit, as a full client event. The original's content is
  left as it is; a redacted original gets no edit (the redaction pruning drops it).
- `m.thread`: `latest_event` (rendered, with its own edits and references), `count` and
  `current_user_participated`; replies from users the viewer ignores do not count.
- `m.reference`: `chunk` of `{"event_id"}` of the referencing events.
Annotations are not aggregated by the server, and state events get no bundle.

A batch of events costs one database transaction (none when the relation store knows that none
of them has children), plus loading the edits and latest thread events it bundles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeserver.events.event import Event
from homeserver.ignored_users import IgnoredUsers
from homeserver.rooms.visibility import VisibilityFilter
from storage.relations import AggregationRows, relation_of
from storage.store import Storage

if TYPE_CHECKING:
    from homeserver.sync.render import EventRenderer

Relations = dict[str, dict[str, Any]]


def is_valid_edit(original: Event, edit: Event) -> bool:
    """The spec's "Validity of replacement events" (the same room is checked by the store)."""
    if edit.sender != original.sender or edit.type != original.type:
        return False
    if original.is_state() or edit.is_state():
        return False
    parent_relation = relation_of(original)
    if parent_relation is not None and parent_relation.rel_type == "m.replace":
        return False
    # An encrypted edit carries m.new_content in its ciphertext, where the server cannot look.
    return edit.type == "m.room.encrypted" or isinstance(edit.content.get("m.new_content"), dict)


def _most_recent(edits: list[Event]) -> Event | None:
    """Most recent by origin_server_ts, then by the lexicographically largest event ID."""
    return max(edits, key=lambda e: (e.origin_server_ts, e.event_id), default=None)


class BundledAggregations:
    def __init__(self, storage: Storage, renderer: EventRenderer) -> None:
        self.storage = storage
        self.renderer = renderer
        self.ignored_users = IgnoredUsers(storage)

    async def bundle(
        self,
        events: list[Event],
        *,
        user_id: str | None,
        device_id: str | None,
        with_room_id: bool,
        threads: bool = True,
    ) -> dict[str, Relations]:
        """event_id -> its m.relations, for those of `events` that have any."""
        parents = {
            e.event_id: e
            for e in events
            if not e.is_state() and self.storage.relations.may_have_children(e)
        }
        if not parents:
            return {}
        ignored = await self.ignored_users.get(user_id) if user_id else frozenset()
        rows = await self.storage.relations.get_aggregation_rows(
            {event_id: e.room_id for event_id, e in parents.items()}, user_id, ignored
        )
        if not threads:
            rows.threads = {}
        # Only the original's sender may edit it: other "edits" are not even loaded.
        rows.edits = {
            parent_id: [
                (child, sender) for child, sender in edits if sender == parents[parent_id].sender
            ]
            for parent_id, edits in rows.edits.items()
        }
        visibility = VisibilityFilter(self.storage, user_id) if user_id else None
        children = await self._load_children(rows, visibility)
        edits = self._latest_edits(parents, rows, children)
        latest = {
            parent_id: children[summary.latest_event_id]
            for parent_id, summary in rows.threads.items()
            if summary.latest_event_id in children
        }
        rendered = await self._render(
            [*edits.values(), *latest.values()], user_id, device_id, with_room_id
        )
        result: dict[str, Relations] = {}
        for parent_id, edit in edits.items():
            result.setdefault(parent_id, {})["m.replace"] = rendered[edit.event_id]
        for parent_id, refs in rows.references.items():
            chunk = [{"event_id": ref} for ref in refs]
            result.setdefault(parent_id, {})["m.reference"] = {"chunk": chunk}
        for parent_id, event in latest.items():
            summary = rows.threads[parent_id]
            result.setdefault(parent_id, {})["m.thread"] = {
                "latest_event": rendered[event.event_id],
                "count": summary.count,
                "current_user_participated": summary.participated
                or parents[parent_id].sender == user_id,
            }
        return result

    async def _render(
        self,
        events: list[Event],
        user_id: str | None,
        device_id: str | None,
        with_room_id: bool,
    ) -> dict[str, dict[str, Any]]:
        """Edits and latest thread events are served "in the same form as the event itself",
        with their own bundles; threads cannot nest, so those are built without threads."""
        unique = list({event.event_id: event for event in events}.values())
        rendered = await self.renderer.render(
            unique,
            user_id=user_id,
            device_id=device_id,
            with_room_id=with_room_id,
            bundle_threads=False,
        )
        return {body["event_id"]: body for body in rendered}

    async def _load_children(
        self, rows: AggregationRows, visibility: VisibilityFilter | None
    ) -> dict[str, Event]:
        """The candidate edits and latest thread replies, as far as the viewer may see them."""
        ids = [child for edits in rows.edits.values() for child, _ in edits]
        ids += [summary.latest_event_id for summary in rows.threads.values()]
        if not ids:
            return {}
        found = list((await self.storage.events.get_events(ids)).values())
        if visibility is not None:
            found = await visibility.filter(found)
        return {event.event_id: event for event in found}

    def _latest_edits(
        self, parents: dict[str, Event], rows: AggregationRows, children: dict[str, Event]
    ) -> dict[str, Event]:
        latest = {}
        for parent_id, edits in rows.edits.items():
            original = parents[parent_id]
            if original.redacted_by is not None:
                continue
            valid = [
                children[child]
                for child, _ in edits
                if child in children and is_valid_edit(original, children[child])
            ]
            edit = _most_recent(valid)
            if edit is not None:
                latest[parent_id] = edit
        return latest
