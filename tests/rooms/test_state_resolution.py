"""State resolution v1, v2 and v2 as revised by room version 12 (homeserver.rooms.state_resolution).

Each test grows a room with real auth_events, forks it, and resolves the forks' states. The
expected winner is worked out from the spec's algorithm in the test's comments; where a rule
is the point of the test, a control case shows the result changes without it.
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

import pytest

from homeserver.events.event import Event
from homeserver.rooms.auth_rules import auth_types_for_event
from homeserver.rooms.state_resolution import (
    MissingEventsError,
    StateResolutionError,
    find_missing_events,
    resolve_state,
)
from homeserver.rooms.state_resolution import v2 as v2_module
from homeserver.rooms.state_resolution.common import EventGraph
from homeserver.rooms.state_resolution.v2 import (
    auth_difference,
    conflicted_subgraph,
    reverse_topological_power_order,
)
from tests.rooms.event_factory import ALICE, BOB, CAROL, DAVE, Room, make_event

PL = "m.room.power_levels"
JR = "m.room.join_rules"
MEMBER = "m.room.member"
TOPIC = "m.room.topic"
NAME = "m.room.name"
PL_KEY = (PL, "")
JR_KEY = (JR, "")
TOPIC_KEY = (TOPIC, "")

# Room versions by algorithm: v2 proper spans 2-11 (the event format changes at 3 and 4).
V2_VERSIONS = ["2", "4", "10", "11"]
V2_FAMILY = [*V2_VERSIONS, "12"]


class Branch:
    """One line of a room's history. Every event cites the auth events the selection rules
    pick from this branch's state, is checked against that state, and is recorded in the
    `events` map that all forks of the room share."""

    def __init__(self, room: Room, events: dict[str, Event]) -> None:
        self.room = room
        self.events = events

    @property
    def version(self):
        return self.room.version

    @property
    def create(self) -> Event:
        return self.room.create

    @property
    def state(self) -> dict[tuple[str, str], Event]:
        return self.room.state

    def depth(self, offset: int) -> int:
        """A depth `offset` past this branch's last event (factory depths are global)."""
        return self.room.last.depth + offset

    def send(
        self, event_type: str, sender: str, content: dict[str, Any], state_key: str = "", **extra
    ) -> Event:
        keys = auth_types_for_event(self.version, event_type, sender, state_key, content)
        auth = [self.room.state[key] for key in keys if key in self.room.state]
        event = self.room.build(
            event_type, sender, content, state_key=state_key, auth=auth, **extra
        )
        self.room.check(event)
        self.events[event.event_id] = event
        return self.room.apply(event)

    def member(self, target: str, membership: str, sender: str | None = None) -> Event:
        return self.send(MEMBER, sender or target, {"membership": membership}, target)

    def fork(self) -> Branch:
        room = copy.copy(self.room)
        room.state = dict(self.room.state)
        return Branch(room, self.events)

    def state_ids(self) -> dict[tuple[str, str], str]:
        return {key: event.event_id for key, event in self.room.state.items()}


def new_room(version: str, users: dict[str, int] | None = None, **power_levels: Any) -> Branch:
    """Alice creates and joins a public room; she has 100 (v12: creator, so not listed)."""
    room = Room(version)
    branch = Branch(room, {room.create.event_id: room.create})
    branch.member(ALICE, "join")
    levels = {} if branch.version.additional_creators else {ALICE: 100}
    levels.update(users or {})
    branch.send(PL, ALICE, {"users": levels, **power_levels})
    branch.send(JR, ALICE, {"join_rule": "public"})
    return branch


def resolve(*branches: Branch) -> dict[tuple[str, str], str]:
    first = branches[0]
    return resolve_state(first.version, [b.state_ids() for b in branches], first.events)


def levels(branch: Branch, **users: int) -> dict[str, Any]:
    """A `users` map: Alice's 100 where she is not a creator, plus `users`."""
    base = {} if branch.version.additional_creators else {ALICE: 100}
    return {"users": {**base, **users}}


# ------------------------------------------------------------ (1) unconflicted state


@pytest.mark.parametrize("version", ["1", *V2_FAMILY])
def test_unconflicted_state_passes_through_unchecked(version):
    room = new_room(version, users={BOB: 50}, events={TOPIC: 50})
    room.member(BOB, "join")
    topic = room.send(TOPIC, BOB, {"topic": "Bob's topic"})
    a, b = room.fork(), room.fork()
    demote = a.send(PL, ALICE, levels(a, **{BOB: 0}), events={TOPIC: 50})
    name = b.send(NAME, ALICE, {"name": "B"})

    resolved = resolve(a, b)

    # Bob may no longer set the topic under the resolved power levels, but his topic is in
    # both states, so it is never re-checked. The conflicted keys resolve normally.
    expected = room.state_ids() | {PL_KEY: demote.event_id, (NAME, ""): name.event_id}
    assert resolved == expected
    assert resolved[TOPIC_KEY] == topic.event_id


@pytest.mark.parametrize("version", V2_FAMILY)
def test_one_state_set_or_identical_sets_resolve_to_themselves(version):
    room = new_room(version)
    assert resolve(room) == room.state_ids()
    assert resolve(room, room.fork()) == room.state_ids()


# ------------------------------------------------------------ (2) power ordering


@pytest.mark.parametrize("version", V2_FAMILY)
def test_more_powerful_sender_goes_first_so_demotion_beats_ban(version):
    room = new_room(version, users={BOB: 50})
    for user in (BOB, CAROL):
        room.member(user, "join")
    carol_join = room.state[(MEMBER, CAROL)]
    a, b = room.fork(), room.fork()
    # Bob's ban is sent first (older origin_server_ts), Alice's demotion of Bob later.
    ban = a.member(CAROL, "ban", sender=BOB)
    demote = b.send(PL, ALICE, levels(b, **{BOB: 0}))

    resolved = resolve(a, b)

    # Both are power events; Alice outranks Bob (by the power levels in their auth events),
    # so the demotion is applied first and the ban then fails: Bob has 0 < ban level 50.
    # Carol's join (the other candidate for her key) passes, so she stays in the room.
    graph = EventGraph(room.version, room.events)
    order = reverse_topological_power_order({ban.event_id, demote.event_id}, graph)
    assert order == [demote.event_id, ban.event_id]
    assert resolved[PL_KEY] == demote.event_id
    assert resolved[(MEMBER, CAROL)] == carol_join.event_id


@pytest.mark.parametrize("version", V2_FAMILY)
@pytest.mark.parametrize("bob_first", [True, False])
def test_equal_power_falls_back_to_origin_server_ts(version, bob_first):
    room = new_room(version, users={BOB: 50, CAROL: 50})
    for user in (BOB, CAROL):
        room.member(user, "join")
    a, b = room.fork(), room.fork()
    sends = [
        lambda: a.send(JR, BOB, {"join_rule": "invite"}),
        lambda: b.send(JR, CAROL, {"join_rule": "private"}),
    ]
    first, second = [send() for send in (sends if bob_first else sends[::-1])]

    # Same power: the older event is ordered first, so the newer one is applied last and wins.
    assert resolve(a, b)[JR_KEY] == second.event_id != first.event_id


@pytest.mark.parametrize("version", V2_FAMILY)
def test_power_events_bring_their_conflicted_auth_events_along(version):
    room = new_room(version, users={BOB: 50, DAVE: 60})
    for user in (BOB, CAROL):
        room.member(user, "join")
    a, b = room.fork(), room.fork()
    dave_join = a.member(DAVE, "join")
    kick = a.member(CAROL, "leave", sender=DAVE)  # cites dave_join
    invite_only = b.send(JR, BOB, {"join_rule": "invite"})

    resolved = resolve(a, b)

    # Dave's join is no power event, but it is in the kick's auth chain and conflicted, so
    # step 1 sorts it with the power events: Dave (60) outranks Bob (50), so his join is
    # checked while the room is still public and stands. Left to step 3 it would come after
    # Bob's `invite` rule and be refused.
    assert resolved[JR_KEY] == invite_only.event_id
    assert resolved[(MEMBER, CAROL)] == kick.event_id
    assert resolved[(MEMBER, DAVE)] == dave_join.event_id


def test_power_ordering_respects_auth_paths_through_events_outside_the_set():
    room = new_room("10", users={BOB: 50, DAVE: 60})
    for user in (BOB, CAROL):
        room.member(user, "join")
    bobs_rule = room.send(JR, BOB, {"join_rule": "public"})
    room.member(DAVE, "join")  # cites bobs_rule
    kick = room.member(CAROL, "leave", sender=DAVE)  # cites Dave's join, not bobs_rule
    graph = EventGraph(room.version, room.events)
    # Dave (60) outranks Bob (50), but the kick descends from Bob's rule through Dave's join,
    # which is not in the set: a topological order must still put Bob's rule first.
    order = reverse_topological_power_order({bobs_rule.event_id, kick.event_id}, graph)
    assert order == [bobs_rule.event_id, kick.event_id]


# ------------------------------------------------------------ (3) mainline ordering


@pytest.mark.parametrize("version", V2_FAMILY)
def test_mainline_position_beats_timestamp_for_topics(version):
    room = new_room(version, users={BOB: 50}, events={TOPIC: 50})
    room.member(BOB, "join")
    old_pl = room.state[PL_KEY]
    a, b = room.fork(), room.fork()
    new_pl = a.send(PL, ALICE, levels(a, **{BOB: 50, CAROL: 10}), events={TOPIC: 50})
    topic_a = a.send(TOPIC, BOB, {"topic": "A"})  # cites new_pl
    topic_b = b.send(TOPIC, BOB, {"topic": "B"})  # cites old_pl, and is newer

    resolved = resolve(a, b)

    # The resolved power levels are new_pl, mainline [new_pl, old_pl]. topic_b's closest
    # mainline power levels is old_pl (position 1), topic_a's is new_pl (position 0); the
    # greater position sorts first, so topic_a is applied last despite its older timestamp.
    assert resolved[PL_KEY] == new_pl.event_id
    assert topic_b.auth_event_ids.count(old_pl.event_id) == 1
    assert resolved[TOPIC_KEY] == topic_a.event_id


@pytest.mark.parametrize("version", V2_FAMILY)
def test_same_mainline_position_falls_back_to_timestamp(version):
    room = new_room(version, users={BOB: 50}, events={TOPIC: 50})
    room.member(BOB, "join")
    a, b = room.fork(), room.fork()
    a.send(TOPIC, BOB, {"topic": "A"})
    newer = b.send(TOPIC, ALICE, {"topic": "B"})
    # Both cite the same power levels; the newer one is applied last.
    assert resolve(a, b)[TOPIC_KEY] == newer.event_id


# ------------------------------------------------------------ (4) auth difference


@pytest.mark.parametrize("version", V2_FAMILY)
def test_auth_difference_events_take_part(version):
    room = new_room(version, users={BOB: 50})
    room.member(BOB, "join")
    public = room.state[JR_KEY]
    a = room.fork()
    bobs_rule = a.send(JR, BOB, {"join_rule": "public"})
    dave_join = a.member(DAVE, "join")  # cites bobs_rule
    invite_only = a.send(JR, ALICE, {"join_rule": "invite"})

    # bobs_rule is in neither state, only in the auth chain of a's state (via Dave's join).
    # So is Bob's join: it is in both states, but a state's auth chain is that of its events,
    # which leaves the events themselves out, and nothing in the base state cites it.
    graph = EventGraph(room.version, room.events)
    states = [a.state_ids(), room.state_ids()]
    bob_join = room.state[(MEMBER, BOB)]
    assert auth_difference(states, graph) == {bobs_rule.event_id, bob_join.event_id}

    resolved = resolve(a, room)

    # The join rules in the full conflicted set are Alice's `public` and `invite` and Bob's
    # `public`. Unrelated in the auth DAG, they sort by sender power: Alice's two (oldest
    # first), then Bob's, which is allowed and so ends up in the state. Dave's join then
    # passes. Without the auth difference the `invite` rule would win and refuse Dave (in v12
    # the conflicted state subgraph also reaches Bob's rule, via Dave's join and Bob's).
    assert resolved[JR_KEY] == bobs_rule.event_id
    assert {public.event_id, invite_only.event_id}.isdisjoint(resolved.values())
    assert resolved[(MEMBER, DAVE)] == dave_join.event_id


# ------------------------------------------------------------ (5) refused events


@pytest.mark.parametrize("version", V2_FAMILY)
def test_event_not_allowed_by_resolved_power_levels_is_dropped(version):
    room = new_room(version, users={BOB: 50}, events={TOPIC: 50})
    room.member(BOB, "join")
    alices_topic = room.send(TOPIC, ALICE, {"topic": "Alice's"})
    a, b = room.fork(), room.fork()
    demote = a.send(PL, ALICE, levels(a, **{BOB: 0}), events={TOPIC: 50})
    bobs_topic = b.send(TOPIC, BOB, {"topic": "Bob's"})  # allowed when sent, on its branch

    resolved = resolve(a, b)

    # The topic key is conflicted (Alice's on a, Bob's on b). Both sort after the power
    # levels; Bob's would be applied last but fails against the resolved power levels (Bob
    # has 0 < 50), so Alice's stays.
    assert resolved[PL_KEY] == demote.event_id
    assert resolved[TOPIC_KEY] == alices_topic.event_id != bobs_topic.event_id


@pytest.mark.parametrize("version", V2_FAMILY)
def test_rejected_auth_events_are_not_used_to_fill_the_auth_state(version):
    room = new_room(version, events={TOPIC: 0, NAME: 0})
    line = room.fork()
    dave_join = line.member(DAVE, "join")
    topic = line.send(TOPIC, DAVE, {"topic": "Dave's"})
    name = line.send(NAME, DAVE, {"name": "Dave's"})
    # Two states that each hold one of Dave's events but not his join (so no state set gives
    # his membership, and the join is in both auth chains: not in the full conflicted set).
    states = [
        room.state_ids() | {TOPIC_KEY: topic.event_id},
        room.state_ids() | {(NAME, ""): name.event_id},
    ]

    # Accepted, the join is borrowed from each event's auth_events and both pass.
    resolved = resolve_state(room.version, states, room.events)
    assert (resolved[TOPIC_KEY], resolved[(NAME, "")]) == (topic.event_id, name.event_id)

    # Rejected, it may not be borrowed: Dave is not joined, so both are refused.
    rejected = Event(
        dict(dave_join.pdu), room.version, event_id=dave_join.event_id, rejected_reason="auth_error"
    )
    events = room.events | {dave_join.event_id: rejected}
    resolved = resolve_state(room.version, states, events)
    assert TOPIC_KEY not in resolved and (NAME, "") not in resolved


# ------------------------------------------------------------ (6) room version 1


def _sha1(event: Event) -> str:
    return hashlib.sha1(event.event_id.encode()).hexdigest()


def test_v1_highest_depth_wins_not_newest():
    room = new_room("1")
    a, b = room.fork(), room.fork()
    deep = a.send(TOPIC, ALICE, {"topic": "deep"}, depth=room.depth(10))
    newer = b.send(TOPIC, ALICE, {"topic": "newer but shallower"}, depth=room.depth(5))
    assert resolve(a, b)[TOPIC_KEY] == deep.event_id

    # Control: the same shape in room version 2 goes by mainline, then timestamp.
    room2 = new_room("2")
    a2, b2 = room2.fork(), room2.fork()
    a2.send(TOPIC, ALICE, {"topic": "deep"}, depth=room2.depth(10))
    newer2 = b2.send(TOPIC, ALICE, {"topic": "newer"}, depth=room2.depth(5))
    assert resolve(a2, b2)[TOPIC_KEY] == newer2.event_id
    assert newer.event_id != deep.event_id


def test_v1_equal_depth_lowest_sha1_of_event_id_wins():
    room = new_room("1")
    forks = [room.fork() for _ in range(3)]
    topics = [
        f.send(TOPIC, ALICE, {"topic": str(i)}, depth=room.depth(1)) for i, f in enumerate(forks)
    ]
    winner = min(topics, key=_sha1)
    assert resolve(*forks)[TOPIC_KEY] == winner.event_id


def test_v1_other_conflicts_take_the_best_event_that_passes_auth_in_r():
    room = new_room("1", users={BOB: 50}, events={TOPIC: 50})
    room.member(BOB, "join")
    a, b = room.fork(), room.fork()
    demote = a.send(PL, ALICE, levels(a, **{BOB: 0}), events={TOPIC: 50}, depth=room.depth(1))
    alices = a.send(TOPIC, ALICE, {"topic": "Alice's"}, depth=room.depth(2))
    bobs = b.send(TOPIC, BOB, {"topic": "Bob's"}, depth=room.depth(9))

    resolved = resolve(a, b)

    # Power levels first: the old and the new one conflict; by ascending depth the old one is
    # taken, then `demote` is allowed on top of it. Of the topics, Bob's has the greatest
    # depth but fails in R (Bob now has 0 < 50), so Alice's is picked.
    assert resolved[PL_KEY] == demote.event_id
    assert resolved[TOPIC_KEY] == alices.event_id != bobs.event_id


def test_v1_power_levels_pass_stops_at_the_first_refused_event():
    room = new_room("1", users={BOB: 50}, events={PL: 50})
    room.member(BOB, "join")
    a, b, c = room.fork(), room.fork(), room.fork()
    d = room.depth
    demote = a.send(PL, ALICE, levels(a, **{BOB: 0}), events={PL: 50}, depth=d(1))
    b.send(PL, BOB, levels(b, **{BOB: 50}), events={PL: 50}, events_default=5, depth=d(2))
    alices_later = c.send(PL, ALICE, levels(c, **{BOB: 50}), events={PL: 50}, invite=10, depth=d(3))

    # Ascending depth: `demote` is taken as is; Bob's change is then refused in R (Bob has 0),
    # which ends the pass, so Alice's deeper and allowed change is never considered.
    assert resolve(a, b, c)[PL_KEY] == demote.event_id
    # Control: without Bob's fork, Alice's later change is reached and allowed.
    assert resolve(a, c)[PL_KEY] == alices_later.event_id


def test_v1_keeps_keys_that_some_states_lack_without_checking_them():
    room = new_room("1", users={BOB: 50}, events={NAME: 50})
    room.member(BOB, "join")
    a, b = room.fork(), room.fork()
    name = a.send(NAME, BOB, {"name": "only in a"})
    demote = b.send(PL, ALICE, levels(b, **{BOB: 0}), events={NAME: 50})
    # v1 calls a key conflicting only when states give it different events, so Bob's name
    # is in R from the start although the resolved power levels no longer allow it.
    resolved = resolve(a, b)
    assert resolved[PL_KEY] == demote.event_id
    assert resolved[(NAME, "")] == name.event_id


# ------------------------------------------------------------ (7) room version 12


def _banned_after_setting_join_rules(version: str):
    room = new_room(version, users={BOB: 50})
    room.member(BOB, "join")
    bobs_rule = room.send(JR, BOB, {"join_rule": "invite"})
    room.member(BOB, "ban", sender=ALICE)
    a = room.fork()
    alices_rule = a.send(JR, ALICE, {"join_rule": "public"})
    return a, room, bobs_rule, alices_rule


def test_v12_iterative_auth_checks_start_from_an_empty_state():
    # v11: the power events are checked against the unconflicted state, where Bob is banned,
    # so Bob's (older) join rules fail and Alice's stand.
    a, base, bobs_rule, alices_rule = _banned_after_setting_join_rules("11")
    assert resolve(a, base)[JR_KEY] == alices_rule.event_id

    # v12: step 2 starts empty, so Bob's join rules are checked against their own auth
    # events (Bob joined, 50), pass, and being ordered after Alice's (less power) win.
    a, base, bobs_rule, alices_rule = _banned_after_setting_join_rules("12")
    assert resolve(a, base)[JR_KEY] == bobs_rule.event_id


def _reset_room(version: str):
    """A linear history, and a second state set where Dave's membership was reset to his ban
    while a later event of Dave's (his name change) survived: a state reset."""
    room = new_room(version, events={TOPIC: 0, NAME: 0})
    room.member(DAVE, "join")
    ban = room.member(DAVE, "ban", sender=ALICE)
    reset = room.state_ids()
    unban = room.member(DAVE, "leave", sender=ALICE)
    rejoin = room.member(DAVE, "join")
    topic = room.send(TOPIC, DAVE, {"topic": "Dave's"})
    name = room.send(NAME, DAVE, {"name": "Dave's"})
    leave = room.member(DAVE, "leave")
    reset[(NAME, "")] = name.event_id
    return room, reset, dict(ban=ban, unban=unban, rejoin=rejoin, topic=topic, leave=leave)


def test_v12_conflicted_state_subgraph():
    room, reset, ev = _reset_room("12")
    states = [reset, room.state_ids()]
    ids = {key: event.event_id for key, event in ev.items()}
    graph = EventGraph(room.version, room.events)

    # Conflicted: Dave's membership (ban / leave) and the topic (missing from the reset).
    # The unban and the rejoin lie on auth paths from the topic and the leave down to the
    # ban, and are in both auth chains (so not in the auth difference).
    conflicted = {ids["ban"], ids["leave"], ids["topic"]}
    assert conflicted_subgraph(conflicted, graph) == conflicted | {ids["unban"], ids["rejoin"]}
    assert auth_difference(states, graph) == set()

    # Replaying the unban and rejoin lets the topic and the leave pass: the reset is undone.
    resolved = resolve_state(room.version, states, room.events)
    assert resolved[(MEMBER, DAVE)] == ids["leave"]
    assert resolved[TOPIC_KEY] == ids["topic"]


def test_v12_without_the_subgraph_the_ban_would_stand(monkeypatch):
    room, reset, ev = _reset_room("12")
    monkeypatch.setattr(v2_module, "conflicted_subgraph", lambda conflicted, graph: conflicted)
    resolved = resolve_state(room.version, [reset, room.state_ids()], room.events)
    assert resolved[(MEMBER, DAVE)] == ev["ban"].event_id
    assert TOPIC_KEY not in resolved


def test_v11_has_no_subgraph_and_keeps_the_reset():
    room, reset, ev = _reset_room("11")
    resolved = resolve_state(room.version, [reset, room.state_ids()], room.events)
    assert resolved[(MEMBER, DAVE)] == ev["ban"].event_id
    assert TOPIC_KEY not in resolved


@pytest.mark.parametrize(("version", "winner"), [("11", "alice"), ("12", "bob")])
def test_v12_creator_outranks_everyone_in_power_ordering(version, winner):
    room = new_room(version, users={BOB: 100})
    room.member(BOB, "join")
    a, b = room.fork(), room.fork()
    bobs = a.send(JR, BOB, {"join_rule": "invite"})  # older
    alices = b.send(JR, ALICE, {"join_rule": "knock"})
    # v11: both 100, so by timestamp Alice's is applied last. v12: Alice is the creator
    # (infinite power, read from the create event that the room ID names, since auth_events
    # no longer list it), so hers is applied first and Bob's last.
    expected = {"alice": alices, "bob": bobs}[winner]
    assert resolve(a, b)[JR_KEY] == expected.event_id


def test_v12_create_event_is_needed_although_no_event_cites_it():
    room = new_room("12")
    a, b = room.fork(), room.fork()
    a.send(TOPIC, ALICE, {"topic": "A"})
    b.send(TOPIC, ALICE, {"topic": "B"})
    assert all(room.create.event_id not in e.auth_event_ids for e in room.events.values())
    events = {k: v for k, v in room.events.items() if k != room.create.event_id}
    states = [{TOPIC_KEY: a.state_ids()[TOPIC_KEY]}, {TOPIC_KEY: b.state_ids()[TOPIC_KEY]}]
    assert find_missing_events(room.version, states, events) == {room.create.event_id}
    with pytest.raises(MissingEventsError) as caught:
        resolve_state(room.version, states, events)
    assert caught.value.event_ids == {room.create.event_id}


# ------------------------------------------------------------ inputs


@pytest.mark.parametrize("version", V2_FAMILY)
def test_missing_auth_chain_events_are_named(version):
    room = new_room(version, users={BOB: 50})
    room.member(BOB, "join")
    a, b = room.fork(), room.fork()
    a.send(TOPIC, ALICE, {"topic": "A"})
    b.send(TOPIC, BOB, {"topic": "B"})
    power_levels = room.state[PL_KEY].event_id
    events = {k: v for k, v in room.events.items() if k != power_levels}
    states = [a.state_ids(), b.state_ids()]
    for state in states:
        del state[PL_KEY]
    # Only the auth chains still reach the power levels event.
    with pytest.raises(MissingEventsError, match=re.escape(power_levels)) as caught:
        resolve_state(room.version, states, events)
    assert caught.value.event_ids == {power_levels}


def test_v1_needs_only_the_events_in_the_state_sets():
    room = new_room("1")
    a, b = room.fork(), room.fork()
    a.send(TOPIC, ALICE, {"topic": "A"})
    b.send(TOPIC, ALICE, {"topic": "B"})
    states = [a.state_ids(), b.state_ids()]
    wanted = {event_id for state in states for event_id in state.values()}
    events = {k: v for k, v in room.events.items() if k in wanted}
    assert find_missing_events(room.version, states, events) == set()
    assert resolve_state(room.version, states, events)[TOPIC_KEY] in wanted


def test_event_filed_under_the_wrong_key_is_refused():
    room = new_room("10")
    a, b = room.fork(), room.fork()
    topic = a.send(TOPIC, ALICE, {"topic": "A"})
    states = [a.state_ids(), b.state_ids()]
    states[1][(NAME, "")] = topic.event_id
    with pytest.raises(StateResolutionError, match="not the"):
        resolve_state(room.version, states, room.events)


def test_auth_events_cycle_is_an_error():
    version = "2"
    create = make_event(
        version,
        "m.room.create",
        ALICE,
        {"creator": ALICE},
        state_key="",
        room_id="!r:a.test",
        event_id="$create:a.test",
    )
    x = make_event(
        version,
        JR,
        ALICE,
        {"join_rule": "public"},
        state_key="",
        room_id="!r:a.test",
        event_id="$x:a.test",
        auth_events=[["$y:a.test", {}], [create.event_id, {}]],
    )
    y = make_event(
        version,
        PL,
        ALICE,
        {},
        state_key="",
        room_id="!r:a.test",
        event_id="$y:a.test",
        auth_events=[["$x:a.test", {}]],
    )
    events = {e.event_id: e for e in (create, x, y)}
    states = [{JR_KEY: x.event_id, PL_KEY: y.event_id}, {JR_KEY: x.event_id}]
    with pytest.raises(StateResolutionError, match="cycle"):
        resolve_state(create.room_version, states, events)
