"""What every state resolution algorithm needs: errors, event look-up, auth chains, and the
auth state an event is checked against.

Everything works over a plain `event_id -> Event` mapping the caller supplies, so resolution is
a pure computation. Callers that do not yet hold every event ask `find_missing_events` first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from homeserver.errors import AuthError
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion, StateResolution
from homeserver.rooms.auth_rules import auth_types_for_event, check_auth_rules

StateKey = tuple[str, str]
StateMap = Mapping[StateKey, str]

CREATE: Final = "m.room.create"
POWER_LEVELS: Final = "m.room.power_levels"
JOIN_RULES: Final = "m.room.join_rules"
MEMBER: Final = "m.room.member"

CREATE_KEY: Final = (CREATE, "")
POWER_LEVELS_KEY: Final = (POWER_LEVELS, "")


class StateResolutionError(Exception):
    """The inputs cannot be resolved (inconsistent state sets, a cycle in auth_events, ...)."""


class MissingEventsError(StateResolutionError):
    """Events the algorithm must read were not in the supplied mapping."""

    def __init__(self, event_ids: Iterable[str]) -> None:
        self.event_ids = frozenset(event_ids)
        super().__init__("events needed for state resolution are missing: " + _listing(event_ids))


def _listing(event_ids: Iterable[str]) -> str:
    return ", ".join(sorted(event_ids))


def v12_create_event_id(room_version: RoomVersion, room_id: str) -> str | None:
    """In v12 the room ID is the create event's ID with '!' for '$': the create event is
    implied by every event instead of being listed in its auth_events."""
    if room_version.room_id_from_create_event and room_id.startswith("!"):
        return "$" + room_id[1:]
    return None


def find_missing_events(
    room_version: RoomVersion, state_sets: Sequence[StateMap], events: Mapping[str, Event]
) -> set[str]:
    """The IDs `resolve_state` would need but `events` lacks.

    v1 reads only the events in the state sets. v2 also walks their auth chains, so an event
    whose auth events are missing hides whatever lies beyond them: callers fetch what is
    returned and ask again until the answer is empty.
    """
    wanted = {event_id for state in state_sets for event_id in state.values()}
    if room_version.state_resolution is StateResolution.V1:
        return {event_id for event_id in wanted if event_id not in events}
    missing: set[str] = set()
    seen: set[str] = set()
    todo = list(wanted)
    while todo:
        event_id = todo.pop()
        if event_id in seen:
            continue
        seen.add(event_id)
        event = events.get(event_id)
        if event is None:
            missing.add(event_id)
            continue
        todo.extend(event.auth_event_ids)
        implied = v12_create_event_id(room_version, event.room_id)
        if implied is not None:
            todo.append(implied)
    return missing


class EventGraph:
    """The supplied events, with memoised auth chains over their `auth_events` links."""

    def __init__(self, room_version: RoomVersion, events: Mapping[str, Event]) -> None:
        self.room_version = room_version
        self._events = events
        self._chains: dict[str, frozenset[str]] = {}

    def get(self, event_id: str) -> Event:
        event = self._events.get(event_id)
        if event is None:
            raise MissingEventsError([event_id])
        return event

    def auth_chain(self, event_id: str) -> frozenset[str]:
        """Every event reachable through auth_events links, excluding the event itself.

        Iterative depth-first walk (rooms have auth chains far deeper than Python's recursion
        limit); each chain is memoised, since the chains of a room share most of their events.
        """
        chains = self._chains
        entered: set[str] = set()
        stack = [event_id]
        while stack:
            current = stack[-1]
            if current in chains:
                stack.pop()
                continue
            parents = self.get(current).auth_event_ids
            pending = [p for p in parents if p not in chains]
            if pending:
                # Everything above an entered node on the stack descends from it, so meeting
                # one again means the auth_events links loop (possible with v1's chosen IDs).
                if current in entered or any(p in entered for p in pending):
                    raise StateResolutionError(f"auth_events form a cycle through {current}")
                entered.add(current)
                stack.extend(pending)
                continue
            stack.pop()
            entered.discard(current)
            chain: set[str] = set(parents)
            for parent in parents:
                chain |= chains[parent]
            chains[current] = frozenset(chain)
        return chains[event_id]

    def auth_event_of_type(self, event: Event, key: StateKey) -> Event | None:
        """The event of `key` cited in `event`'s auth_events (the first, if malformed)."""
        for auth_id in event.auth_event_ids:
            auth_event = self.get(auth_id)
            if auth_event.type == key[0] and auth_event.state_key == key[1]:
                return auth_event
        return None

    def create_event_for(self, event: Event) -> Event | None:
        """The room's create event as seen from `event`: itself, the one in its auth_events,
        or (v12) the one its room ID names."""
        if event.type == CREATE and event.state_key == "":
            return event
        implied = v12_create_event_id(self.room_version, event.room_id)
        if implied is not None:
            return self.get(implied)
        return self.auth_event_of_type(event, CREATE_KEY)


def split_conflicts(
    state_sets: Sequence[StateMap],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """v2's split: a key is unconflicted only if every state set maps it to the same event;
    a key missing from some set is conflicted (its events from the other sets compete)."""
    unconflicted: dict[StateKey, str] = {}
    conflicted: dict[StateKey, set[str]] = {}
    for key in {key for state in state_sets for key in state}:
        values = [state.get(key) for state in state_sets]
        ids = {value for value in values if value is not None}
        if None not in values and len(ids) == 1:
            unconflicted[key] = ids.pop()
        else:
            conflicted[key] = ids
    return unconflicted, conflicted


def check_state_sets(state_sets: Sequence[StateMap], graph: EventGraph) -> None:
    """Each entry must be a state event filed under its own (type, state_key): a mismatch is a
    caller bug that would otherwise resolve to nonsense silently."""
    for state in state_sets:
        for key, event_id in state.items():
            event = graph.get(event_id)
            if event.state_key is None or event.state_tuple != tuple(key):
                raise StateResolutionError(f"{event_id} is not the {key} state event")


def is_allowed(event: Event, auth_state: Mapping[StateKey, Event]) -> bool:
    """The room version's auth rules, via the one auth checker (homeserver.rooms.auth_rules).

    Signatures were verified when the events were received, so the join-authoriser signature
    check is treated as passed (`is_signed_by=None`).
    """
    try:
        check_auth_rules(event, auth_state)
    except AuthError:
        return False
    return True


def auth_state_for(event: Event, state: StateMap, graph: EventGraph) -> dict[StateKey, Event]:
    """The state `event` is checked against in v2's iterative auth checks: each key the auth
    rules need comes from `state` if present there, else from the event's own auth_events
    (only if that auth event was not rejected). In v12 the create event, which auth_events no
    longer list, comes from the room ID."""
    rv = graph.room_version
    needed = auth_types_for_event(rv, event.type, event.sender, event.state_key, event.content)
    if CREATE_KEY not in needed:
        needed.append(CREATE_KEY)
    from_auth_events: dict[StateKey, Event] = {}
    for auth_id in event.auth_event_ids:
        auth_event = graph.get(auth_id)
        if auth_event.state_key is not None and auth_event.rejected_reason is None:
            from_auth_events.setdefault(auth_event.state_tuple, auth_event)
    auth_state: dict[StateKey, Event] = {}
    for key in needed:
        if key in state:
            auth_state[key] = graph.get(state[key])
        elif key in from_auth_events:
            auth_state[key] = from_auth_events[key]
    if CREATE_KEY not in auth_state:
        create = graph.create_event_for(event)
        if create is not None and create.rejected_reason is None:
            auth_state[CREATE_KEY] = create
    return auth_state
