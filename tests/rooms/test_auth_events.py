"""Non-membership rules: joined senders, send levels, '@' state keys, aliases, redactions."""

from __future__ import annotations

import pytest

from homeserver.errors import AuthError
from tests.rooms.event_factory import ALICE, BOB, CAROL, DAVE, Room, standard_room

VERSIONS = ["1", "6", "10", "11", "12"]


def refused(room: Room, event, match: str) -> None:
    with pytest.raises(AuthError, match=match):
        room.check(event)


@pytest.mark.parametrize("version", VERSIONS)
def test_message_from_non_member_refused(version):
    room = standard_room(version)
    refused(room, room.build("m.room.message", BOB, {"body": "hi"}), "not joined")
    room.member(BOB, "invite", sender=ALICE)
    refused(room, room.build("m.room.message", BOB, {"body": "hi"}), "not joined")
    room.member(BOB, "join")
    room.send("m.room.message", BOB, {"body": "hi"})
    room.member(BOB, "leave")
    refused(room, room.build("m.room.message", BOB, {"body": "hi"}), "not joined")


@pytest.mark.parametrize("version", VERSIONS)
def test_events_default(version):
    room = standard_room(version, users={BOB: 9}, events_default=10)
    room.member(BOB, "join")
    refused(room, room.build("m.room.message", BOB, {"body": "hi"}), "power level to send")
    room.send("m.room.message", ALICE, {"body": "hi"})


@pytest.mark.parametrize("version", VERSIONS)
def test_state_default(version):
    room = standard_room(version, users={BOB: 49})
    room.member(BOB, "join")
    refused(room, room.build("m.room.topic", BOB, {"topic": "t"}, state_key=""), "power level")
    # Messages still use events_default.
    room.send("m.room.message", BOB, {"body": "hi"})


@pytest.mark.parametrize("version", VERSIONS)
def test_events_override_defaults(version):
    room = standard_room(
        version,
        users={BOB: 10},
        events={"m.room.topic": 10, "m.reaction": 20},
    )
    room.member(BOB, "join")
    room.send("m.room.topic", BOB, {"topic": "t"}, state_key="")
    refused(room, room.build("m.reaction", BOB, {}), "power level")


@pytest.mark.parametrize("version", VERSIONS)
def test_without_power_levels_state_needs_50(version):
    room = Room(version)
    room.member(ALICE, "join")
    room.send("m.room.join_rules", ALICE, {"join_rule": "public"}, state_key="")
    room.member(BOB, "join")
    room.send("m.room.message", BOB, {"body": "hi"})
    refused(room, room.build("m.room.topic", BOB, {"topic": "t"}, state_key=""), "power level")
    room.send("m.room.topic", ALICE, {"topic": "t"}, state_key="")


@pytest.mark.parametrize("version", VERSIONS)
def test_user_state_key_must_be_sender(version):
    room = standard_room(version, users={BOB: 50})
    room.member(BOB, "join")
    room.send("m.custom.state", BOB, {}, state_key=BOB)
    refused(room, room.build("m.custom.state", BOB, {}, state_key=ALICE), "state key")
    # Only the '@' prefix is special.
    room.send("m.custom.state", BOB, {}, state_key="!" + ALICE)


@pytest.mark.parametrize("version", ["1", "5"])
def test_aliases_special_case_before_v6(version):
    room = standard_room(version)
    # Not joined, no power level: the sender's server may still set its own aliases.
    room.send("m.room.aliases", BOB, {"aliases": ["#x:b.test"]}, state_key="b.test")
    refused(room, room.build("m.room.aliases", BOB, {}, state_key="a.test"), "own server")
    refused(room, room.build("m.room.aliases", BOB, {}), "state_key")


@pytest.mark.parametrize("version", ["6", "10", "11", "12"])
def test_aliases_normal_state_from_v6(version):
    room = standard_room(version, users={BOB: 10})
    refused(room, room.build("m.room.aliases", BOB, {}, state_key="b.test"), "not joined")
    room.member(BOB, "join")
    refused(room, room.build("m.room.aliases", BOB, {}, state_key="b.test"), "power level")
    room.send("m.room.aliases", ALICE, {"aliases": []}, state_key="a.test")


@pytest.mark.parametrize("version", ["1", "2"])
def test_redaction_v1_needs_redact_level_for_other_servers(version):
    room = standard_room(version, users={DAVE: 0})
    room.member(BOB, "join")
    room.member(DAVE, "join")
    bob_message = room.send("m.room.message", BOB, {"body": "spam"})
    alice_message = room.send("m.room.message", ALICE, {"body": "hi"})
    assert bob_message.event_id.endswith(":b.test")
    # Below the redact level: only events from the redaction's own server.
    refused(
        room,
        room.build("m.room.redaction", BOB, {}, redacts=alice_message.event_id),
        "redact",
    )
    room.send("m.room.redaction", BOB, {}, redacts=bob_message.event_id)
    # Dave (a.test) may redact a.test's events, whoever sent them.
    room.send("m.room.redaction", DAVE, {}, redacts=alice_message.event_id)
    # At the redact level anything goes.
    room.send("m.room.redaction", ALICE, {}, redacts=bob_message.event_id)
    refused(room, room.build("m.room.redaction", BOB, {}), "redact")


@pytest.mark.parametrize("version", ["3", "6", "10", "11", "12"])
def test_redaction_from_v3_only_uses_send_levels(version):
    room = standard_room(version, users={BOB: 0})
    room.member(BOB, "join")
    alice_message = room.send("m.room.message", ALICE, {"body": "hi"})
    # The redact level is checked when the redaction is applied, not by the auth rules.
    room.send("m.room.redaction", BOB, {"redacts": alice_message.event_id})
    room.send(
        "m.room.power_levels",
        ALICE,
        {
            "users": room.state[("m.room.power_levels", "")].content["users"],
            "events": {"m.room.redaction": 1},
        },
        state_key="",
    )
    refused(room, room.build("m.room.redaction", BOB, {"redacts": "$x"}), "power level")


@pytest.mark.parametrize("version", VERSIONS)
def test_non_federating_room_refuses_remote_messages(version):
    room = Room(version, create_content={"m.federate": False})
    room.member(ALICE, "join")
    room.send("m.room.message", ALICE, {"body": "hi"})
    refused(room, room.build("m.room.message", BOB, {"body": "hi"}), "federate")


@pytest.mark.parametrize("version", VERSIONS)
def test_m_federate_must_be_literally_false(version):
    room = Room(version, create_content={"m.federate": 0})
    room.member(ALICE, "join")
    room.send("m.room.join_rules", ALICE, {"join_rule": "public"}, state_key="")
    room.member(BOB, "join")


@pytest.mark.parametrize("version", VERSIONS)
def test_creator_can_always_send(version):
    room = standard_room(version, events_default=100, state_default=100)
    room.send("m.room.message", ALICE, {"body": "hi"})
    room.send("m.room.topic", ALICE, {"topic": "t"}, state_key="")


def test_v12_additional_creator_outranks_any_level():
    room = Room("12", create_content={"additional_creators": [CAROL]})
    room.member(ALICE, "join")
    room.send(
        "m.room.power_levels",
        ALICE,
        {"events_default": 2**53 - 1, "state_default": 2**53 - 1},
        state_key="",
    )
    room.send("m.room.join_rules", ALICE, {"join_rule": "invite"}, state_key="")
    room.member(CAROL, "invite", sender=ALICE)
    room.member(CAROL, "join")
    room.send("m.room.topic", CAROL, {"topic": "t"}, state_key="")
    room.send("m.room.message", CAROL, {"body": "hi"})
