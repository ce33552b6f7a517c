"""Events made by other servers, accepted into our copy of a room.

The server-server API's checks on receipt of a PDU, after the federation layer has checked
signatures and hashes: authorised by its own auth events (rule 4) and by the state before it
(rule 5), else rejected; authorised by the room's current state (rule 6), else soft-failed. The
state before an event is the state after its prev_events, resolved when there are several, and
the room's current state is resolved again when the event does not descend from every forward
extremity. Fetching what is missing is the caller's business (federation/): here everything
needed is already stored, or `MissingState` says what is not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from homeserver.errors import AuthError
from homeserver.events.event import Event
from homeserver.rooms.auth_rules import (
    auth_types_for_event,
    check_auth_events_shape,
    check_auth_rules,
)
from homeserver.rooms.state_resolution import resolve_state
from storage.persister import EventToPersist
from storage.state import RoomSnapshot, StateKey, StateMap

if TYPE_CHECKING:
    from homeserver.rooms.event_creation import RoomLocks
    from storage.store import Storage

logger = logging.getLogger(__name__)

_CREATE_KEY = ("m.room.create", "")


class MissingState(Exception):
    """The state before an event cannot be computed from what we hold."""

    def __init__(self, event_ids: Iterable[str]) -> None:
        self.event_ids = sorted(event_ids)
        super().__init__(f"no state known at {', '.join(self.event_ids)}")


def is_bare_outlier(event: Event) -> bool:
    """Held only as state or auth chain we were handed (not soft-failed, which has a state
    before it, and not rejected): history that backfill may still place in the timeline."""
    return event.outlier and event.state_group_before is None and event.rejected_reason is None


class RemoteEventHandler:
    def __init__(self, storage: Storage, locks: RoomLocks) -> None:
        self.storage = storage
        self.locks = locks

    # -- outliers: auth chains and state handed to us ------------------------------------------

    async def persist_outliers(self, events: Iterable[Event]) -> None:
        """Stores events we were given as state or auth chain, each checked against its own
        auth events (rule 4) and rejected if that fails. They get no place in the timeline."""
        batch = {e.event_id: e for e in events}
        known = await self.storage.events.get_events(batch, allow_rejected=True)
        new = [e for e in batch.values() if e.event_id not in known]
        items = []
        available = dict(known)
        for event in _auth_order(new, batch):
            event.outlier = True
            event.rejected_reason = self._check_against_auth_events(event, available)
            available[event.event_id] = event
            items.append(EventToPersist(event, state_before=None, state_after=None))
        if items:
            await self.storage.persister.persist(items)

    # -- out of band: our user's membership of a room we are not in -------------------------

    async def keep_out_of_band(
        self, event: Event, described_state: list[dict[str, Any]] | None
    ) -> None:
        """Keeps an invite, knock or leave of a local user in a room this server is not in.

        It shows in the user's /sync (with the room as the other server described it, for an
        invite or knock) but joins no room graph of ours: the room's state here becomes just
        this membership, replaced by the real state if the user later joins."""
        user_id = event.state_key or ""
        async with self.locks.hold(event.room_id):
            if await self.storage.events.get_event(event.event_id) is not None:
                return  # the other server asked again
            state = {("m.room.member", user_id): event.event_id}
            group = await self.storage.state.plan_group(event.room_id, None, state)
            item = EventToPersist(
                event,
                state_before=None,
                state_after=group.group_id,
                new_state_group=group,
                state_after_map=state,
                current_state=state,
                current_state_group=group.group_id,
                current_memberships={user_id: event.membership or ""},
                out_of_band=True,
            )
            if described_state is not None:
                stripped = [e for e in described_state if isinstance(e, dict)]
                await self.storage.rooms.put_invite_state(event.event_id, event.room_id, stripped)
            await self.storage.persister.persist([item])

    # -- events that join the timeline ---------------------------------------------------------

    async def receive(
        self,
        event: Event,
        state_before: StateMap | None = None,
        *,
        backfilled_position: int | None = None,
    ) -> Event:
        """Accepts an event whose prev_events we hold, or whose state before we were handed
        (our own join to a room another server hosts). Returns the stored event, which may be
        rejected (`rejected_reason`) or soft-failed (stored as an outlier, not shown).

        With `backfilled_position`, the event is history older than our timeline: it is
        authorised as usual but leaves the room's current state and extremities alone."""
        async with self.locks.hold(event.room_id):
            stored = await self.storage.events.get_event(event.event_id, allow_rejected=True)
            revived = backfilled_position is not None and stored is not None and is_bare_outlier(
                stored)
            if stored is not None and not revived:
                return stored
            if backfilled_position is not None:
                item = await self._plan_backfilled(event, state_before, backfilled_position)
                item.replaces_outlier = revived
            else:
                item = await self._plan(event, state_before)
            await self.storage.persister.persist([item])
            return event

    async def _plan_backfilled(
        self, event: Event, given_state: StateMap | None, position: int
    ) -> EventToPersist:
        event.stream_ordering = position
        item, _after, _events = await self._authorise(event, given_state)
        item.backfilled = True
        return item

    async def _plan(self, event: Event, given_state: StateMap | None) -> EventToPersist:
        snapshot = await self.storage.state.get_snapshot(event.room_id)
        holds_only_invite = snapshot is not None and _CREATE_KEY not in snapshot.state
        if holds_only_invite:
            # All we had was an out-of-band invite: the room's real state replaces it.
            snapshot = None
        item, after, events = await self._authorise(event, given_state)
        item.reset_snapshot = holds_only_invite
        if event.rejected_reason is not None:
            logger.info("Rejected %s from %s: %s", event.event_id, event.sender,
                        event.rejected_reason)
            return item
        if snapshot is not None and await self._soft_fails(event, snapshot, events):
            logger.info("Soft-failed %s from %s", event.event_id, event.sender)
            event.outlier = True
            return item
        await self._plan_current_state(item, snapshot, after)
        return item

    async def _soft_fails(
        self, event: Event, snapshot: RoomSnapshot, events: dict[str, Event]
    ) -> bool:
        """Rule 6: not authorised by the room's current state."""
        current = {k: snapshot.state[k] for k in _auth_keys(event) if k in snapshot.state}
        missing = [eid for eid in current.values() if eid not in events]
        if missing:
            events = {**events, **await self._events_for(missing)}
        auth_state = {k: events[eid] for k, eid in current.items() if eid in events}
        try:
            check_auth_rules(event, auth_state, is_signed_by=_has_signature)
        except AuthError:
            return True
        return False

    async def _authorise(
        self, event: Event, given_state: StateMap | None
    ) -> tuple[EventToPersist, StateMap, dict[str, Event]]:
        """Rules 4 and 5 (setting `rejected_reason`), and the state groups before and after
        the event: the item to persist, the state after, and the events the checks read."""
        if given_state is None:
            before, before_group = await self._state_at_prevs(event)
        else:
            before, before_group = dict(given_state), None
        events = await self._events_for(event.auth_event_ids, before.values())
        rejected = self._check_against_auth_events(event, events)
        if rejected is None:
            rejected = _check_against_state(event, before, events)
        event.rejected_reason = rejected
        item = EventToPersist(event, state_before=before_group, state_after=before_group)
        if before_group is None:
            write = await self.storage.state.plan_group(event.room_id, None, before)
            item.extra_state_groups.append((write, before))
            item.state_before = item.state_after = write.group_id
        after = before
        if rejected is None and event.is_state():
            after = {**before, event.state_tuple: event.event_id}
            item.new_state_group = await self.storage.state.plan_group(
                event.room_id, item.state_before, {event.state_tuple: event.event_id}
            )
            item.state_after = item.new_state_group.group_id
            item.state_after_map = after
        return item, after, events

    async def _plan_current_state(
        self, item: EventToPersist, snapshot: RoomSnapshot | None, after: StateMap
    ) -> None:
        event = item.event
        if snapshot is not None and set(snapshot.forward_extremities) <= set(event.prev_event_ids):
            return  # descends from everything we had: the persister's usual step suffices
        if snapshot is None:
            current = after
        else:
            current = await self.resolve(event.room_version, [snapshot.state, after], [event])
        item.current_state = current
        if current == after and item.state_after is not None:
            item.current_state_group = item.state_after
        else:
            write = await self.storage.state.plan_group(event.room_id, None, current)
            item.extra_state_groups.append((write, current))
            item.current_state_group = write.group_id
        item.current_memberships = await self._memberships(current, event)

    async def resolve(
        self, room_version, state_sets: list[StateMap], unstored: Iterable[Event] = ()
    ) -> StateMap:
        """Resolves states with every event (and auth chain) the algorithm needs loaded.

        `unstored` are events the states may name that are not stored yet: the state event
        being received, whose state after it is one of the sets."""
        if len(state_sets) == 1:
            return dict(state_sets[0])
        given = {e.event_id: e for e in unstored}
        ids = {event_id for state in state_sets for event_id in state.values()}
        events = await self._load_with_auth_chains(ids - set(given), given)
        return resolve_state(room_version, state_sets, events)

    async def _state_at_prevs(self, event: Event) -> tuple[StateMap, int | None]:
        groups = await self.storage.state.get_state_groups_after(event.prev_event_ids)
        missing = [p for p in event.prev_event_ids if groups.get(p) is None]
        if missing or not event.prev_event_ids:
            raise MissingState(missing or [event.event_id])
        distinct = sorted({g for g in groups.values() if g is not None})
        states = [await self.storage.state.get_state_group(g) for g in distinct]
        if len(states) == 1:
            return dict(states[0]), distinct[0]
        return await self.resolve(event.room_version, states), None

    async def _events_for(self, *id_lists: Iterable[str]) -> dict[str, Event]:
        ids = {event_id for id_list in id_lists for event_id in id_list}
        return await self.storage.events.get_events(ids, allow_rejected=True)

    async def load_auth_chain(self, event_ids: Iterable[str]) -> dict[str, Event]:
        """The events and, recursively, their auth events: as much of it as we hold."""
        return await self._load_with_auth_chains(event_ids)

    async def _load_with_auth_chains(
        self, event_ids: Iterable[str], given: dict[str, Event] | None = None
    ) -> dict[str, Event]:
        found: dict[str, Event] = dict(given or {})
        wanted = set(event_ids) | {a for e in found.values() for a in e.auth_event_ids}
        wanted -= set(found)
        while wanted:
            loaded = await self.storage.events.get_events(wanted, allow_rejected=True)
            found.update(loaded)
            wanted = {
                auth_id
                for e in loaded.values()
                for auth_id in e.auth_event_ids
                if auth_id not in found
            }
            wanted -= set(found)
            if not loaded:
                break
        return found

    async def _memberships(self, state: StateMap, new_event: Event) -> dict[str, str]:
        member_ids = [eid for (t, _), eid in state.items() if t == "m.room.member"]
        events = await self.storage.events.get_events(member_ids, allow_rejected=True)
        events[new_event.event_id] = new_event  # not stored yet
        wanted = set(member_ids)
        return {
            e.state_key or "": e.membership or ""
            for e in events.values()
            if e.event_id in wanted and e.state_key is not None
        }

    def _check_against_auth_events(self, event: Event, known: dict[str, Event]) -> str | None:
        """Rule 4, and the rules about the auth_events list itself; the reason, or None."""
        missing = [a for a in event.auth_event_ids if a not in known]
        if missing:
            return f"auth events not available: {', '.join(missing)}"
        auth_events = [known[a] for a in event.auth_event_ids]
        by_key = {(e.type, e.state_key or ""): e for e in auth_events}
        create = _create_event_for(event, by_key, known)
        if create is not None:
            by_key[_CREATE_KEY] = create
        try:
            check_auth_events_shape(event, auth_events, create_event=create)
            check_auth_rules(event, by_key, is_signed_by=_has_signature)
        except AuthError as e:
            return e.message
        return None


def _check_against_state(event: Event, state: StateMap, events: dict[str, Event]) -> str | None:
    """Rule 5: authorised by the state before the event."""
    try:
        check_auth_rules(event, _auth_state(event, state, events), is_signed_by=_has_signature)
    except AuthError as e:
        return e.message
    return None


def _auth_keys(event: Event) -> list[StateKey]:
    keys = auth_types_for_event(
        event.room_version, event.type, event.sender, event.state_key, event.content
    )
    return [_CREATE_KEY, *keys]


def _auth_state(event: Event, state: StateMap, events: dict[str, Event]) -> dict[StateKey, Event]:
    return {
        key: events[state[key]]
        for key in _auth_keys(event)
        if key in state and state[key] in events
    }


def _create_event_for(
    event: Event, by_key: dict[StateKey, Event], known: dict[str, Event]
) -> Event | None:
    if _CREATE_KEY in by_key:
        return by_key[_CREATE_KEY]
    if event.room_version.room_id_from_create_event:
        return known.get("$" + event.room_id[1:])
    return None


def _has_signature(event: Event, server_name: str) -> bool:
    # Every signature on an event from elsewhere was verified on receipt (federation layer).
    signatures = event.pdu.get("signatures")
    return isinstance(signatures, dict) and bool(signatures.get(server_name))


def _auth_order(events: list[Event], batch: dict[str, Event]) -> list[Event]:
    """Events ordered so that each comes after the auth events it names from the batch
    (iteratively: auth chains can be far deeper than Python's recursion limit)."""
    ordered: list[Event] = []
    placed: set[str] = set()
    for root in sorted(events, key=lambda e: (e.depth, e.event_id)):
        stack: list[tuple[Event, bool]] = [(root, False)]
        while stack:
            event, expanded = stack.pop()
            if event.event_id in placed:
                continue
            if expanded:
                placed.add(event.event_id)
                ordered.append(event)
                continue
            stack.append((event, True))
            for auth_id in event.auth_event_ids:
                if auth_id in batch and auth_id not in placed:
                    stack.append((batch[auth_id], False))
    wanted = {e.event_id for e in events}
    return [e for e in ordered if e.event_id in wanted]
