"""The room directory and the user directory, and the room stats both read."""

from __future__ import annotations

from homeserver.config import HomeServerConfig
from homeserver.directory.public_rooms import PublicRoomList
from homeserver.directory.publication import PublicationPolicy
from homeserver.directory.room_stats import RoomStatsUpdater
from homeserver.directory.user_directory import UserDirectory
from storage.store import Storage


class Directories:
    """Builds the directory services and makes them observers of the event persister."""

    def __init__(self, config: HomeServerConfig, storage: Storage) -> None:
        self.room_stats = RoomStatsUpdater(storage)
        self.user_directory = UserDirectory(storage, config.server_name, self.room_stats)
        rules = None if config.room_list_publication_default else config.room_list_publication_rules
        self.public_rooms = PublicRoomList(storage, self.room_stats, PublicationPolicy(rules))
        storage.persister.add_observer(self.room_stats.on_new_events)
        storage.persister.add_observer(self.user_directory.on_new_events)

    async def start(self) -> None:
        """Catches up on what changed while the server was not running (after storage starts)."""
        await self.room_stats.start()
        await self.user_directory.start()
