"""Ephemeral streams beside room events: typing, receipts (with read markers) and presence.

Each is a service with its client-facing operations and a SyncSource for its stream;
`EphemeralStreams` builds the three once and plugs them into the notifier and the persister.
"""

from __future__ import annotations

from homeserver.clock import Clock
from homeserver.config import HomeServerConfig
from homeserver.ephemeral.presence import PresenceService
from homeserver.ephemeral.receipts import ReceiptsService
from homeserver.ephemeral.typing import TypingService
from homeserver.sync.notifier import Notifier
from storage.store import Storage


class EphemeralStreams:
    def __init__(
        self, config: HomeServerConfig, storage: Storage, notifier: Notifier, clock: Clock
    ) -> None:
        self.typing = TypingService(storage, notifier, clock)
        self.receipts = ReceiptsService(storage, notifier, clock)
        self.presence = PresenceService(
            storage, notifier, clock, config.server_name, enabled=config.presence_enabled
        )
        for source in (self.typing, self.receipts, self.presence):
            notifier.add_source(source)
        # Leaving a room stops typing there; sending an event is presence activity.
        storage.persister.add_observer(self.typing.on_new_events)
        storage.persister.add_observer(self.presence.on_new_events)

    async def start(self) -> None:
        """After storage has started: presence continues from what was stored."""
        await self.presence.start()

    def stop(self) -> None:
        """Cancels the typing and presence timers."""
        self.typing.stop()
        self.presence.stop()
