"""Passes the events our users make on to every other server in the room."""

from __future__ import annotations

import logging

from federation.joins import servers_in_room
from federation.sender import FederationSender
from homeserver.ephemeral.common import run_in_background
from homeserver.events.event import Event
from homeserver.identifiers import server_of
from storage.store import Storage

logger = logging.getLogger(__name__)


class PduFanout:
    def __init__(self, server_name: str, storage: Storage, sender: FederationSender) -> None:
        self.server_name = server_name
        self.storage = storage
        self.sender = sender

    def on_new_events(self, events: list[Event]) -> None:
        """Persister observer. Events from other servers are not passed on: their origin sends
        them itself (joins we accept as the resident are sent by the join handler)."""
        local = [
            e for e in events
            if server_of(e.sender) == self.server_name and e.rejected_reason is None
        ]
        if local:
            run_in_background("federation fan-out", self._queue(local))

    async def _queue(self, events: list[Event]) -> None:
        for event in events:
            snapshot = await self.storage.state.get_snapshot(event.room_id)
            destinations = servers_in_room(snapshot.memberships) if snapshot else set()
            if event.type == "m.room.member" and event.state_key:
                # The target hears of its own kick, ban or invite even when not in the room.
                destinations.add(server_of(event.state_key))
            destinations.discard(self.server_name)
            if destinations:
                await self.sender.send_pdu(event.pdu, event.event_id, destinations)
