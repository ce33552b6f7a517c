"""m.room.member rules: joins under every join rule, invites, leaves, kicks, bans, knocks."""

from __future__ import annotations

import pytest

from homeserver.errors import AuthError
from tests.rooms.event_factory import ALICE, BOB, CAROL, DAVE, Room, standard_room

VERSIONS = ["1", "6", "10", "11", "12"]
KNOCK_VERSIONS = ["7", "10", "11", "12"]
RESTRICTED_VERSIONS = ["8", "10", "11", "12"]


def refused(room: Room, event, match: str, **kwargs) -> None:
    with pytest.raises(AuthError, match=match):
        room.check(event, **kwargs)


# ------------------------------------------------------------------------- basic shape


@pytest.mark.parametrize("version", VERSIONS)
def test_member_without_membership_refused(version):
    room = standard_room(version)
    refused(room, room.build("m.room.member", BOB, {}, state_key=BOB), "membership")


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_membership_refused(version):
    room = standard_room(version)
    refused(room, room.member_event(BOB, "dance"), "unknown membership")


# ------------------------------------------------------------------------- first join


@pytest.mark.parametrize("version", VERSIONS)
def test_creator_first_join_allowed(version):
    room = Room(version)
    room.member(ALICE, "join")


@pytest.mark.parametrize("version", VERSIONS)
def test_non_creator_first_join_refused(version):
    # No join rules yet, so only the creator's own join straight after the create passes.
    room = Room(version)
    refused(room, room.member_event(BOB, "join"), "join rule")


def test_v1_first_join_uses_content_creator():
    room = Room("1", create_content={"creator": BOB})
    room.member(BOB, "join")
    other = Room("1", create_content={"creator": BOB})
    # Alice sent the create event but is not its `creator`.
    refused(other, other.member_event(ALICE, "join"), "join rule")


def test_v12_additional_creator_has_no_first_join_shortcut():
    room = Room("12", create_content={"additional_creators": [BOB]})
    refused(room, room.member_event(BOB, "join"), "join rule")


@pytest.mark.parametrize("version", VERSIONS)
def test_creator_join_with_other_prev_events_is_a_normal_join(version):
    room = Room(version)
    room.force("m.room.topic", ALICE, {"topic": "x"})
    refused(room, room.member_event(ALICE, "join"), "join rule")


# ------------------------------------------------------------------------- joins


@pytest.mark.parametrize("version", VERSIONS)
def test_join_public_allowed(version):
    room = standard_room(version, "public")
    room.member(BOB, "join")
    room.member(BOB, "join", displayname="Bob")  # profile change


@pytest.mark.parametrize("version", VERSIONS)
def test_join_on_behalf_of_someone_else_refused(version):
    room = standard_room(version, "public")
    refused(room, room.member_event(BOB, "join", sender=ALICE), "own behalf")


@pytest.mark.parametrize("version", VERSIONS)
def test_join_when_banned_refused(version):
    room = standard_room(version, "public")
    room.member(BOB, "ban", sender=ALICE)
    refused(room, room.member_event(BOB, "join"), "banned")


@pytest.mark.parametrize("version", VERSIONS)
def test_join_without_join_rules_refused(version):
    room = standard_room(version, None)
    refused(room, room.member_event(BOB, "join"), "join rule")


@pytest.mark.parametrize("version", VERSIONS)
def test_join_private_join_rule_refused(version):
    room = standard_room(version, "private")
    refused(room, room.member_event(BOB, "join"), "join rule")


@pytest.mark.parametrize("version", VERSIONS)
def test_join_invite_only(version):
    room = standard_room(version, "invite")
    refused(room, room.member_event(BOB, "join"), "not invited")
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "join")
    room.member(BOB, "join", displayname="B")


@pytest.mark.parametrize("version", KNOCK_VERSIONS)
def test_join_knock_rule_needs_invite(version):
    room = standard_room(version, "knock")
    refused(room, room.member_event(BOB, "join"), "not invited")
    room.member(BOB, "knock")
    refused(room, room.member_event(BOB, "join"), "not invited")
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "join")


@pytest.mark.parametrize("version", ["1", "6"])
def test_knock_join_rule_unknown_before_v7(version):
    room = standard_room(version, "knock")
    room.member(BOB, "invite", sender=ALICE)
    refused(room, room.member_event(BOB, "join"), "join rule")


def restricted_room(version: str, join_rule: str = "restricted") -> Room:
    room = standard_room(version, join_rule, users={CAROL: 0}, invite=10)
    return room


@pytest.mark.parametrize(
    ("version", "join_rule"),
    [(v, "restricted") for v in RESTRICTED_VERSIONS]
    + [(v, "knock_restricted") for v in ("10", "11", "12")],
)
def test_restricted_join(version, join_rule):
    room = restricted_room(version, join_rule)
    # Without an authorising user a restricted join needs an invite.
    refused(room, room.member_event(BOB, "join"), "join_authorised_via_users_server")
    # Alice (100 or creator) is joined and may invite.
    event = room.member_event(BOB, "join", join_authorised_via_users_server=ALICE)
    room.check(event)
    room.check(event, is_signed_by=lambda ev, server: server == "a.test")
    refused(room, event, "not signed", is_signed_by=lambda ev, server: server == "b.test")


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_restricted_join_authoriser_must_be_joined(version):
    room = restricted_room(version)
    event = room.member_event(BOB, "join", join_authorised_via_users_server=DAVE)
    refused(room, event, "not joined")


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_restricted_join_authoriser_must_be_able_to_invite(version):
    room = standard_room(version, "public", users={CAROL: 0}, invite=10)
    room.member(CAROL, "join")
    room.send("m.room.join_rules", ALICE, {"join_rule": "restricted"}, state_key="")
    event = room.member_event(BOB, "join", join_authorised_via_users_server=CAROL)
    refused(room, event, "power level to invite")


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_restricted_join_with_invite_needs_no_authoriser(version):
    room = restricted_room(version)
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "join")


@pytest.mark.parametrize("version", RESTRICTED_VERSIONS)
def test_authoriser_key_must_be_a_user_id(version):
    room = standard_room(version, "public")
    event = room.member_event(BOB, "join", join_authorised_via_users_server="nobody")
    refused(room, event, "not a user ID")


@pytest.mark.parametrize("version", ["1", "6"])
def test_restricted_unknown_and_authoriser_ignored_before_v8(version):
    room = standard_room(version, "restricted")
    event = room.member_event(BOB, "join", join_authorised_via_users_server=ALICE)
    refused(room, event, "join rule")
    # The key means nothing in these versions, not even a signature requirement.
    public = standard_room(version, "public")
    event = public.member_event(BOB, "join", join_authorised_via_users_server="garbage")
    public.check(event, is_signed_by=lambda ev, server: False)


@pytest.mark.parametrize("version", ["8", "9"])
def test_knock_restricted_unknown_before_v10(version):
    room = standard_room(version, "knock_restricted")
    event = room.member_event(BOB, "join", join_authorised_via_users_server=ALICE)
    refused(room, event, "join rule")
    refused(room, room.member_event(BOB, "knock"), "knocking")


# ------------------------------------------------------------------------- invites


@pytest.mark.parametrize("version", VERSIONS)
def test_invite_allowed(version):
    room = standard_room(version, "invite")
    room.member(BOB, "invite", sender=ALICE)


@pytest.mark.parametrize("version", VERSIONS)
def test_invite_by_non_member_refused(version):
    room = standard_room(version, "invite")
    refused(room, room.member_event(CAROL, "invite", sender=BOB), "not joined")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("membership", ["join", "ban"])
def test_invite_of_joined_or_banned_refused(version, membership):
    room = standard_room(version, "public")
    room.member(BOB, "join")
    if membership == "ban":
        room.member(BOB, "ban", sender=ALICE)
    refused(room, room.member_event(BOB, "invite", sender=ALICE), f"membership is {membership}")


@pytest.mark.parametrize("version", VERSIONS)
def test_invite_below_invite_level_refused(version):
    room = standard_room(version, "public", invite=50, users={BOB: 49, CAROL: 50})
    room.member(BOB, "join")
    room.member(CAROL, "join")
    refused(room, room.member_event(DAVE, "invite", sender=BOB), "power level to invite")
    room.member(DAVE, "invite", sender=CAROL)


@pytest.mark.parametrize("version", VERSIONS)
def test_invite_of_invited_or_left_user_allowed(version):
    room = standard_room(version, "public")
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "leave")
    room.member(BOB, "invite", sender=ALICE)


# ------------------------------------------------------------------------- leaves and kicks


@pytest.mark.parametrize("version", VERSIONS)
def test_leave_own(version):
    room = standard_room(version, "public")
    refused(room, room.member_event(BOB, "leave"), "cannot leave")
    room.member(BOB, "join")
    room.member(BOB, "leave")
    refused(room, room.member_event(BOB, "leave"), "cannot leave")
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "leave")  # rejecting an invite


@pytest.mark.parametrize("version", VERSIONS)
def test_banned_user_cannot_leave(version):
    room = standard_room(version, "public")
    room.member(BOB, "ban", sender=ALICE)
    refused(room, room.member_event(BOB, "leave"), "cannot leave")


@pytest.mark.parametrize("version", KNOCK_VERSIONS)
def test_withdraw_knock(version):
    room = standard_room(version, "knock")
    room.member(BOB, "knock")
    room.member(BOB, "leave")


@pytest.mark.parametrize("version", VERSIONS)
def test_kick_rules(version):
    room = standard_room(version, "public", users={BOB: 50, CAROL: 50, DAVE: 10})
    for user in (BOB, CAROL, DAVE):
        room.member(user, "join")
    # Below the kick level.
    refused(room, room.member_event(CAROL, "leave", sender=DAVE), "power level to kick")
    # Equal power: not lower, refused.
    refused(room, room.member_event(CAROL, "leave", sender=BOB), "not lower")
    # Higher power kicks lower.
    room.member(DAVE, "leave", sender=BOB)
    room.member(BOB, "leave", sender=ALICE)


@pytest.mark.parametrize("version", VERSIONS)
def test_kick_by_non_member_refused(version):
    room = standard_room(version, "public", users={BOB: 60})
    room.member(CAROL, "join")
    refused(room, room.member_event(CAROL, "leave", sender=BOB), "not joined")


@pytest.mark.parametrize("version", VERSIONS)
def test_kick_level_is_configurable(version):
    room = standard_room(version, "public", users={BOB: 20}, kick=20)
    room.member(BOB, "join")
    room.member(CAROL, "join")
    room.member(CAROL, "leave", sender=BOB)


@pytest.mark.parametrize("version", VERSIONS)
def test_unban_needs_ban_level(version):
    room = standard_room(version, "public", users={BOB: 60}, kick=50, ban=70)
    room.member(BOB, "join")
    room.member(CAROL, "ban", sender=ALICE)
    refused(room, room.member_event(CAROL, "leave", sender=BOB), "unban")
    room.member(CAROL, "leave", sender=ALICE)


# ------------------------------------------------------------------------- bans


@pytest.mark.parametrize("version", VERSIONS)
def test_ban_rules(version):
    room = standard_room(version, "public", users={BOB: 50, CAROL: 50, DAVE: 49})
    for user in (BOB, CAROL, DAVE):
        room.member(user, "join")
    refused(room, room.member_event(BOB, "ban", sender=DAVE), "power level to ban")
    refused(room, room.member_event(CAROL, "ban", sender=BOB), "not lower")
    room.member(DAVE, "ban", sender=BOB)
    # A ban does not need the target to be in the room.
    room.member("@eve:e.test", "ban", sender=BOB)


@pytest.mark.parametrize("version", VERSIONS)
def test_ban_by_non_member_refused(version):
    room = standard_room(version, "public", users={BOB: 100})
    refused(room, room.member_event(CAROL, "ban", sender=BOB), "not joined")


def test_v12_creators_cannot_be_kicked_or_banned():
    room = Room("12", create_content={"additional_creators": [BOB]})
    room.member(ALICE, "join")
    room.send("m.room.power_levels", ALICE, {"users": {CAROL: 100}}, state_key="")
    room.send("m.room.join_rules", ALICE, {"join_rule": "public"}, state_key="")
    room.member(BOB, "join")
    room.member(CAROL, "join")
    # Carol's 100 is below infinity; another creator is not below either.
    refused(room, room.member_event(ALICE, "ban", sender=CAROL), "not lower")
    refused(room, room.member_event(ALICE, "leave", sender=CAROL), "not lower")
    refused(room, room.member_event(ALICE, "leave", sender=BOB), "not lower")
    # A creator outranks any integer level.
    room.member(CAROL, "ban", sender=BOB)


def test_v11_creator_has_no_special_power_once_power_levels_exist():
    room = Room("11")
    room.member(ALICE, "join")
    room.send("m.room.power_levels", ALICE, {"users": {ALICE: 100, BOB: 100}}, state_key="")
    room.send("m.room.join_rules", ALICE, {"join_rule": "public"}, state_key="")
    room.member(BOB, "join")
    refused(room, room.member_event(ALICE, "leave", sender=BOB), "not lower")


# ------------------------------------------------------------------------- knocks


@pytest.mark.parametrize("version", KNOCK_VERSIONS)
def test_knock_allowed(version):
    room = standard_room(version, "knock")
    room.member(BOB, "knock")


@pytest.mark.parametrize("version", ["10", "11", "12"])
def test_knock_on_knock_restricted_allowed(version):
    room = standard_room(version, "knock_restricted")
    room.member(BOB, "knock")


@pytest.mark.parametrize("version", KNOCK_VERSIONS)
@pytest.mark.parametrize("join_rule", ["public", "invite", "restricted"])
def test_knock_needs_knock_join_rule(version, join_rule):
    room = standard_room(version, join_rule)
    refused(room, room.member_event(BOB, "knock"), "knocking")


@pytest.mark.parametrize("version", KNOCK_VERSIONS)
def test_knock_on_behalf_of_someone_else_refused(version):
    room = standard_room(version, "knock")
    refused(room, room.member_event(BOB, "knock", sender=ALICE), "own behalf")


@pytest.mark.parametrize("version", KNOCK_VERSIONS)
@pytest.mark.parametrize("membership", ["join", "invite", "ban"])
def test_knock_with_membership_refused(version, membership):
    room = standard_room(version, "knock")
    if membership == "join":
        room.member(BOB, "invite", sender=ALICE)
        room.member(BOB, "join")
    else:
        room.member(BOB, membership, sender=ALICE)
    refused(room, room.member_event(BOB, "knock"), "cannot knock")


@pytest.mark.parametrize("version", KNOCK_VERSIONS)
def test_knock_again_and_after_leave_allowed(version):
    room = standard_room(version, "knock")
    room.member(BOB, "knock")
    room.member(BOB, "knock")
    room.member(BOB, "leave")
    room.member(BOB, "knock")


@pytest.mark.parametrize("version", ["1", "6"])
def test_knock_membership_unknown_before_v7(version):
    room = standard_room(version, "knock")
    refused(room, room.member_event(BOB, "knock"), "unknown membership")


# ------------------------------------------------------------------------- m.federate


@pytest.mark.parametrize("version", VERSIONS)
def test_non_federating_room_refuses_remote_senders(version):
    room = Room(version, create_content={"m.federate": False})
    room.member(ALICE, "join")
    room.send("m.room.join_rules", ALICE, {"join_rule": "public"}, state_key="")
    refused(room, room.member_event(BOB, "join"), "federate")
    room.member(DAVE, "join")  # same server as the creator
