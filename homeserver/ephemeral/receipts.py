"""Read receipts and the fully read marker (client-server spec, "Receipts" and "Read and
unread markers"), and the receipts stream that feeds `m.receipt` into /sync.

Receipts are "read up to" markers, so one never moves backwards: a receipt for an event older
than (or the same as) the one the user's receipt of that type and thread already points at is
accepted and ignored. This is what lets several devices of one user, each a little behind the
others, report what they have shown without rewinding each other's marker. The fully read
marker follows the same rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet import defer

from homeserver.clock import Clock
from homeserver.ephemeral.common import (
    OrderedWakeups,
    add_ephemeral,
    ephemeral_allowed,
    joined_rooms,
    require_joined,
    rooms_joined_since,
    run_in_background,
)
from homeserver.errors import Codes, MatrixError, not_found
from homeserver.events.event import Event
from homeserver.relations.threads import MAIN_THREAD, UNKNOWN_THREAD, thread_of
from homeserver.rooms.visibility import VisibilityFilter
from homeserver.sync.notifier import Notifier
from homeserver.sync.sources import SyncContext
from storage.receipts import PRIVATE_READ, Receipt
from storage.store import Storage

RECEIPT = "m.receipt"
READ = "m.read"
FULLY_READ = "m.fully_read"
RECEIPT_TYPES = (READ, PRIVATE_READ)


class ReceiptsService:
    """Receipts and read markers; a SyncSource for the `receipts` stream."""

    stream = "receipts"

    def __init__(self, storage: Storage, notifier: Notifier, clock: Clock) -> None:
        self.storage = storage
        self.notifier = notifier
        self.clock = clock
        # One fully read marker update at a time per (user, room): it is read, compared, written.
        self._marker_locks: dict[tuple[str, str], defer.DeferredLock] = {}
        self._wakeups = OrderedWakeups(storage.receipts.stream)
        # Told of each public receipt a local user makes: federation passes it on.
        self.local_receipt_observers: list[Callable[[Receipt], None]] = []

    def current_position(self) -> int:
        return self.storage.receipts.stream.current

    async def post_receipt(
        self,
        user_id: str,
        room_id: str,
        receipt_type: str,
        event_id: str,
        thread_id: str | None = None,
    ) -> None:
        """POST /receipt/{receiptType}/{eventId}; m.fully_read goes to the read marker."""
        await require_joined(self.storage, user_id, room_id)
        event = await self._visible_event(user_id, room_id, event_id)
        if receipt_type == FULLY_READ:
            await self._set_fully_read(user_id, room_id, event)
            return
        if thread_id is not None:
            await self._check_thread(event, thread_id)
        await self._store(user_id, room_id, receipt_type, event, thread_id)

    async def set_read_markers(
        self, user_id: str, room_id: str, markers: Mapping[str, str]
    ) -> None:
        """POST /read_markers: `markers` maps m.fully_read / m.read / m.read.private to events.

        Every event is checked before anything is written, so a refusal changes nothing."""
        await require_joined(self.storage, user_id, room_id)
        events = {
            kind: await self._visible_event(user_id, room_id, event_id)
            for kind, event_id in markers.items()
        }
        if FULLY_READ in events:
            await self._set_fully_read(user_id, room_id, events[FULLY_READ])
        for receipt_type in RECEIPT_TYPES:
            if receipt_type in events:
                await self._store(user_id, room_id, receipt_type, events[receipt_type], None)

    async def _visible_event(self, user_id: str, room_id: str, event_id: str) -> Event:
        """The event, if it is in the room's timeline and the user may see it; else 404."""
        event = await self.storage.events.get_event(event_id)
        if event is None or event.room_id != room_id or event.stream_ordering is None:
            raise not_found("Event not found in this room")
        if not await VisibilityFilter(self.storage, user_id).filter([event]):
            raise not_found("Event not found in this room")
        return event

    async def _check_thread(self, event: Event, thread_id: str) -> None:
        """400 when the event is known not to belong to the thread the receipt names."""
        thread = await thread_of(self.storage, event)
        if thread is UNKNOWN_THREAD:
            return
        if thread_id == MAIN_THREAD:
            ok = thread is None
        else:
            # A thread root heads its own thread as well as sitting in the main timeline.
            ok = thread == thread_id or event.event_id == thread_id
        if not ok:
            raise MatrixError(
                400, Codes.INVALID_PARAM, f"Event {event.event_id} is not in thread {thread_id}"
            )

    async def _store(
        self, user_id: str, room_id: str, receipt_type: str, event: Event, thread_id: str | None
    ) -> None:
        receipt = Receipt(
            room_id, user_id, receipt_type, thread_id, event.event_id, self.clock.time_msec()
        )
        position = await self.storage.receipts.put(receipt, event.stream_ordering or 0)
        self._wakeups.committed(position, lambda: self._wake(user_id, room_id, receipt_type))
        if receipt_type != PRIVATE_READ:
            for observer in self.local_receipt_observers:
                observer(receipt)

    async def put_remote_receipt(
        self,
        user_id: str,
        room_id: str,
        receipt_type: str,
        event_id: str,
        thread_id: str | None,
        ts: int,
    ) -> bool:
        """A receipt another server's user made; False if we cannot place it (the user is not
        joined here, or we do not hold the event)."""
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is None or snapshot.membership_of(user_id) != "join":
            return False
        event = await self.storage.events.get_event(event_id)
        if event is None or event.room_id != room_id or event.stream_ordering is None:
            return False
        receipt = Receipt(room_id, user_id, receipt_type, thread_id, event_id, ts)
        position = await self.storage.receipts.put(receipt, event.stream_ordering)
        self._wakeups.committed(position, lambda: self._wake(user_id, room_id, receipt_type))
        return True

    def _wake(self, user_id: str, room_id: str, receipt_type: str) -> None:
        # A private receipt is news only to its owner.
        if receipt_type == PRIVATE_READ:
            self.notifier.wake_users([user_id])
        else:
            run_in_background("waking receipt listeners", self.notifier.wake_room(room_id))

    async def _set_fully_read(self, user_id: str, room_id: str, event: Event) -> None:
        key = (user_id, room_id)
        lock = self._marker_locks.setdefault(key, defer.DeferredLock())
        await lock.acquire()
        try:
            if await self._marker_is_at_or_after(user_id, room_id, event):
                return
            await self.storage.account_data.put(
                user_id, room_id, FULLY_READ, {"event_id": event.event_id}
            )
            self.notifier.wake_users([user_id])
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._marker_locks.pop(key, None)

    async def _marker_is_at_or_after(self, user_id: str, room_id: str, event: Event) -> bool:
        current = await self.storage.account_data.get(user_id, room_id, FULLY_READ)
        current_id = current.get("event_id") if current else None
        if not isinstance(current_id, str):
            return False
        current_event = await self.storage.events.get_event(current_id)
        if current_event is None or current_event.stream_ordering is None:
            return False
        return current_event.stream_ordering >= (event.stream_ordering or 0)

    # -- SyncSource ----------------------------------------------------------------------------

    async def may_have_news(self, user_id: str, device_id: str | None, since: int) -> bool:
        store = self.storage.receipts
        return any(
            store.changed_since(user_id, room_id, since)
            for room_id in await joined_rooms(self.storage, user_id)
        )

    async def add_to_sync(self, context: SyncContext) -> None:
        store = self.storage.receipts
        user_id = context.request.user_id
        rooms = [
            room_id
            for room_id in context.joined_rooms
            if ephemeral_allowed(context.request.sync_filter, RECEIPT, room_id)
        ]
        if context.since is None:
            receipts = await store.get_current(rooms, user_id)
        else:
            since = context.since.receipts
            # Rooms joined in the window get all their receipts, as on an initial sync.
            fresh = await rooms_joined_since(self.storage, context)
            changed = [
                r for r in rooms if r not in fresh and store.changed_since(user_id, r, since)
            ]
            receipts = await store.get_changed(changed, user_id, since, context.now.receipts)
            receipts += await store.get_current([r for r in rooms if r in fresh], user_id)
        for room_id, events in _receipt_events(receipts).items():
            for event in events:
                add_ephemeral(context, room_id, event)


def _receipt_events(receipts: list[Receipt]) -> dict[str, list[dict[str, Any]]]:
    """One m.receipt event per room and thread, as the spec recommends; this also keeps a
    user's unthreaded and threaded receipts on one event from overwriting each other."""
    contents: dict[tuple[str, str | None], dict[str, Any]] = {}
    for receipt in sorted(receipts, key=lambda r: r.stream_id):
        content = contents.setdefault((receipt.room_id, receipt.thread_id), {})
        data: dict[str, Any] = {"ts": receipt.ts}
        if receipt.thread_id is not None:
            data["thread_id"] = receipt.thread_id
        by_type = content.setdefault(receipt.event_id, {}).setdefault(receipt.receipt_type, {})
        by_type[receipt.user_id] = data
    events: dict[str, list[dict[str, Any]]] = {}
    for (room_id, _thread), content in contents.items():
        events.setdefault(room_id, []).append({"type": RECEIPT, "content": content})
    return events
