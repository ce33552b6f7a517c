"""Events in the client format: the fields clients read plus a per-viewer `unsigned`.

`unsigned` carries `age`, the sender's own `transaction_id` (so its local echo is matched),
`prev_content`/`replaces_state` for state events, and `redacted_because` for redacted events,
whose content is pruned as the room version says.
"""

from __future__ import annotations

from typing import Any

from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.events.redaction import prune_client_event
from homeserver.relations.aggregations import BundledAggregations
from homeserver.sync.filtering import apply_event_fields
from storage.store import Storage


class EventRenderer:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage = storage
        self.clock = clock
        self.aggregations = BundledAggregations(storage, self)

    async def render(
        self,
        events: list[Event],
        *,
        device_id: str | None = None,
        with_room_id: bool = True,
        event_fields: tuple[str, ...] | None = None,
        event_format: str = "client",
        user_id: str | None = None,
        bundle_threads: bool = True,
    ) -> list[dict[str, Any]]:
        """`user_id` is the viewer: it shapes the bundled aggregations (unsigned.m.relations)."""
        if not events:
            return []
        previous = await self._previous_state(events)
        redactions = await self._redactions(events)
        relations = {}
        if event_format == "client":
            relations = await self.aggregations.bundle(
                events,
                user_id=user_id,
                device_id=device_id,
                with_room_id=with_room_id,
                threads=bundle_threads,
            )
        now = self.clock.time_msec()
        rendered = []
        for event in events:
            if event_format == "federation":
                body: dict[str, Any] = dict(event.pdu)
                body["event_id"] = event.event_id
            else:
                body = self._client_event(event, device_id, with_room_id, now, previous)
                if event.event_id in relations:
                    body["unsigned"]["m.relations"] = relations[event.event_id]
            redaction = redactions.get(event.redacted_by) if event.redacted_by else None
            if redaction is not None:
                body = prune_client_event(body, event.room_version)
                body.setdefault("unsigned", {})["redacted_because"] = self._client_event(
                    redaction, None, with_room_id, now, {}
                )
            if event_fields is not None:
                body = apply_event_fields(body, event_fields)
            rendered.append(body)
        return rendered

    def _client_event(
        self,
        event: Event,
        device_id: str | None,
        with_room_id: bool,
        now: int,
        previous: dict[str, Event],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "content": event.content,
            "event_id": event.event_id,
            "origin_server_ts": event.origin_server_ts,
            "sender": event.sender,
            "type": event.type,
        }
        if with_room_id:
            body["room_id"] = event.room_id
        if event.state_key is not None:
            body["state_key"] = event.state_key
        redacts = event.redacts
        if redacts is not None:
            # v11 moved `redacts` into content; clients written before still read the top level.
            body["redacts"] = redacts
        unsigned: dict[str, Any] = dict(event.unsigned)
        unsigned["age"] = max(0, now - event.origin_server_ts)
        if device_id is not None and event.sent_by is not None and event.sent_by[0] == device_id:
            unsigned["transaction_id"] = event.sent_by[1]
        prev = previous.get(event.event_id)
        if prev is not None:
            unsigned["replaces_state"] = prev.event_id
            unsigned["prev_content"] = prev.content
            unsigned["prev_sender"] = prev.sender
        body["unsigned"] = unsigned
        return body

    async def _previous_state(self, events: list[Event]) -> dict[str, Event]:
        """event_id -> the state event it replaced, for state events in `events`."""
        prev_ids: dict[str, str] = {}
        for event in events:
            if event.state_key is None or event.state_group_before is None:
                continue
            state = await self.storage.state.get_state_group(event.state_group_before)
            prev_id = state.get(event.state_tuple)
            if prev_id is not None and prev_id != event.event_id:
                prev_ids[event.event_id] = prev_id
        if not prev_ids:
            return {}
        found = await self.storage.events.get_events(prev_ids.values())
        return {eid: found[pid] for eid, pid in prev_ids.items() if pid in found}

    async def _redactions(self, events: list[Event]) -> dict[str, Event]:
        ids = [e.redacted_by for e in events if e.redacted_by is not None]
        if not ids:
            return {}
        return await self.storage.events.get_events(ids)
