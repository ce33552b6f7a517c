"""The device-list stream: which users' devices, device keys or cross-signing keys changed.

Every write that changes what /keys/query answers for a user runs through `DeviceListStore.write`,
which gives the transaction a stream position and records the change in the same commit, so a
sync never sees keys without the news that they changed (nor the news before the keys).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from storage.database import Database, Txn
from storage.streams import ChangeTracker, StreamIdGenerator

T = TypeVar("T")


@dataclass(frozen=True)
class DeviceListChange:
    user_id: str
    # None: news for everyone who shares a room with user_id; else for this one user only.
    only_for: str | None = None


@dataclass
class ChangeLog:
    """Handed to a write: `add` records a change at the write's stream position."""

    txn: Txn
    stream_id: int
    recorded: list[DeviceListChange] = field(default_factory=list)

    def add(self, user_id: str, only_for: str | None = None) -> None:
        change = DeviceListChange(user_id, only_for)
        if change in self.recorded:
            return
        self.txn.execute(
            "INSERT INTO device_lists_stream (stream_id, user_id, only_for) VALUES (?, ?, ?)",
            (self.stream_id, user_id, only_for),
        )
        self.recorded.append(change)


class DeviceListStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.stream = StreamIdGenerator()
        # Users whose devices changed (news for their room-mates), by position.
        self.public_changes = ChangeTracker()
        # Users who alone have news (their own user-signing signatures), by position.
        self.private_changes = ChangeTracker()
        self.last_change = 0

    async def start(self) -> None:
        row = await self.db.run(
            "max_device_list_stream",
            lambda txn: txn.query_one("SELECT MAX(stream_id) FROM device_lists_stream"),
        )
        current = (row[0] or 0) if row else 0
        self.stream.reset(current)
        self.public_changes = ChangeTracker(floor=current)
        self.private_changes = ChangeTracker(floor=current)
        self.last_change = current

    async def write(
        self, name: str, fn: Callable[..., T], *args: Any
    ) -> tuple[T, list[DeviceListChange]]:
        """Runs `fn(txn, log, *args)` in one transaction; returns its result and the changes
        it recorded with `log.add`, which readers see once the transaction has committed."""
        stream_id = self.stream.allocate()
        logs: list[ChangeLog] = []

        def txn_fn(txn: Txn) -> T:
            log = ChangeLog(txn, stream_id)
            logs.append(log)
            return fn(txn, log, *args)

        try:
            result = await self.db.run(name, txn_fn)
        finally:
            self.stream.finish(stream_id)
        recorded = logs[-1].recorded if logs else []
        for change in recorded:
            if change.only_for is None:
                self.public_changes.note(change.user_id, stream_id)
            else:
                self.private_changes.note(change.only_for, stream_id)
            self.last_change = max(self.last_change, stream_id)
        return result, recorded

    async def record_change(self, user_id: str) -> list[DeviceListChange]:
        """Records that `user_id`'s devices changed where no key write did (a renamed device)."""
        _, changes = await self.write("device_list_change", lambda txn, log: log.add(user_id))
        return changes

    async def get_changes(self, user_id: str, after: int, upto: int) -> list[DeviceListChange]:
        """Changes in (after, upto] that `user_id` may be told about, if they share a room."""
        if after >= upto:
            return []
        rows = await self.db.run(
            "device_list_changes",
            lambda txn: txn.query(
                "SELECT DISTINCT user_id, only_for FROM device_lists_stream"
                " WHERE stream_id > ? AND stream_id <= ? AND (only_for IS NULL OR only_for = ?)",
                (after, upto, user_id),
            ),
        )
        return [DeviceListChange(row[0], row[1]) for row in rows]
