"""m.room.create rules, auth events selection and the auth_events shape rules."""

from __future__ import annotations

import pytest

from homeserver.errors import AuthError
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.rooms.auth_rules import (
    auth_types_for_event,
    check_auth_events_shape,
    check_auth_rules,
    is_valid_user_id,
)
from tests.rooms.event_factory import ALICE, BOB, CAROL, Room, make_event, standard_room

VERSIONS = ["1", "6", "10", "11", "12"]


def create(version: str, sender: str = ALICE, *, room_id: str | None = "!r:a.test", **kw):
    content = kw.pop("content", None)
    if content is None:
        content = {"room_version": version}
        if version in ("1", "6", "10"):
            content["creator"] = sender
    if version == "12" and room_id == "!r:a.test":
        room_id = None
    return make_event(
        version, "m.room.create", sender, content, state_key="", room_id=room_id, **kw
    )


# ---------------------------------------------------------------------------------- create


@pytest.mark.parametrize("version", VERSIONS)
def test_create_allowed(version):
    check_auth_rules(create(version), {})


@pytest.mark.parametrize("version", VERSIONS)
def test_create_with_prev_events_refused(version):
    other = create(version)
    with pytest.raises(AuthError, match="prev_events"):
        check_auth_rules(create(version, prev=[other]), {})


@pytest.mark.parametrize("version", ["1", "6", "10", "11"])
def test_create_room_id_domain_must_match_sender(version):
    with pytest.raises(AuthError, match="domain"):
        check_auth_rules(create(version, room_id="!r:b.test"), {})


def test_create_v12_must_not_have_room_id():
    with pytest.raises(AuthError, match="room_id"):
        check_auth_rules(create("12", room_id="!x:a.test", content={}), {})


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("room_version", ["999", 12, None])
def test_create_unknown_room_version_refused(version, room_version):
    content = {"room_version": room_version, "creator": ALICE}
    with pytest.raises(AuthError, match="room version"):
        check_auth_rules(create(version, content=content), {})


@pytest.mark.parametrize("version", VERSIONS)
def test_create_without_room_version_allowed(version):
    check_auth_rules(create(version, content={"creator": ALICE}), {})


@pytest.mark.parametrize("version", ["1", "6", "10"])
def test_create_without_creator_refused_before_v11(version):
    with pytest.raises(AuthError, match="creator"):
        check_auth_rules(create(version, content={"room_version": version}), {})


@pytest.mark.parametrize("version", ["11", "12"])
def test_create_without_creator_allowed_from_v11(version):
    check_auth_rules(create(version, content={"room_version": version}), {})


@pytest.mark.parametrize(
    "additional",
    [BOB, [BOB, 3], ["bob"], ["@bob"], ["@bob:bad host"], [None]],
)
def test_create_v12_bad_additional_creators_refused(additional):
    event = create("12", content={"room_version": "12", "additional_creators": additional})
    with pytest.raises(AuthError, match="additional_creators"):
        check_auth_rules(event, {})


def test_create_v12_additional_creators_allowed():
    # Historical user IDs pass the same validation as senders.
    extra = [BOB, CAROL, "@Old.Style:example.org:8448", "@x:[::1]"]
    check_auth_rules(create("12", content={"additional_creators": extra}), {})


def test_create_v11_additional_creators_not_validated():
    check_auth_rules(create("11", content={"additional_creators": "nonsense"}), {})


def test_non_create_needs_create_in_state():
    room = standard_room("10")
    event = room.build("m.room.message", ALICE, {"body": "hi"})
    with pytest.raises(AuthError, match="m.room.create"):
        check_auth_rules(event, {})


def test_create_of_another_room_refused():
    room = standard_room("12")
    other = Room("12")
    event = room.build("m.room.message", ALICE, {"body": "hi"})
    state = dict(room.state)
    state[("m.room.create", "")] = other.create
    with pytest.raises(AuthError, match="different room"):
        check_auth_rules(event, state)


# ---------------------------------------------------------------------- auth events selection


def test_selection_for_create_is_empty():
    assert auth_types_for_event(KNOWN_ROOM_VERSIONS["10"], "m.room.create", ALICE, "", {}) == []


@pytest.mark.parametrize("version", ["1", "6", "10", "11"])
def test_selection_for_message_includes_create(version):
    types = auth_types_for_event(KNOWN_ROOM_VERSIONS[version], "m.room.message", BOB, None, {})
    assert sorted(types) == sorted(
        [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", BOB)]
    )


def test_selection_v12_excludes_create():
    types = auth_types_for_event(KNOWN_ROOM_VERSIONS["12"], "m.room.topic", BOB, "", {})
    assert sorted(types) == [("m.room.member", BOB), ("m.room.power_levels", "")]


@pytest.mark.parametrize("membership", ["join", "invite", "knock"])
def test_selection_member_with_join_rules(membership):
    rv = KNOWN_ROOM_VERSIONS["11"]
    types = auth_types_for_event(rv, "m.room.member", ALICE, BOB, {"membership": membership})
    assert set(types) == {
        ("m.room.create", ""),
        ("m.room.power_levels", ""),
        ("m.room.member", ALICE),
        ("m.room.member", BOB),
        ("m.room.join_rules", ""),
    }
    assert len(types) == len(set(types))


@pytest.mark.parametrize("membership", ["leave", "ban"])
def test_selection_member_without_join_rules(membership):
    rv = KNOWN_ROOM_VERSIONS["11"]
    types = auth_types_for_event(rv, "m.room.member", ALICE, BOB, {"membership": membership})
    assert ("m.room.join_rules", "") not in types
    assert ("m.room.member", BOB) in types


def test_selection_own_membership_listed_once():
    rv = KNOWN_ROOM_VERSIONS["12"]
    types = auth_types_for_event(rv, "m.room.member", BOB, BOB, {"membership": "join"})
    assert sorted(types) == [
        ("m.room.join_rules", ""),
        ("m.room.member", BOB),
        ("m.room.power_levels", ""),
    ]


def test_selection_third_party_invite_token():
    rv = KNOWN_ROOM_VERSIONS["10"]
    content = {"membership": "invite", "third_party_invite": {"signed": {"token": "tok"}}}
    types = auth_types_for_event(rv, "m.room.member", ALICE, BOB, content)
    assert ("m.room.third_party_invite", "tok") in types
    # A malformed third_party_invite selects nothing extra.
    content = {"membership": "invite", "third_party_invite": {"signed": "x"}}
    types = auth_types_for_event(rv, "m.room.member", ALICE, BOB, content)
    assert not any(t == "m.room.third_party_invite" for t, _ in types)


@pytest.mark.parametrize("version", ["8", "10", "12"])
def test_selection_restricted_join_authoriser(version):
    content = {"membership": "join", "join_authorised_via_users_server": CAROL}
    types = auth_types_for_event(KNOWN_ROOM_VERSIONS[version], "m.room.member", BOB, BOB, content)
    assert ("m.room.member", CAROL) in types


def test_selection_authoriser_only_for_joins_and_restricted_versions():
    leave = {"membership": "leave", "join_authorised_via_users_server": CAROL}
    types = auth_types_for_event(KNOWN_ROOM_VERSIONS["10"], "m.room.member", BOB, BOB, leave)
    assert ("m.room.member", CAROL) not in types
    join = {"membership": "join", "join_authorised_via_users_server": CAROL}
    types = auth_types_for_event(KNOWN_ROOM_VERSIONS["6"], "m.room.member", BOB, BOB, join)
    assert ("m.room.member", CAROL) not in types


# ------------------------------------------------------------------------ auth_events shape


def auth_events_for(room: Room, event) -> list:
    types = auth_types_for_event(
        room.version, event.type, event.sender, event.state_key, event.content
    )
    return [room.state[t] for t in types if t in room.state]


def build_with_auth(room: Room, auth, event_type="m.room.message", sender=ALICE, **kw):
    return room.build(event_type, sender, kw.pop("content", {"body": "x"}), auth=auth, **kw)


@pytest.mark.parametrize("version", VERSIONS)
def test_shape_valid(version):
    room = standard_room(version)
    probe = room.build("m.room.message", ALICE, {"body": "x"})
    auth = auth_events_for(room, probe)
    event = build_with_auth(room, auth)
    check_auth_events_shape(event, auth, create_event=room.create)


@pytest.mark.parametrize("version", VERSIONS)
def test_shape_duplicate_type_refused(version):
    room = standard_room(version)
    old_pl = room.state[("m.room.power_levels", "")]
    new_pl = room.send("m.room.power_levels", ALICE, dict(old_pl.content), state_key="")
    auth = auth_events_for(room, room.build("m.room.message", ALICE)) + [old_pl]
    event = build_with_auth(room, auth)
    assert new_pl in auth
    with pytest.raises(AuthError, match="more than one"):
        check_auth_events_shape(event, auth)


@pytest.mark.parametrize("version", VERSIONS)
def test_shape_unselected_entry_refused(version):
    room = standard_room(version)
    auth = auth_events_for(room, room.build("m.room.message", ALICE))
    auth.append(room.state[("m.room.join_rules", "")])
    with pytest.raises(AuthError, match="selection"):
        check_auth_events_shape(build_with_auth(room, auth), auth)


@pytest.mark.parametrize("version", VERSIONS)
def test_shape_rejected_entry_refused(version):
    room = standard_room(version)
    bad_pl = room.build(
        "m.room.power_levels", ALICE, {}, state_key="", rejected_reason="auth_error"
    )
    auth = auth_events_for(room, room.build("m.room.message", ALICE))
    auth = [e for e in auth if e.type != "m.room.power_levels"] + [bad_pl]
    with pytest.raises(AuthError, match="rejected"):
        check_auth_events_shape(build_with_auth(room, auth), auth)


@pytest.mark.parametrize("version", VERSIONS)
def test_shape_entry_from_other_room_refused(version):
    room = standard_room(version)
    other = Room(version, room_id="!other:a.test")
    other.member(ALICE, "join")
    assert other.room_id != room.room_id
    auth = auth_events_for(room, room.build("m.room.message", ALICE))
    auth = [e for e in auth if e.type != "m.room.member"] + [other.state[("m.room.member", ALICE)]]
    with pytest.raises(AuthError, match="another room"):
        check_auth_events_shape(build_with_auth(room, auth), auth)


@pytest.mark.parametrize("version", ["1", "6", "10", "11"])
def test_shape_missing_create_refused_pre_v12(version):
    room = standard_room(version)
    auth = auth_events_for(room, room.build("m.room.message", ALICE))
    auth = [e for e in auth if e.type != "m.room.create"]
    with pytest.raises(AuthError, match="no m.room.create"):
        check_auth_events_shape(build_with_auth(room, auth), auth)


def test_shape_v12_create_must_not_be_listed():
    room = standard_room("12")
    auth = auth_events_for(room, room.build("m.room.message", ALICE)) + [room.create]
    with pytest.raises(AuthError, match="selection"):
        check_auth_events_shape(build_with_auth(room, auth), auth)


def test_shape_v12_room_id_must_name_create():
    room = standard_room("12")
    other = Room("12", creator=BOB)
    auth = auth_events_for(room, room.build("m.room.message", ALICE))
    event = build_with_auth(room, auth)
    with pytest.raises(AuthError, match="room_id"):
        check_auth_events_shape(event, auth, create_event=other.create)
    rejected = make_event(
        "12",
        "m.room.create",
        ALICE,
        dict(room.create.content),
        state_key="",
        rejected_reason="bad",
        origin_server_ts=room.create.origin_server_ts,
        depth=room.create.depth,
    )
    assert rejected.event_id == room.create.event_id
    with pytest.raises(AuthError, match="rejected"):
        check_auth_events_shape(event, auth, create_event=rejected)


def test_shape_same_auth_event_listed_twice_refused():
    room = standard_room("11")
    auth = auth_events_for(room, room.build("m.room.message", ALICE))
    event = build_with_auth(room, auth + auth[:1])
    with pytest.raises(AuthError, match="twice"):
        check_auth_events_shape(event, auth)


def test_shape_ignores_create_events():
    check_auth_events_shape(create("11"), [])


@pytest.mark.parametrize(
    "user_id",
    ["@a:b.test", "@:b.test", "@Ünïcode:b.test", "@a:b.test:8448", "@a:1.2.3.4", "@a:[::1]:80"],
)
def test_valid_user_ids(user_id):
    assert is_valid_user_id(user_id)


@pytest.mark.parametrize(
    "user_id",
    [
        None,
        5,
        "a:b.test",
        "@ab.test",
        "@a:",
        "@a:b test",
        "@a\x00:b.test",
        "@a:b.test:port",
        "@a:b.test:123456",
        "@" + "a" * 250 + ":b.test",
        "@\ud800:b.test",
    ],
)
def test_invalid_user_ids(user_id):
    assert not is_valid_user_id(user_id)
