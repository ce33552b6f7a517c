"""State resolution v2 (room versions 2-11, content/rooms/fragments/v2-state-res.md) and its
v12 revision (content/rooms/v12.md, "State resolution").

v12 changes three things, all switched on by `StateResolution.V2_1`:
1. step 2's iterative auth checks start from an empty state map, not the unconflicted one;
2. the *conflicted state subgraph* (auth_events paths between conflicted events) is defined;
3. the full conflicted set includes that subgraph.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence

from homeserver.events.event import Event
from homeserver.events.room_versions import StateResolution
from homeserver.rooms.power_levels import PowerLevel, get_user_power_level
from homeserver.rooms.state_resolution.common import (
    JOIN_RULES,
    MEMBER,
    POWER_LEVELS,
    POWER_LEVELS_KEY,
    EventGraph,
    StateKey,
    StateMap,
    StateResolutionError,
    auth_state_for,
    is_allowed,
    split_conflicts,
)


def resolve_v2(state_sets: Sequence[StateMap], graph: EventGraph) -> dict[StateKey, str]:
    revised = graph.room_version.state_resolution is StateResolution.V2_1
    unconflicted, conflicts = split_conflicts(state_sets)
    if not conflicts:
        return unconflicted
    conflicted = {event_id for ids in conflicts.values() for event_id in ids}
    full = conflicted | auth_difference(state_sets, graph)
    if revised:
        full |= conflicted_subgraph(conflicted, graph)

    # Steps 1-2: events that can take power away go first, earliest and most powerful first.
    power = {event_id for event_id in full if is_power_event(graph.get(event_id))}
    for event_id in list(power):
        power |= graph.auth_chain(event_id) & full
    start: dict[StateKey, str] = {} if revised else dict(unconflicted)
    partial = iterative_auth_checks(start, reverse_topological_power_order(power, graph), graph)

    # Steps 3-4: everything else, ordered by how it relates to the power levels just chosen.
    # In v12 the partial state started empty, so it holds power levels only if some were in
    # the full conflicted set; read literally, with none there is no mainline and every
    # position is infinite (timestamps decide), while step 4's checks fall back to each
    # event's own power levels auth event.
    rest = mainline_order(full - power, partial.get(POWER_LEVELS_KEY), graph)
    resolved = iterative_auth_checks(partial, rest, graph)

    # Step 5: what every state set agreed on always wins.
    resolved.update(unconflicted)
    return resolved


# --------------------------------------------------------------------------------------------
# Definitions
# --------------------------------------------------------------------------------------------


def is_power_event(event: Event) -> bool:
    """Power levels, join rules, and kicks/bans of someone else: events that may take away
    someone's ability to act, so they are resolved before the events they might forbid."""
    if event.state_key is None:
        return False
    if event.type in (POWER_LEVELS, JOIN_RULES):
        return True
    return (
        event.type == MEMBER
        and event.membership in ("leave", "ban")
        and event.sender != event.state_key
    )


def auth_difference(state_sets: Sequence[StateMap], graph: EventGraph) -> set[str]:
    """Events in some state set's full auth chain (the union of its events' auth chains, the
    events themselves excluded) but not in all of them."""
    chains: list[set[str]] = []
    for state in state_sets:
        chain: set[str] = set()
        for event_id in state.values():
            chain |= graph.auth_chain(event_id)
        chains.append(chain)
    if not chains:
        return set()
    return set.union(*chains) - set.intersection(*chains)


def conflicted_subgraph(conflicted: set[str], graph: EventGraph) -> set[str]:
    """v12: every event on an auth_events path from one conflicted event to another,
    endpoints included. An event is on such a path exactly when it is in the auth chain of a
    conflicted event and a conflicted event is in its own auth chain."""
    reachable: set[str] = set()
    for event_id in conflicted:
        reachable |= graph.auth_chain(event_id)
    inner = {
        event_id for event_id in reachable if not graph.auth_chain(event_id).isdisjoint(conflicted)
    }
    return inner | conflicted


def sender_power(event: Event, graph: EventGraph) -> PowerLevel:
    """The sender's power level as the event's own auth_events give it (not the resolved
    state): the power levels event it cites, or the room defaults when it cites none."""
    power_levels = graph.auth_event_of_type(event, POWER_LEVELS_KEY)
    create = graph.create_event_for(event)
    if create is None:
        # Events that fail the auth_events checks never reach state; one here is a caller bug.
        raise StateResolutionError(f"{event.event_id} cites no m.room.create event")
    content = power_levels.content if power_levels is not None else None
    return get_user_power_level(event.sender, content, create)


def reverse_topological_power_order(event_ids: set[str], graph: EventGraph) -> list[str]:
    """Kahn's algorithm over the auth DAG restricted to `event_ids`, always taking the
    smallest ready event: highest sender power, then oldest origin_server_ts, then event ID.

    An event waits for every event of the set in its auth *chain*, not only its direct auth
    events, so the ordering stays topological when the path between two of them runs
    through events outside the set."""
    waiting_on: dict[str, int] = {}
    unlocks: dict[str, list[str]] = {event_id: [] for event_id in event_ids}
    for event_id in event_ids:
        before = graph.auth_chain(event_id) & event_ids
        waiting_on[event_id] = len(before)
        for earlier in before:
            unlocks[earlier].append(event_id)
    ready = [_power_sort_key(e, graph) for e in event_ids if waiting_on[e] == 0]
    heapq.heapify(ready)
    ordered: list[str] = []
    while ready:
        *_, event_id = heapq.heappop(ready)
        ordered.append(event_id)
        for later in unlocks[event_id]:
            waiting_on[later] -= 1
            if waiting_on[later] == 0:
                heapq.heappush(ready, _power_sort_key(later, graph))
    return ordered


def _power_sort_key(event_id: str, graph: EventGraph) -> tuple[PowerLevel, int, str]:
    event = graph.get(event_id)
    return (-sender_power(event, graph), event.origin_server_ts, event_id)


def mainline_order(
    event_ids: Iterable[str], power_levels_id: str | None, graph: EventGraph
) -> list[str]:
    """Sorts events by the mainline of `power_levels_id`: those whose power levels ancestry
    joins the mainline earliest (or never) first, then by origin_server_ts, then event ID."""
    mainline: dict[str, int] = {}
    current = power_levels_id
    while current is not None:
        mainline[current] = len(mainline)
        current = _cited_power_levels(current, graph)
    positions: dict[str, float] = {}

    def sort_key(event_id: str) -> tuple[float, int, str]:
        position = _mainline_position(event_id, mainline, positions, graph)
        return (-position, graph.get(event_id).origin_server_ts, event_id)

    return sorted(event_ids, key=sort_key)


def _cited_power_levels(event_id: str, graph: EventGraph) -> str | None:
    cited = graph.auth_event_of_type(graph.get(event_id), POWER_LEVELS_KEY)
    return cited.event_id if cited is not None else None


def _mainline_position(
    event_id: str, mainline: dict[str, int], memo: dict[str, float], graph: EventGraph
) -> float:
    """The index in the mainline of the first power levels event met walking up from the
    event through cited power levels events (the event itself is not counted), or infinity
    if the walk never meets the mainline. `memo` remembers each power levels event passed,
    since events of the same era share their walk."""
    walked: list[str] = []
    position = math.inf
    current = _cited_power_levels(event_id, graph)
    while current is not None:
        if current in mainline:
            position = mainline[current]
            break
        if current in memo:
            position = memo[current]
            break
        walked.append(current)
        current = _cited_power_levels(current, graph)
    for passed in walked:
        memo[passed] = position
    return position


def iterative_auth_checks(
    start: StateMap, event_ids: Iterable[str], graph: EventGraph
) -> dict[StateKey, str]:
    """Applies each event in order to a copy of `start` if the auth rules allow it against
    that state (filled in from the event's own non-rejected auth events where the state lacks
    a key); refused events are skipped, not fatal."""
    state = dict(start)
    for event_id in event_ids:
        event = graph.get(event_id)
        if event.state_key is None:
            continue
        if is_allowed(event, auth_state_for(event, state, graph)):
            state[event.state_tuple] = event_id
    return state
