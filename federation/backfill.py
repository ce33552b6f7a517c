"""Backfilling: history from before our first event in a room, fetched when a user pages back
to the start of what we hold (`/backfill`, with `/state` for where the history's state begins).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from federation.client import FederationError, federation_path
from federation.joins import servers_in_room
from federation.pdus import PduError, check_signatures_and_hash, parse_pdu
from homeserver.events.event import Event
from homeserver.rooms.remote_events import MissingState, is_bare_outlier

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

MAX_BACKFILL = 100


class Backfiller:
    def __init__(self, hs: HomeServer) -> None:
        self.hs = hs
        # Rooms whose history we already have in full (we reached their create event).
        self._complete: set[str] = set()

    async def backfill(self, room_id: str, limit: int) -> bool:
        """Fetches up to `limit` older events; whether any were added to the timeline."""
        if room_id in self._complete:
            return False
        oldest = await self.hs.storage.events.get_oldest_events(room_id)
        oldest_events = await self.hs.storage.events.get_events(oldest, allow_rejected=True)
        if not oldest_events or any(e.type == "m.room.create" for e in oldest_events.values()):
            self._complete.add(room_id)
            return False
        snapshot = await self.hs.storage.state.get_snapshot(room_id)
        servers = servers_in_room(snapshot.memberships if snapshot else {}) - {self.hs.server_name}
        for server in sorted(servers):
            try:
                added = await self._backfill_from(server, room_id, oldest[:1], limit)
            except (FederationError, PduError, MissingState) as e:
                logger.info("Backfilling %s from %s failed: %s", room_id, server, e)
                continue
            return added > 0
        return False

    async def _backfill_from(
        self, server: str, room_id: str, start: list[str], limit: int
    ) -> int:
        room_version = await self.hs.storage.events.get_room_version(room_id)
        assert room_version is not None
        answer = await self.hs.federation_client.get_json(
            server,
            federation_path("/_matrix/federation/v1/backfill/{}", room_id),
            {"v": start, "limit": min(limit + len(start), MAX_BACKFILL)},
        )
        events = []
        for pdu in answer.get("pdus", []) if isinstance(answer, dict) else []:
            try:
                event = parse_pdu(pdu, room_version)
                if event.room_id == room_id:
                    events.append(await check_signatures_and_hash(self.hs.keyring, event))
            except PduError as e:
                logger.info("Dropping a backfilled event from %s: %s", server, e)
        known = await self.hs.storage.events.get_events(
            [e.event_id for e in events], allow_rejected=True
        )
        # Events we hold only as outliers (the state our join was handed) are history too.
        new = sorted((e for e in events
                      if e.event_id not in known or is_bare_outlier(known[e.event_id])),
                     key=lambda e: (e.depth, e.event_id))
        positions = self.hs.storage.persister.allocate_backfill_positions(len(new))
        for event, position in zip(new, positions, strict=True):
            state = await self._state_if_needed(server, event)
            await self.hs.remote_events.receive(event, state, backfilled_position=position)
        return len(new)

    async def _state_if_needed(self, server: str, event: Event) -> dict | None:
        if not event.prev_event_ids:
            return {}  # the create event: nothing comes before it
        groups = await self.hs.storage.state.get_state_groups_after(event.prev_event_ids)
        if event.prev_event_ids and all(groups.get(p) is not None for p in event.prev_event_ids):
            return None
        return await fetch_state_before(self.hs, server, event)


async def fetch_state_before(hs: HomeServer, server: str, event: Event) -> dict:
    """The state before an event whose prev_events we do not hold, asked of `server` (/state),
    with the state and auth chain events stored as outliers."""
    answer = await hs.federation_client.get_json(
        server,
        federation_path("/_matrix/federation/v1/state/{}", event.room_id),
        {"event_id": event.event_id},
    )
    if not isinstance(answer, dict):
        raise PduError("/state answer is not an object")
    state = await _checked_events(hs, server, answer.get("pdus"), event)
    chain = await _checked_events(hs, server, answer.get("auth_chain"), event)
    await hs.remote_events.persist_outliers([*chain, *state])
    return {e.state_tuple: e.event_id for e in state if e.state_key is not None}


async def _checked_events(hs: HomeServer, server: str, pdus: object, event: Event) -> list[Event]:
    checked = []
    for pdu in pdus if isinstance(pdus, list) else []:
        try:
            parsed = parse_pdu(pdu, event.room_version)
            if parsed.room_id == event.room_id:
                checked.append(await check_signatures_and_hash(hs.keyring, parsed))
        except PduError as e:
            logger.info("Dropping a state event from %s: %s", server, e)
    return checked
