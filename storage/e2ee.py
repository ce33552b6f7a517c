"""The end-to-end encryption stores, opened together: they share the device-list stream."""

from __future__ import annotations

from storage.database import Database
from storage.device_inbox import DeviceInboxStore
from storage.device_lists import DeviceListStore
from storage.e2ee_cross_signing import CrossSigningStore
from storage.e2ee_keys import DeviceKeyStore
from storage.e2ee_remote import RemoteKeyStore
from storage.key_backup import KeyBackupStore


class E2eeStore:
    def __init__(self, db: Database) -> None:
        self.device_lists = DeviceListStore(db)
        self.keys = DeviceKeyStore(db, self.device_lists)
        self.cross_signing = CrossSigningStore(db, self.device_lists)
        self.remote = RemoteKeyStore(db, self.device_lists)
        self.inbox = DeviceInboxStore(db)
        self.backup = KeyBackupStore(db)

    async def start(self) -> None:
        """Reads the stream positions of the device-list and to-device streams."""
        await self.device_lists.start()
        await self.inbox.start()
