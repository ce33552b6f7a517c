"""Reading power levels: defaults, legacy values, creators (homeserver.rooms.power_levels)."""

from __future__ import annotations

import math

import pytest

from homeserver.rooms.power_levels import (
    CREATOR_POWER_LEVEL,
    get_creators,
    get_event_send_level,
    get_named_level,
    get_notification_level,
    get_user_power_level,
    is_creator,
    parse_level,
)
from tests.rooms.event_factory import ALICE, BOB, CAROL, make_event


def create_event(version: str, sender: str = ALICE, **content):
    room_id = None if version == "12" else "!r:a.test"
    content = {"room_version": version, **content}
    if version in ("1", "6", "10"):
        content.setdefault("creator", sender)
    return make_event(version, "m.room.create", sender, content, state_key="", room_id=room_id)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (50, 50),
        (-3, -3),
        ("50", 50),
        ("000100", 100),
        ("+100", 100),
        (" -100 ", -100),
        (50.57, 50),
        (5.114698e4, 51146),
        (-1.9, -1),
        ("50.5", None),
        ("1_000", None),
        ("١٢", None),  # non-ASCII digits are not base-10 ASCII integers
        ("", None),
        (True, None),
        (None, None),
        (math.inf, None),
        (math.nan, None),
        ([50], None),
    ],
)
def test_parse_level(value, expected):
    assert parse_level(value) == expected


def test_named_level_defaults_with_and_without_power_levels():
    for content in (None, {}):
        assert get_named_level("ban", content) == 50
        assert get_named_level("kick", content) == 50
        assert get_named_level("redact", content) == 50
        assert get_named_level("invite", content) == 0
        assert get_named_level("users_default", content) == 0
        assert get_named_level("events_default", content) == 0
        # Spec v1.7 dropped the old "0 without a power levels event" exception.
        assert get_named_level("state_default", content) == 50


def test_named_levels_read_legacy_values_and_ignore_garbage():
    content = {"ban": "75", "kick": 20.9, "redact": "lots", "invite": None}
    assert get_named_level("ban", content) == 75
    assert get_named_level("kick", content) == 20
    assert get_named_level("redact", content) == 50
    assert get_named_level("invite", content) == 0


def test_event_send_level():
    content = {"events": {"m.room.name": 10, "m.custom": "70"}, "events_default": 5}
    assert get_event_send_level("m.room.name", True, content) == 10
    assert get_event_send_level("m.custom", False, content) == 70
    assert get_event_send_level("m.room.message", False, content) == 5
    assert get_event_send_level("m.room.topic", True, content) == 50
    assert get_event_send_level("m.room.topic", True, None) == 50
    assert get_event_send_level("m.room.message", False, None) == 0
    assert get_event_send_level("m.room.topic", True, {"events": "not a map"}) == 50


def test_notification_level():
    assert get_notification_level("room", None) == 50
    assert get_notification_level("room", {"notifications": {"room": 20}}) == 20
    assert get_notification_level("room", {"notifications": {"room": "30"}}) == 30


@pytest.mark.parametrize("version", ["1", "6", "10"])
def test_creators_before_v11_come_from_content_creator(version):
    create = create_event(version, sender=ALICE, creator=BOB)
    assert get_creators(create) == frozenset({BOB})
    assert is_creator(BOB, create) and not is_creator(ALICE, create)


def test_creator_in_v11_is_the_sender():
    create = create_event("11", sender=ALICE, creator=BOB, additional_creators=[CAROL])
    assert get_creators(create) == frozenset({ALICE})
    assert not is_creator(CAROL, create)


def test_creators_in_v12_include_additional_creators():
    create = create_event("12", sender=ALICE, additional_creators=[BOB])
    assert get_creators(create) == frozenset({ALICE, BOB})
    assert is_creator(BOB, create) and not is_creator(CAROL, create)


@pytest.mark.parametrize("version", ["1", "6", "10", "11"])
def test_user_level_without_power_levels_pre_v12(version):
    create = create_event(version)
    assert get_user_power_level(ALICE, None, create) == 100
    assert get_user_power_level(BOB, None, create) == 0


@pytest.mark.parametrize("version", ["1", "6", "10", "11"])
def test_user_level_with_power_levels_pre_v12(version):
    create = create_event(version)
    content = {"users": {BOB: "40" if version != "10" else 40}, "users_default": 3}
    # With a power levels event the creator has no special standing.
    assert get_user_power_level(ALICE, content, create) == 3
    assert get_user_power_level(BOB, content, create) == 40
    assert get_user_power_level(CAROL, {}, create) == 0


def test_user_level_v12_creators_are_infinite():
    create = create_event("12", additional_creators=[BOB])
    for content in (None, {"users": {CAROL: 100}, "users_default": 10}):
        assert get_user_power_level(ALICE, content, create) == CREATOR_POWER_LEVEL
        assert get_user_power_level(BOB, content, create) == CREATOR_POWER_LEVEL
    assert get_user_power_level(CAROL, None, create) == 0
    assert get_user_power_level(CAROL, {"users": {CAROL: 100}}, create) == 100
    # Infinity must compare above any integer and equal to itself.
    assert CREATOR_POWER_LEVEL > 2**63
    assert not CREATOR_POWER_LEVEL < CREATOR_POWER_LEVEL
