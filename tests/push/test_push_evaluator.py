"""The push rule evaluator against the spec's default rules and users' own rules (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from push.evaluator import EventView, condition_matches, first_match, interpret, split_path
from push.rules import PushRule, UserRules, ruleset

ME = "@me:example.org"
OTHER = "@other:example.org"


def message(body: str = "hello", **content: Any) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "room_id": "!room:example.org",
        "sender": OTHER,
        "content": {"msgtype": "m.text", "body": body, **content},
    }


def view(event: dict[str, Any], members: int = 5, sender_level: int = 0,
         notifications: dict[str, Any] | None = None) -> EventView:
    return EventView(event, members, sender_level, notifications or {})


def decide(event: dict[str, Any], user_rules: UserRules | None = None, **kwargs: Any):
    """(rule_id, notify, highlight) for ME, or None when no rule matches."""
    rules = ruleset(ME, user_rules or UserRules())
    rule = first_match(rules, view(event, **kwargs), display_name="Me Myself")
    if rule is None:
        return None
    notification = interpret(rule.actions)
    return rule.rule_id, notification.notify, notification.highlight


def test_plain_message_in_a_group_notifies_without_highlight() -> None:
    assert decide(message()) == (".m.rule.message", True, False)


def test_user_mention_through_m_mentions_highlights() -> None:
    event = message("hi", **{"m.mentions": {"user_ids": [ME]}})
    assert decide(event) == (".m.rule.is_user_mention", True, True)
    # Someone else mentioned: an ordinary message.
    other = message("hi", **{"m.mentions": {"user_ids": [OTHER]}})
    assert decide(other) == (".m.rule.message", True, False)


def test_name_in_the_body_alone_no_longer_highlights() -> None:
    """The legacy body-text mention rules left the spec in v1.17."""
    assert decide(message(f"hey {ME} and Me Myself")) == (".m.rule.message", True, False)


def test_room_mention_needs_the_power_to_notify() -> None:
    event = message("everyone!", **{"m.mentions": {"room": True}})
    assert decide(event, sender_level=50) == (".m.rule.is_room_mention", True, True)
    assert decide(event, sender_level=0) == (".m.rule.message", True, False)
    # The room can raise the level needed.
    assert decide(event, sender_level=50, notifications={"room": 100}) == (
        ".m.rule.message", True, False)
    # "room": "true" (a string) is not true.
    stringly = message("x", **{"m.mentions": {"room": "true"}})
    assert decide(stringly, sender_level=100) == (".m.rule.message", True, False)


def test_direct_messages_use_the_one_to_one_rules() -> None:
    assert decide(message(), members=2) == (".m.rule.room_one_to_one", True, False)
    encrypted = {"type": "m.room.encrypted", "room_id": "!r:x", "sender": OTHER,
                 "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "..."}}
    assert decide(encrypted, members=2) == (".m.rule.encrypted_room_one_to_one", True, False)
    assert decide(encrypted, members=3) == (".m.rule.encrypted", True, False)


def test_suppressed_kinds_do_not_notify() -> None:
    assert decide(message(msgtype="m.notice"))[1:] == (False, False)
    edit = message("* fixed", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$e"}})
    assert decide(edit) == (".m.rule.suppress_edits", False, False)
    reaction = {"type": "m.reaction", "room_id": "!r:x", "sender": OTHER,
                "content": {"m.relates_to": {"rel_type": "m.annotation", "key": "+1"}}}
    assert decide(reaction) == (".m.rule.reaction", False, False)


def test_invite_for_me_notifies_and_other_members_do_not() -> None:
    invite = {"type": "m.room.member", "state_key": ME, "room_id": "!r:x", "sender": OTHER,
              "content": {"membership": "invite"}}
    assert decide(invite) == (".m.rule.invite_for_me", True, False)
    other = {**invite, "state_key": OTHER, "content": {"membership": "join"}}
    assert decide(other) == (".m.rule.member_event", False, False)


def test_keyword_content_rule_matches_whole_words() -> None:
    cake = UserRules(rules=(
        PushRule("content", "cake", ("notify", {"set_tweak": "highlight"}), pattern="cake"),
    ))
    assert decide(message("Who wants CAKE?"), cake) == ("cake", True, True)
    assert decide(message("cupcakes"), cake) == (".m.rule.message", True, False)


def test_dont_notify_rules_silence_a_room_and_a_sender() -> None:
    muted_room = UserRules(rules=(PushRule("room", "!room:example.org", ()),))
    assert decide(message(), muted_room) == ("!room:example.org", False, False)
    muted_sender = UserRules(rules=(PushRule("sender", OTHER, ()),))
    assert decide(message(), muted_sender) == (OTHER, False, False)
    # A mention still gets through a muted room: overrides come first.
    mention = message("hi", **{"m.mentions": {"user_ids": [ME]}})
    assert decide(mention, muted_room) == (".m.rule.is_user_mention", True, True)


def test_master_rule_silences_everything_when_enabled() -> None:
    from push.rules import DefaultRuleChange
    master_on = UserRules(default_changes={".m.rule.master": DefaultRuleChange(enabled=True)})
    mention = message("hi", **{"m.mentions": {"user_ids": [ME]}})
    assert decide(mention, master_on) == (".m.rule.master", False, False)


def test_user_override_goes_before_default_overrides() -> None:
    rules = UserRules(rules=(
        PushRule("override", "notices-too", ("notify",),
                 ({"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"},)),
    ))
    assert decide(message(msgtype="m.notice"), rules) == ("notices-too", True, False)


@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        ({"kind": "event_match", "key": "content.body", "pattern": "ex*ple"}, True),
        ({"kind": "event_match", "key": "content.body", "pattern": "tri?le"}, True),
        ({"kind": "event_match", "key": "content.body", "pattern": "xample"}, False),
        ({"kind": "event_match", "key": "type", "pattern": "m.room.*"}, True),
        ({"kind": "event_match", "key": "type", "pattern": "room"}, False),  # whole value
        ({"kind": "event_match", "key": "content.missing", "pattern": "*"}, False),
        ({"kind": "event_match", "key": "content.count", "pattern": "*"}, False),  # not a string
        ({"kind": "event_property_is", "key": "content.count", "value": 3}, True),
        ({"kind": "event_property_is", "key": "content.count", "value": "3"}, False),
        ({"kind": "event_property_is", "key": "content.flag", "value": True}, True),
        ({"kind": "event_property_is", "key": "content.one", "value": True}, False),  # 1 != true
        ({"kind": "event_property_is", "key": "content.nothing", "value": None}, True),
        ({"kind": "event_property_is", "key": "content.m\\.dotted", "value": "yes"}, True),
        ({"kind": "event_property_contains", "key": "content.tags", "value": "b"}, True),
        ({"kind": "event_property_contains", "key": "content.tags", "value": "c"}, False),
        ({"kind": "event_property_contains", "key": "content.count", "value": 3}, False),
        ({"kind": "contains_display_name"}, True),
        ({"kind": "room_member_count", "is": "5"}, True),
        ({"kind": "room_member_count", "is": ">=6"}, False),
        ({"kind": "room_member_count", "is": "<10"}, True),
        ({"kind": "room_member_count", "is": "lots"}, False),
        ({"kind": "sender_notification_permission", "key": "room"}, False),
        ({"kind": "some_future_condition"}, False),
    ],
)
def test_condition_kinds(condition: dict[str, Any], matches: bool) -> None:
    event = message(
        "An exciting triple-whammy, Me Myself", count=3, flag=True, one=1, nothing=None,
        tags=["a", "b", ["c"]], **{"m.dotted": "yes"},
    )
    assert condition_matches(condition, view(event), "Me Myself") is matches


def test_display_name_must_be_a_whole_word() -> None:
    condition = {"kind": "contains_display_name"}
    assert condition_matches(condition, view(message("hi Ann!")), "ann")
    assert not condition_matches(condition, view(message("hi Annabel")), "ann")
    assert not condition_matches(condition, view(message("hi Ann")), None)


def test_split_path_follows_the_escaping_rules() -> None:
    assert split_path("content.m\\.mentions.user_ids") == ("content", "m.mentions", "user_ids")
    assert split_path("content.m\\\\foo") == ("content", "m\\foo")
    assert split_path("content.a\\xb") == ("content", "a\\xb")


def test_highlight_tweak_value() -> None:
    assert interpret(["notify", {"set_tweak": "highlight"}]).highlight
    assert not interpret(["notify", {"set_tweak": "highlight", "value": False}]).highlight
    assert not interpret([]).notify
