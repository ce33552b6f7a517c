"""Creating local events: build, sign, authorise, plan their state, hand them to the persister.

Events in one room are created one at a time (a lock per room) because each new event points
at the room's newest events and extends its state; different rooms proceed in parallel, and the
persister commits whatever is ready together.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from signedjson.key import SigningKey
from twisted.internet import defer

from homeserver.clock import Clock
from homeserver.errors import Codes, MatrixError, forbidden, not_found
from homeserver.events.builder import build_event
from homeserver.events.canonical_json import check_canonical_content
from homeserver.events.content_schema import check_content_shape
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion, get_room_version
from homeserver.events.validation import validate_event_size
from homeserver.rooms.auth_rules import auth_types_for_event, check_auth_rules
from homeserver.rooms.power_levels import get_named_level, get_user_power_level
from storage.persister import EventToPersist
from storage.state import RoomSnapshot, StateKey, StateMap
from storage.store import Storage


@dataclass
class EventDraft:
    """What a client asks for; the creator fills in everything else."""

    type: str
    sender: str
    content: dict[str, Any]
    state_key: str | None = None
    redacts: str | None = None
    # (user_id, device_id, scope, txn_id) for a client send that must happen once.
    txn_key: tuple[str, str, str, str] | None = None
    # The same key once deduplication is done: recorded with the event when it is persisted.
    dedupe_key: tuple[str, str, str, str] | None = None


class RoomLocks:
    """One DeferredLock per room, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, defer.DeferredLock] = {}
        self._users: dict[str, int] = {}

    def hold(self, room_id: str) -> _Held:
        return _Held(self, room_id)

    async def _acquire(self, room_id: str) -> None:
        lock = self._locks.setdefault(room_id, defer.DeferredLock())
        self._users[room_id] = self._users.get(room_id, 0) + 1
        await lock.acquire()

    def _release(self, room_id: str) -> None:
        self._locks[room_id].release()
        self._users[room_id] -= 1
        if self._users[room_id] == 0:
            del self._users[room_id]
            del self._locks[room_id]


class _Held:
    def __init__(self, locks: RoomLocks, room_id: str) -> None:
        self.locks = locks
        self.room_id = room_id

    async def __aenter__(self) -> None:
        await self.locks._acquire(self.room_id)

    async def __aexit__(self, *exc: object) -> None:
        self.locks._release(self.room_id)


class EventCreator:
    def __init__(
        self, server_name: str, signing_key: SigningKey, storage: Storage, clock: Clock
    ) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.storage = storage
        self.clock = clock
        self.locks = RoomLocks()
        # Sends being created, by (user, device, scope, txn): the retries waiting for them.
        self._sends_in_flight: dict[tuple[str, str, str, str], list[defer.Deferred]] = {}
        self._rooms_being_created: set[str] = set()

    async def send(
        self,
        room_id: str,
        draft: EventDraft,
        countersign: Callable[[Event], Awaitable[None]] | None = None,
    ) -> Event:
        """Creates, authorises and persists one event; returns it once committed.

        `countersign` runs between authorising and persisting: an invite to another server's
        user must carry that server's signature too, and fails the send if it cannot."""
        if draft.txn_key is not None:
            return await self._send_once(room_id, draft)
        async with self.locks.hold(room_id):
            snapshot = await self.storage.state.get_snapshot(room_id)
            if snapshot is None:
                raise not_found("Unknown room")
            event, item = await self.prepare(snapshot, draft)
            if countersign is not None:
                await countersign(event)
            await self.storage.persister.persist([item])
            return event

    async def _send_once(self, room_id: str, draft: EventDraft) -> Event:
        """A retried (device, txn) gets the first event back instead of a second event."""
        key = draft.txn_key
        assert key is not None
        if key not in self._sends_in_flight:
            existing = await self.storage.events.get_event_for_txn(*key)
            if existing is not None:
                return await self._get_sent(existing)
        if key in self._sends_in_flight:
            waiter: defer.Deferred = defer.Deferred()
            self._sends_in_flight[key].append(waiter)
            return await self._get_sent(await waiter)
        self._sends_in_flight[key] = []
        try:
            event = await self.send(room_id, replace(draft, txn_key=None, dedupe_key=key))
        except Exception as error:
            for waiter in self._sends_in_flight.pop(key):
                waiter.errback(error)
            raise
        for waiter in self._sends_in_flight.pop(key):
            waiter.callback(event.event_id)
        return event

    async def _get_sent(self, event_id: str) -> Event:
        event = await self.storage.events.get_event(event_id, allow_rejected=True)
        assert event is not None
        return event

    async def prepare(
        self, snapshot: RoomSnapshot, draft: EventDraft
    ) -> tuple[Event, EventToPersist]:
        """Builds, signs and authorises an event on top of `snapshot`, ready to persist.

        Does not change `snapshot`; the persister advances it after commit."""
        if draft.type == "m.room.create":
            # The auth rules refuse it too, but a v12 create event cannot even be built here.
            raise forbidden("A room has exactly one m.room.create event")
        room_version = _room_version(snapshot.room_version)
        check_canonical_content(draft.content, room_version)
        check_content_shape(draft.type, draft.content)
        auth_state = await self._auth_state(snapshot, room_version, draft)
        event = build_event(
            room_version,
            server_name=self.server_name,
            signing_key=self.signing_key,
            event_type=draft.type,
            sender=draft.sender,
            content=draft.content,
            room_id=snapshot.room_id,
            state_key=draft.state_key,
            redacts=draft.redacts,
            prev_event_ids=snapshot.forward_extremities[-10:],
            auth_event_ids=[
                event.event_id
                for key, event in auth_state.items()
                if not (key == ("m.room.create", "") and room_version.room_id_from_create_event)
            ],
            depth=snapshot.max_depth + 1,
            origin_server_ts=self.clock.time_msec(),
        )
        validate_event_size(event.pdu)
        check_auth_rules(event, auth_state)
        redaction_applies = False
        if event.type == "m.room.redaction":
            redaction_applies = await self._check_redaction(event, snapshot, auth_state)
        item = await self._plan_state(snapshot, event)
        item.txn_key = draft.dedupe_key
        item.redaction_applies = redaction_applies
        return event, item

    async def _auth_state(
        self, snapshot: RoomSnapshot, room_version: RoomVersion, draft: EventDraft
    ) -> dict[StateKey, Event]:
        keys = auth_types_for_event(
            room_version, draft.type, draft.sender, draft.state_key, draft.content
        )
        wanted = {("m.room.create", ""), *keys}
        ids = {key: snapshot.state[key] for key in wanted if key in snapshot.state}
        events = await self.storage.events.get_events(ids.values())
        return {key: events[event_id] for key, event_id in ids.items() if event_id in events}

    async def _check_redaction(
        self, event: Event, snapshot: RoomSnapshot, auth_state: Mapping[StateKey, Event]
    ) -> bool:
        target_id = event.redacts
        target = await self.storage.events.get_event(target_id) if target_id else None
        if target is None or target.room_id != event.room_id:
            raise not_found("Event to redact not found")
        if target.sender == event.sender:
            return True
        power_levels = auth_state.get(("m.room.power_levels", ""))
        pl_content = power_levels.content if power_levels else None
        create = auth_state.get(("m.room.create", ""))
        user_level = get_user_power_level(event.sender, pl_content, create)
        if user_level < get_named_level("redact", pl_content):
            raise forbidden("You don't have permission to redact other users' events")
        return True

    async def _plan_state(self, snapshot: RoomSnapshot, event: Event) -> EventToPersist:
        before = snapshot.state_group
        if not event.is_state():
            return EventToPersist(event, state_before=before, state_after=before)
        write = await self.storage.state.plan_group(
            snapshot.room_id, before, {event.state_tuple: event.event_id}
        )
        after_map: StateMap = dict(snapshot.state)
        after_map[event.state_tuple] = event.event_id
        return EventToPersist(
            event,
            state_before=before,
            state_after=write.group_id,
            new_state_group=write,
            state_after_map=after_map,
        )

    async def create_room_events(
        self, room_version: RoomVersion, drafts: list[EventDraft]
    ) -> list[Event]:
        """Creates a new room from its first events (create event first), persisted together."""
        create_event, create_item = await self._prepare_create(room_version, drafts[0])
        room_id = create_event.room_id
        try:
            items = [create_item]
            snapshot = RoomSnapshot(
                room_id=room_id,
                room_version=room_version.identifier,
                state={},
                state_group=None,
                forward_extremities=[],
                max_depth=0,
            )
            _advance_planned(snapshot, create_event, create_item)
            self.storage.events.cache.set(create_event.event_id, create_event)
            for draft in drafts[1:]:
                event, item = await self.prepare(snapshot, draft)
                # Later drafts authorise against these events before they are persisted.
                self.storage.events.cache.set(event.event_id, event)
                _advance_planned(snapshot, event, item)
                items.append(item)
            async with self.locks.hold(room_id):
                await self.storage.persister.persist(items)
        finally:
            self._rooms_being_created.discard(room_id)
        return [item.event for item in items]

    async def _prepare_create(
        self, room_version: RoomVersion, draft: EventDraft
    ) -> tuple[Event, EventToPersist]:
        check_canonical_content(draft.content, room_version)
        origin_server_ts = self.clock.time_msec()
        while True:
            event = self._build_create(room_version, draft, origin_server_ts)
            # From v12 the room ID is the create event's hash, and the only entropy in it is
            # the timestamp: the same user creating two rooms in one millisecond would get one
            # room ID. A later timestamp gives a different room. The ID is claimed before the
            # database is asked, so a concurrent creation cannot claim it too.
            origin_server_ts += 1
            if event.room_id in self._rooms_being_created:
                continue
            self._rooms_being_created.add(event.room_id)
            if await self.storage.events.get_room_version(event.room_id) is None:
                break
            self._rooms_being_created.discard(event.room_id)
        try:
            validate_event_size(event.pdu)
            check_auth_rules(event, {})
            write = await self.storage.state.plan_group(
                event.room_id, None, {event.state_tuple: event.event_id}
            )
        except Exception:
            self._rooms_being_created.discard(event.room_id)
            raise
        item = EventToPersist(
            event,
            state_before=None,
            state_after=write.group_id,
            new_state_group=write,
            state_after_map={event.state_tuple: event.event_id},
        )
        return event, item

    def _build_create(
        self, room_version: RoomVersion, draft: EventDraft, origin_server_ts: int
    ) -> Event:
        room_id = None
        if not room_version.room_id_from_create_event:
            room_id = _random_room_id(self.server_name)
        return build_event(
            room_version,
            server_name=self.server_name,
            signing_key=self.signing_key,
            event_type="m.room.create",
            sender=draft.sender,
            content=draft.content,
            room_id=room_id,
            state_key="",
            prev_event_ids=[],
            auth_event_ids=[],
            depth=1,
            origin_server_ts=origin_server_ts,
        )


def _advance_planned(snapshot: RoomSnapshot, event: Event, item: EventToPersist) -> None:
    """Moves a private, not yet persisted snapshot past `event` (room creation only)."""
    snapshot.forward_extremities = [event.event_id]
    snapshot.max_depth = event.depth
    if event.is_state():
        snapshot.state = dict(snapshot.state)
        snapshot.state[event.state_tuple] = event.event_id
        snapshot.state_group = item.state_after
        if event.type == "m.room.member":
            snapshot.memberships[event.state_key or ""] = event.membership or ""


def _room_version(identifier: str) -> RoomVersion:
    version = get_room_version(identifier)
    if version is None:
        raise MatrixError(400, Codes.UNSUPPORTED_ROOM_VERSION, "Unsupported room version")
    return version


def _random_room_id(server_name: str) -> str:
    alphabet = string.ascii_letters
    return "!" + "".join(secrets.choice(alphabet) for _ in range(18)) + ":" + server_name
