"""State resolution for room version 1 (content/rooms/v1.md, "State resolution").

Known to reset state in some forks (the spec says so); kept only so v1 rooms resolve as every
other server resolves them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from homeserver.events.event import Event
from homeserver.rooms.state_resolution.common import (
    JOIN_RULES,
    MEMBER,
    POWER_LEVELS,
    EventGraph,
    StateKey,
    StateMap,
    is_allowed,
)

# The auth-affecting types, resolved first and in this order, each as a chain of changes.
_AUTH_TYPES = (POWER_LEVELS, JOIN_RULES, MEMBER)


def resolve_v1(state_sets: Sequence[StateMap], graph: EventGraph) -> dict[StateKey, str]:
    resolved, conflicts = _split(state_sets, graph)
    # Keys are visited in sorted order: the spec leaves the order within a pass open, and
    # sorting makes it the same on every server.
    for event_type in _AUTH_TYPES:
        for key in sorted(k for k in conflicts if k[0] == event_type):
            _resolve_auth_chain_key(conflicts[key], resolved)
    for key in sorted(k for k in conflicts if k[0] not in _AUTH_TYPES):
        _resolve_other_key(key, conflicts[key], resolved)
    return {key: event.event_id for key, event in resolved.items()}


def _split(
    state_sets: Sequence[StateMap], graph: EventGraph
) -> tuple[dict[StateKey, Event], dict[StateKey, list[Event]]]:
    """R starts as the union of the states minus conflicting events. v1 calls a key
    conflicting only when states give it *different* event IDs, so a key that some states
    simply lack is not a conflict and is kept."""
    union: dict[StateKey, Event] = {}
    conflicts: dict[StateKey, list[Event]] = {}
    for key in {key for state in state_sets for key in state}:
        ids = sorted({state[key] for state in state_sets if key in state})
        if len(ids) == 1:
            union[key] = graph.get(ids[0])
        else:
            conflicts[key] = [graph.get(event_id) for event_id in ids]
    return union, conflicts


def _sha1(event: Event) -> str:
    return hashlib.sha1(event.event_id.encode("utf-8")).hexdigest()


def _resolve_auth_chain_key(events: list[Event], resolved: dict[StateKey, Event]) -> None:
    """Power levels, join rules and each member key: sorted by ascending depth then descending
    sha1(event_id), the first is taken as is and each later one only while the auth rules keep
    allowing them in R; the first refusal ends the pass for this key."""
    ordered = sorted(events, key=_sha1, reverse=True)
    ordered.sort(key=lambda event: event.depth)  # stable: ties keep descending sha1
    first, *rest = ordered
    resolved[first.state_tuple] = first
    for event in rest:
        if not is_allowed(event, resolved):
            return
        resolved[event.state_tuple] = event


def _resolve_other_key(key: StateKey, events: list[Event], resolved: dict[StateKey, Event]) -> None:
    """Other types cannot change who may do what, so one pick suffices: the highest depth,
    then lowest sha1(event_id), among those the auth rules allow in R. If none is allowed the
    key is left out of R: the spec names no fallback."""
    for event in sorted(events, key=lambda event: (-event.depth, _sha1(event))):
        if is_allowed(event, resolved):
            resolved[key] = event
            return
