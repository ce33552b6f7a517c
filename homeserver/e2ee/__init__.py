"""End-to-end encryption support: the server relays keys and messages; clients encrypt.

`E2ee` builds the services once; server.py registers its /sync sources with the notifier and
its device-deletion hook with the account service. Federation plugs in how other servers are
asked for their users' keys (`remote.fetcher`) and told about ours (`announcer.deliver`).
"""

from __future__ import annotations

from homeserver.clock import Clock
from homeserver.e2ee.announcements import DeviceListAnnouncer
from homeserver.e2ee.cross_signing import CrossSigningService
from homeserver.e2ee.device_lists import DeviceListService
from homeserver.e2ee.key_backup import KeyBackupService
from homeserver.e2ee.keys import KeyService
from homeserver.e2ee.remote import RemoteKeyService
from homeserver.e2ee.to_device import ToDeviceService
from homeserver.sync.notifier import Notifier
from homeserver.sync.sources import SyncSource
from storage.store import Storage


class E2ee:
    def __init__(
        self, server_name: str, storage: Storage, notifier: Notifier, clock: Clock
    ) -> None:
        self.storage = storage
        self.device_lists = DeviceListService(server_name, storage, notifier)
        self.remote = RemoteKeyService(server_name, storage, self.device_lists, clock)
        self.keys = KeyService(server_name, storage, self.device_lists, self.remote)
        self.cross_signing = CrossSigningService(
            server_name, storage, self.device_lists, self.remote
        )
        self.announcer = DeviceListAnnouncer(storage, self.keys)
        self.device_lists.local_change_observers.append(self.announcer.local_change)
        self.to_device = ToDeviceService(server_name, storage, notifier, clock, self.keys)
        self.key_backup = KeyBackupService(storage)

    def sync_sources(self) -> list[SyncSource]:
        return [self.to_device, self.device_lists]

    async def on_devices_deleted(self, user_id: str) -> None:
        """After devices of `user_id` were deleted: their keys and pending messages go, and
        their room-mates learn that the device list changed."""
        changes = await self.storage.e2ee.keys.delete_for_removed_devices(user_id)
        self.keys.forget_counts(user_id)
        await self.device_lists.notify(changes)

    async def on_device_renamed(self, user_id: str) -> None:
        """After a device of `user_id` got a new display name: /keys/query shows it, so their
        room-mates (here and on other servers) are told that the device list changed."""
        await self.device_lists.notify(await self.storage.e2ee.device_lists.record_change(user_id))
