"""Keeps `room_stats` (one row per room: name, topic, join rule, member count, ...) current.

The public room list and the user directory query this table instead of reading every room's
state per request. It is derived data: an observer of the persister recomputes a room's row
after each event that can change it, and start-up recomputes rows left behind (the process
stopped between a commit and the refresh).
"""

from __future__ import annotations

import logging

from homeserver.directory.refresher import Refresher
from homeserver.directory.summaries import SUMMARY_STATE_TYPES, RoomSummary, load_summary
from homeserver.events.event import Event
from storage.directory import RoomStatsRow
from storage.store import Storage

logger = logging.getLogger(__name__)

_RELEVANT_TYPES = frozenset({*SUMMARY_STATE_TYPES, "m.room.member"})


class RoomStatsUpdater:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.refresher = Refresher("room stats", self.refresh)

    async def start(self) -> None:
        stale = await self.storage.directory.rooms_with_stale_stats()
        if stale:
            logger.info("recomputing room stats of %d rooms", len(stale))
        for room_id in stale:
            await self.refresh(room_id)

    def on_new_events(self, events: list[Event]) -> None:
        """Persister observer: schedules rooms whose summary may have changed."""
        for event in events:
            # A redaction may have emptied a name or topic.
            if event.type == "m.room.redaction" or (
                event.is_state() and event.type in _RELEVANT_TYPES
            ):
                self.refresher.schedule(event.room_id)

    async def flush(self) -> None:
        await self.refresher.flush()

    async def refresh(self, room_id: str) -> None:
        summary = await load_summary(self.storage, room_id)
        if summary is None or summary.state_group is None:
            return
        await self.storage.directory.upsert_room_stats(stats_row(summary))


def stats_row(summary: RoomSummary) -> RoomStatsRow:
    assert summary.state_group is not None
    searchable = [summary.name, summary.topic, summary.canonical_alias, *summary.alt_aliases]
    return RoomStatsRow(
        room_id=summary.room_id,
        state_group=summary.state_group,
        room_version=summary.room_version,
        room_type=summary.room_type,
        name=summary.name,
        topic=summary.topic,
        canonical_alias=summary.canonical_alias,
        avatar_url=summary.avatar_url,
        join_rule=summary.join_rule,
        history_visibility=summary.history_visibility,
        guest_access=summary.guest_access,
        encryption=summary.encryption,
        joined_members=summary.joined_members,
        search_text="\n".join(s for s in searchable if s).casefold(),
        members_public=summary.join_rule == "public" or summary.world_readable,
    )
