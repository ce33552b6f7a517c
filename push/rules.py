"""Push rules: the spec's server-default rules, a user's own rules, and the ruleset they make.

Plain data and functions, no I/O. A user's ruleset is the defaults (with the user's changes to
their `enabled` and `actions`) merged with the rules the user added, in the order the spec
gives: `.m.rule.master` first, then override (user, then default), content, room, sender,
underride (user, then default). Evaluation walks that order and stops at the first match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

KINDS = ("override", "content", "room", "sender", "underride")
MASTER = ".m.rule.master"
# Placeholder in the default rules that stands for the owner of the ruleset.
OWNER = "[the user's Matrix ID]"

_SOUND = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


@dataclass(frozen=True)
class PushRule:
    kind: str
    rule_id: str
    actions: tuple[Any, ...]
    conditions: tuple[Mapping[str, Any], ...] = ()
    pattern: str | None = None
    enabled: bool = True
    default: bool = False
    # Whether a condition reads the owner's display name: then whether the rule matches
    # depends on whose rule it is, not only on the event.
    uses_display_name: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        uses = any(c.get("kind") == "contains_display_name" for c in self.conditions)
        object.__setattr__(self, "uses_display_name", uses)

    def to_json(self) -> dict[str, Any]:
        """The rule as the client-server API shows it (`PushRule` in the spec)."""
        rule: dict[str, Any] = {
            "rule_id": self.rule_id,
            "default": self.default,
            "enabled": self.enabled,
            "actions": list(self.actions),
        }
        if self.kind in ("override", "underride"):
            rule["conditions"] = [dict(c) for c in self.conditions]
        if self.kind == "content" and self.pattern is not None:
            rule["pattern"] = self.pattern
        return rule


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _default(kind: str, rule_id: str, conditions: list, actions: list, enabled: bool = True):
    return PushRule(kind, rule_id, tuple(actions), tuple(conditions), None, enabled, True)


# The spec's predefined rules (client-server API, "Predefined Rules"), in their order.
_DEFAULT_OVERRIDE = [
    _default("override", MASTER, [], [], enabled=False),
    _default("override", ".m.rule.suppress_notices",
             [_match("content.msgtype", "m.notice")], []),
    _default("override", ".m.rule.invite_for_me",
             [_match("type", "m.room.member"), _match("content.membership", "invite"),
              _match("state_key", OWNER)],
             ["notify", _SOUND]),
    _default("override", ".m.rule.member_event", [_match("type", "m.room.member")], []),
    _default("override", ".m.rule.is_user_mention",
             [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids",
               "value": OWNER}],
             ["notify", _SOUND, _HIGHLIGHT]),
    _default("override", ".m.rule.is_room_mention",
             [{"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
              {"kind": "sender_notification_permission", "key": "room"}],
             ["notify", _HIGHLIGHT]),
    _default("override", ".m.rule.tombstone",
             [_match("type", "m.room.tombstone"), _match("state_key", "")],
             ["notify", _HIGHLIGHT]),
    _default("override", ".m.rule.reaction", [_match("type", "m.reaction")], []),
    _default("override", ".m.rule.room.server_acl",
             [_match("type", "m.room.server_acl"), _match("state_key", "")], []),
    _default("override", ".m.rule.suppress_edits",
             [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type",
               "value": "m.replace"}],
             []),
]
_DEFAULT_UNDERRIDE = [
    _default("underride", ".m.rule.call", [_match("type", "m.call.invite")],
             ["notify", {"set_tweak": "sound", "value": "ring"}]),
    _default("underride", ".m.rule.encrypted_room_one_to_one",
             [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")],
             ["notify", _SOUND]),
    _default("underride", ".m.rule.room_one_to_one",
             [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")],
             ["notify", _SOUND]),
    _default("underride", ".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _default("underride", ".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
]
DEFAULT_RULES: dict[str, PushRule] = {r.rule_id: r for r in _DEFAULT_OVERRIDE + _DEFAULT_UNDERRIDE}


@dataclass(frozen=True)
class DefaultRuleChange:
    """What a user changed about a server-default rule: None leaves the default as it is."""

    enabled: bool | None = None
    actions: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class UserRules:
    """Everything a user has changed: their own rules (each kind most important first) and
    their changes to the defaults."""

    rules: tuple[PushRule, ...] = ()
    default_changes: Mapping[str, DefaultRuleChange] = field(default_factory=dict)


def _owned(rule: PushRule, user_id: str) -> PushRule:
    """A default rule with the owner placeholder replaced by `user_id`.

    Conditions without the placeholder stay the very same objects in every user's ruleset,
    so the evaluator works each of them out once per event, not once per member."""
    if not any(OWNER in c.values() for c in rule.conditions):
        return rule
    conditions = tuple(
        {k: (user_id if v == OWNER else v) for k, v in c.items()} if OWNER in c.values() else c
        for c in rule.conditions
    )
    return replace(rule, conditions=conditions)


def _with_change(rule: PushRule, change: DefaultRuleChange | None) -> PushRule:
    if change is None:
        return rule
    return replace(
        rule,
        enabled=rule.enabled if change.enabled is None else change.enabled,
        actions=rule.actions if change.actions is None else change.actions,
    )


class Ruleset(tuple[PushRule, ...]):
    """A user's rules in evaluation order. Knows whether any enabled rule needs the user's
    display name (the deprecated contains_display_name), which is then worth loading."""

    needs_display_name: bool

    def __new__(cls, rules: Iterable[PushRule]) -> Ruleset:
        self = super().__new__(cls, rules)
        self.needs_display_name = any(rule.enabled and rule.uses_display_name for rule in self)
        return self


def ruleset(user_id: str, user_rules: UserRules) -> Ruleset:
    """All of the user's rules in evaluation order."""

    def defaults(rules: Iterable[PushRule]) -> list[PushRule]:
        return [
            _with_change(_owned(r, user_id), user_rules.default_changes.get(r.rule_id))
            for r in rules
        ]

    own = {kind: [r for r in user_rules.rules if r.kind == kind] for kind in KINDS}
    master, *other_overrides = defaults(_DEFAULT_OVERRIDE)
    return Ruleset([
        master,
        *own["override"],
        *other_overrides,
        *own["content"],
        *own["room"],
        *own["sender"],
        *own["underride"],
        *defaults(_DEFAULT_UNDERRIDE),
    ])


def ruleset_json(rules: Iterable[PushRule]) -> dict[str, Any]:
    """`{"global": {kind: [rule, ...]}}`, as GET /pushrules/ and `m.push_rules` show it."""
    by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for rule in rules:
        by_kind[rule.kind].append(rule.to_json())
    return {"global": by_kind}


def find_rule(rules: Iterable[PushRule], kind: str, rule_id: str) -> PushRule | None:
    return next((r for r in rules if r.kind == kind and r.rule_id == rule_id), None)


def strip_historical_actions(actions: Iterable[Any]) -> tuple[Any, ...]:
    """The spec: `dont_notify` and `coalesce` are historical and must be ignored."""
    return tuple(a for a in actions if a not in ("dont_notify", "coalesce"))
