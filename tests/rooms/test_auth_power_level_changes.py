"""The m.room.power_levels rule: value types per room version and what a sender may change."""

from __future__ import annotations

import math

import pytest

from homeserver.errors import AuthError
from tests.rooms.event_factory import ALICE, BOB, CAROL, DAVE, Room, standard_room

VERSIONS = ["1", "6", "10", "11", "12"]
PL = "m.room.power_levels"


def refused(room: Room, sender: str, content: dict, match: str) -> None:
    with pytest.raises(AuthError, match=match):
        room.check(room.build(PL, sender, content, state_key=""))


def allowed(room: Room, sender: str, content: dict) -> None:
    room.send(PL, sender, content, state_key="")


def users(room: Room, **levels: int) -> dict:
    """Alice's 100 (except in v12) plus the given users, keyed by the module's user IDs."""
    names = {"bob": BOB, "carol": CAROL, "dave": DAVE}
    base = {} if room.version.additional_creators else {ALICE: 100}
    base.update({names[k]: v for k, v in levels.items()})
    return base


def moderated_room(version: str) -> Room:
    """Bob is a moderator (50) who may send power levels; Carol has 50 too, Dave 10."""
    room = standard_room(
        version,
        users={BOB: 50, CAROL: 50, DAVE: 10},
        events={PL: 50, "m.room.name": 50, "m.room.topic": 60},
    )
    for user in (BOB, CAROL, DAVE):
        room.member(user, "join")
    return room


def current(room: Room) -> dict:
    return dict(room.state[(PL, "")].content)


# ----------------------------------------------------------------------- first power levels


@pytest.mark.parametrize("version", VERSIONS)
def test_first_power_levels_allowed(version):
    room = Room(version)
    room.member(ALICE, "join")
    allowed(room, ALICE, {"users": users(room, bob=100), "ban": 1000})


@pytest.mark.parametrize("version", VERSIONS)
def test_first_power_levels_without_users_allowed(version):
    room = Room(version)
    room.member(ALICE, "join")
    allowed(room, ALICE, {"events_default": 0})


@pytest.mark.parametrize("version", VERSIONS)
def test_non_creator_cannot_send_first_power_levels(version):
    room = Room(version)
    room.member(ALICE, "join")
    room.send("m.room.join_rules", ALICE, {"join_rule": "public"}, state_key="")
    room.member(BOB, "join")
    refused(room, BOB, {"users": {BOB: 100}}, "power level to send")


# ----------------------------------------------------------------------- shape of content


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("bad_key", ["alice", "@alice", "#room:a.test", "@a:bad host", ""])
def test_users_keys_must_be_user_ids(version, bad_key):
    room = standard_room(version)
    refused(room, ALICE, {"users": {**users(room), bad_key: 0}}, "not a user ID")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("bad_users", [[], "x", None, 5])
def test_users_must_be_an_object(version, bad_users):
    room = standard_room(version)
    refused(room, ALICE, {"users": bad_users}, "users must be an object")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("bad_level", [True, None, [1], {"a": 1}, "5x", "5.5"])
def test_users_values_must_be_integers(version, bad_level):
    room = standard_room(version)
    refused(room, ALICE, {"users": {**users(room), BOB: bad_level}}, "must be an integer")


@pytest.mark.parametrize("version", ["1", "6", "9"])
def test_string_levels_allowed_before_v10(version):
    room = standard_room(version)
    allowed(
        room,
        ALICE,
        {
            "users": {ALICE: "100", BOB: " +050 "},
            "ban": "50",
            "events": {"m.room.name": "60"},
            "state_default": "50",
        },
    )
    room.member(BOB, "join")
    # Bob's " +050 " reads as 50: enough for state_default, not for m.room.name.
    room.send("m.room.topic", BOB, {"topic": "t"}, state_key="")
    with pytest.raises(AuthError, match="power level to send"):
        room.check(room.build("m.room.name", BOB, {"name": "n"}, state_key=""))


@pytest.mark.parametrize("version", ["10", "11", "12"])
@pytest.mark.parametrize(
    "key", ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"]
)
def test_v10_named_levels_must_be_integers(version, key):
    room = standard_room(version)
    refused(room, ALICE, {"users": users(room), key: "50"}, f"{key} must be an integer")
    refused(room, ALICE, {"users": users(room), key: 50.0}, f"{key} must be an integer")
    refused(room, ALICE, {"users": users(room), key: None}, f"{key} must be an integer")


@pytest.mark.parametrize("version", ["10", "11", "12"])
@pytest.mark.parametrize("key", ["events", "notifications"])
@pytest.mark.parametrize("bad", [{"x": "50"}, {"x": None}, [], "x"])
def test_v10_events_and_notifications_must_map_to_integers(version, key, bad):
    room = standard_room(version)
    refused(room, ALICE, {"users": users(room), key: bad}, f"{key} must be an object")


@pytest.mark.parametrize("version", ["10", "11", "12"])
def test_v10_string_user_levels_refused(version):
    room = standard_room(version)
    refused(room, ALICE, {"users": {**users(room), BOB: "50"}}, "must be an integer")


@pytest.mark.parametrize("version", ["1", "5"])
def test_float_levels_truncated_before_v6(version):
    room = standard_room(version)
    allowed(room, ALICE, {"users": {ALICE: 100.9, BOB: 50.57}, "state_default": 50.2})
    room.member(BOB, "join")
    room.send("m.room.topic", BOB, {"topic": "t"}, state_key="")


# v3-v5 events with such values cannot even be hashed into an event ID, so v1-v2 only.
@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_infinite_floats_refused_before_v6(version, value):
    room = standard_room(version)
    refused(room, ALICE, {"users": {ALICE: 100, BOB: value}}, "infinite")
    refused(room, ALICE, {"users": {ALICE: 100}, "ban": value}, "infinite")
    refused(room, ALICE, {"users": {ALICE: 100}, "events": {"x": value}}, "infinite")


@pytest.mark.parametrize("version", ["6", "9"])
def test_float_user_levels_refused_from_v6(version):
    room = standard_room(version)
    refused(room, ALICE, {"users": {ALICE: 100, BOB: 50.5}}, "must be an integer")


@pytest.mark.parametrize("version", ["1", "6", "9"])
def test_garbage_named_levels_not_checked_before_v10(version):
    # Before v10 only `users` is type-checked; unreadable values fall back to the defaults.
    room = standard_room(version)
    allowed(room, ALICE, {"users": users(room), "ban": "lots", "events": "none"})


# ----------------------------------------------------------------------- changes


@pytest.mark.parametrize("version", VERSIONS)
def test_raising_someone_above_yourself_refused(version):
    room = moderated_room(version)
    content = current(room)
    content["users"] = users(room, bob=50, carol=50, dave=51)
    refused(room, BOB, content, f"cannot raise {DAVE}")
    content["users"] = users(room, bob=50, carol=50, dave=50)
    allowed(room, BOB, content)


@pytest.mark.parametrize("version", VERSIONS)
def test_adding_user_above_yourself_refused(version):
    room = moderated_room(version)
    content = current(room)
    content["users"] = {**content["users"], "@new:n.test": 51}
    refused(room, BOB, content, "cannot raise")


@pytest.mark.parametrize("version", VERSIONS)
def test_raising_yourself_refused(version):
    room = moderated_room(version)
    content = current(room)
    content["users"] = users(room, bob=51, carol=50, dave=10)
    refused(room, BOB, content, f"cannot raise {BOB}")


@pytest.mark.parametrize("version", VERSIONS)
def test_changing_equal_peer_refused(version):
    room = moderated_room(version)
    content = current(room)
    content["users"] = users(room, bob=50, carol=10, dave=10)
    refused(room, BOB, content, f"cannot change the level of {CAROL}")
    content["users"] = users(room, bob=50, dave=10)  # removing Carol
    refused(room, BOB, content, f"cannot change the level of {CAROL}")


@pytest.mark.parametrize("version", VERSIONS)
def test_demoting_lower_user_and_yourself_allowed(version):
    room = moderated_room(version)
    content = current(room)
    content["users"] = users(room, bob=50, carol=50)  # Dave removed
    allowed(room, BOB, content)
    content = current(room)
    content["users"] = users(room, bob=40, carol=50)  # demoting oneself
    allowed(room, BOB, content)


@pytest.mark.parametrize("version", ["1", "6"])
def test_rewriting_a_level_as_string_is_no_change(version):
    room = moderated_room(version)
    content = current(room)
    content["users"] = {k: str(v) for k, v in content["users"].items()}
    allowed(room, BOB, content)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "key", ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"]
)
def test_named_level_changes(version, key):
    room = moderated_room(version)
    refused(room, BOB, {**current(room), key: 51}, f"cannot set {key}")
    allowed(room, BOB, {**current(room), key: 50})
    allowed(room, ALICE, {**current(room), key: 75})
    refused(room, BOB, {**current(room), key: 0}, f"cannot change {key}")
    without = current(room)
    del without[key]
    refused(room, BOB, without, f"cannot change {key}")


@pytest.mark.parametrize("version", VERSIONS)
def test_events_changes(version):
    room = moderated_room(version)
    content = current(room)
    # m.room.topic is at 60, above Bob: he may not lower, remove or keep-and-change it.
    content["events"] = {**content["events"], "m.room.topic": 50}
    refused(room, BOB, content, "cannot change events.m.room.topic")
    content = current(room)
    content["events"] = {k: v for k, v in content["events"].items() if k != "m.room.topic"}
    refused(room, BOB, content, "cannot change events.m.room.topic")
    content = current(room)
    content["events"] = {**content["events"], "m.custom": 51}
    refused(room, BOB, content, "cannot set events.m.custom")
    content["events"] = {**content["events"], "m.custom": 50, "m.room.name": 0}
    allowed(room, BOB, content)


@pytest.mark.parametrize("version", ["6", "10", "11", "12"])
def test_notifications_changes_checked_from_v6(version):
    room = moderated_room(version)
    refused(room, BOB, {**current(room), "notifications": {"room": 51}}, "notifications.room")
    allowed(room, ALICE, {**current(room), "notifications": {"room": 60}})
    refused(room, BOB, {**current(room), "notifications": {"room": 0}}, "notifications.room")
    allowed(room, BOB, {**current(room), "notifications": {"room": 60, "other": 1}})


@pytest.mark.parametrize("version", ["1", "5"])
def test_notifications_not_checked_before_v6(version):
    room = moderated_room(version)
    allowed(room, BOB, {**current(room), "notifications": {"room": 1000}})


@pytest.mark.parametrize("version", VERSIONS)
def test_power_level_sender_needs_send_level(version):
    room = moderated_room(version)
    refused(room, DAVE, current(room), "power level to send")


@pytest.mark.parametrize("version", VERSIONS)
def test_power_level_sender_must_be_joined(version):
    room = moderated_room(version)
    room.member(BOB, "leave")
    refused(room, BOB, current(room), "not joined")


# ----------------------------------------------------------------------- v12 creators


def v12_room() -> Room:
    room = Room("12", create_content={"additional_creators": [CAROL]})
    room.member(ALICE, "join")
    room.send(PL, ALICE, {"users": {BOB: 100}}, state_key="")
    room.send("m.room.join_rules", ALICE, {"join_rule": "invite"}, state_key="")
    for user in (BOB, CAROL):
        room.member(user, "invite", sender=ALICE)
        room.member(user, "join")
    return room


@pytest.mark.parametrize("creator", [ALICE, CAROL])
def test_v12_creators_in_users_refused(creator):
    room = v12_room()
    refused(room, ALICE, {"users": {BOB: 100, creator: 100}}, f"room creator {creator}")


def test_v12_creators_in_users_refused_also_for_first_power_levels():
    room = Room("12")
    room.member(ALICE, "join")
    refused(room, ALICE, {"users": {ALICE: 100}}, "room creator")


def test_v12_creators_change_anything():
    room = v12_room()
    big = 2**53 - 1
    allowed(room, CAROL, {"users": {BOB: big}, "ban": big, "events": {PL: big}})
    allowed(room, ALICE, {"users": {}, "ban": 0, "events": {}})


def test_v12_hundred_cannot_touch_another_hundred_but_creators_can():
    room = v12_room()
    room.member(DAVE, "invite", sender=ALICE)
    room.member(DAVE, "join")
    allowed(room, ALICE, {"users": {BOB: 100, DAVE: 100}})
    refused(room, BOB, {"users": {BOB: 100, DAVE: 0}}, f"cannot change the level of {DAVE}")
    allowed(room, CAROL, {"users": {BOB: 100, DAVE: 0}})


def test_v11_creator_is_not_special_with_power_levels():
    room = Room("11")
    room.member(ALICE, "join")
    room.send(PL, ALICE, {"users": {ALICE: 50, BOB: 50}}, state_key="")
    refused(room, ALICE, {"users": {ALICE: 50, BOB: 40}}, f"cannot change the level of {BOB}")
