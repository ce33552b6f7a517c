"""Room state resolution, as pure functions over data (no reactor, no storage).

    resolve_state(room_version, state_sets, events) -> {(type, state_key): event_id}

`state_sets` are the states to merge (e.g. the states after each prev_event), `events` maps
event ID to `Event` and must hold every event in the state sets and, for v2 and later, every
event in their auth chains (which are computed here from `auth_events`). Fetching is the
caller's business: `find_missing_events` says what to fetch, and `resolve_state` raises
`MissingEventsError` naming the missing IDs rather than guessing.

The algorithm is the room version's: v1 (room version 1), v2 (2-11) or v2 as revised by room
version 12. Auth checks reuse `homeserver.rooms.auth_rules.check_auth_rules`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion, StateResolution
from homeserver.rooms.state_resolution.common import (
    EventGraph,
    MissingEventsError,
    StateKey,
    StateMap,
    StateResolutionError,
    check_state_sets,
    find_missing_events,
)
from homeserver.rooms.state_resolution.v1 import resolve_v1
from homeserver.rooms.state_resolution.v2 import resolve_v2

__all__ = [
    "MissingEventsError",
    "StateKey",
    "StateMap",
    "StateResolutionError",
    "find_missing_events",
    "resolve_state",
]


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[StateMap],
    events: Mapping[str, Event],
) -> dict[StateKey, str]:
    """The resolution of `state_sets` under `room_version`'s algorithm.

    Raises MissingEventsError (naming every missing ID it can see) if `events` is incomplete,
    and StateResolutionError if the inputs are inconsistent (an event filed under another
    key, a cycle in auth_events).
    """
    missing = find_missing_events(room_version, state_sets, events)
    if missing:
        raise MissingEventsError(missing)
    if not state_sets:
        return {}
    graph = EventGraph(room_version, events)
    check_state_sets(state_sets, graph)
    if len(state_sets) == 1:
        # Nothing to resolve; returned as given so the caller's map is never shared.
        return dict(state_sets[0])
    if room_version.state_resolution is StateResolution.V1:
        return resolve_v1(state_sets, graph)
    return resolve_v2(state_sets, graph)
