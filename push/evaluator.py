"""Evaluating push rules against an event: which rule matches first, and what its actions mean.

Plain functions over data. `EventView` flattens an event once (as the spec's dot-separated
property paths see it) and holds what every condition needs to know about the room, so one
event is evaluated for many members without repeating that work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from homeserver.globs import glob_to_regex
from push.rules import PushRule

_MEMBER_COUNT = re.compile(r"^(==|<=|>=|<|>)?([0-9]+)$")
# Canonical JSON's integer range: the only integers event_property_is/contains compare.
_MAX_SAFE = 2**53 - 1


@lru_cache(maxsize=4096)
def split_path(path: str) -> tuple[str, ...]:
    """`content.m\\.mentions.user_ids` -> ["content", "m.mentions", "user_ids"] (spec appendix
    "Dot-separated property paths": `\\.` is a literal dot and `\\\\` a literal backslash)."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(path):
        char = path[i]
        if char == "\\" and i + 1 < len(path) and path[i + 1] in ".\\":
            current.append(path[i + 1])
            i += 2
            continue
        if char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return tuple(parts)


_ABSENT = object()


def _lookup(event: Mapping[str, Any], path: str) -> Any:
    value: Any = event
    for part in split_path(path):
        if not isinstance(value, Mapping) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def _is_simple_value(value: Any) -> bool:
    """Strings, booleans, null and integers in canonical JSON's range."""
    if value is None or isinstance(value, (str, bool)):
        return True
    return isinstance(value, int) and -_MAX_SAFE <= value <= _MAX_SAFE


def _same_value(a: Any, b: Any) -> bool:
    # True == 1 in Python; the spec says not to cast types.
    return type(a) is type(b) and a == b


@lru_cache(maxsize=4096)
def _body_regex(pattern: str) -> re.Pattern[str]:
    """`pattern` matching a substring of a body that starts and ends at word boundaries."""
    glob = glob_to_regex(pattern).pattern
    return re.compile(rf"(?:^|[^A-Za-z0-9_])(?:{glob})(?:$|[^A-Za-z0-9_])",
                      re.IGNORECASE | re.DOTALL)


def _display_name_regex(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?:^|[^A-Za-z0-9_]){re.escape(name)}(?:$|[^A-Za-z0-9_])", re.IGNORECASE)


@dataclass(frozen=True)
class EventView:
    """An event and its room as the conditions see them."""

    event: Mapping[str, Any]
    member_count: int
    sender_power_level: int
    # The power levels' `notifications` content (what `sender_notification_permission` reads).
    notification_levels: Mapping[str, Any]
    # id(rule) -> whether it matches this event: a server-default rule object is shared by
    # every member's ruleset, so it is evaluated once per event, not once per member.
    matched: dict[int, bool] = field(default_factory=dict, compare=False, repr=False)

    def sender_may_notify(self, key: str) -> bool:
        required = self.notification_levels.get(key, 50 if key == "room" else None)
        if isinstance(required, bool) or not isinstance(required, int):
            # Only `room` has a default in the spec; a level we cannot read allows nobody.
            return False
        return self.sender_power_level >= required


def condition_matches(
    condition: Mapping[str, Any], view: EventView, display_name: str | None
) -> bool:
    """One condition; unknown kinds and malformed conditions never match (spec: Conditions)."""
    kind = condition.get("kind")
    if kind == "contains_display_name":
        body = _lookup(view.event, "content.body")
        if not display_name or not isinstance(body, str):
            return False
        return _display_name_regex(display_name).search(body) is not None
    if kind == "event_match":
        key, pattern = condition.get("key"), condition.get("pattern")
        if not isinstance(key, str) or not isinstance(pattern, str):
            return False
        value = _lookup(view.event, key)
        if not isinstance(value, str):
            return False
        if key == "content.body":
            return _body_regex(pattern).search(value) is not None
        return glob_to_regex(pattern).fullmatch(value) is not None
    if kind in ("event_property_is", "event_property_contains"):
        key, expected = condition.get("key"), condition.get("value", _ABSENT)
        if not isinstance(key, str) or expected is _ABSENT or not _is_simple_value(expected):
            return False
        value = _lookup(view.event, key)
        if kind == "event_property_is":
            return _is_simple_value(value) and _same_value(value, expected)
        return isinstance(value, list) and any(
            _is_simple_value(item) and _same_value(item, expected) for item in value
        )
    if kind == "room_member_count":
        return _member_count_matches(condition.get("is"), view.member_count)
    if kind == "sender_notification_permission":
        key = condition.get("key")
        return isinstance(key, str) and view.sender_may_notify(key)
    return False


def _member_count_matches(spec: Any, count: int) -> bool:
    match = _MEMBER_COUNT.match(spec) if isinstance(spec, str) else None
    if match is None:
        return False
    op, number = match.group(1) or "==", int(match.group(2))
    return {
        "==": count == number,
        "<": count < number,
        ">": count > number,
        "<=": count <= number,
        ">=": count >= number,
    }[op]


def rule_matches(rule: PushRule, view: EventView, display_name: str | None) -> bool:
    if not rule.enabled:
        return False
    if rule.kind == "content":
        if rule.pattern is None:
            return False
        condition = {"kind": "event_match", "key": "content.body", "pattern": rule.pattern}
        return condition_matches(condition, view, display_name)
    if rule.kind == "room":
        return view.event.get("room_id") == rule.rule_id
    if rule.kind == "sender":
        return view.event.get("sender") == rule.rule_id
    return all(condition_matches(c, view, display_name) for c in rule.conditions)


def first_match(
    rules: Sequence[PushRule], view: EventView, display_name: str | None = None
) -> PushRule | None:
    """The rule that decides what happens to the event for this ruleset's owner."""
    matched = view.matched
    for rule in rules:
        found = matched.get(id(rule))
        if found is None:
            found = rule_matches(rule, view, display_name)
            if not rule.uses_display_name:
                matched[id(rule)] = found
        if found:
            return rule
    return None


@dataclass(frozen=True)
class Notification:
    """What the matching rule's actions mean for one user and one event."""

    actions: tuple[Any, ...]
    notify: bool
    highlight: bool


def tweaks(actions: Sequence[Any]) -> dict[str, Any]:
    """The `set_tweak` actions as a dict; a tweak without a value is true (spec: Actions)."""
    found: dict[str, Any] = {}
    for action in actions:
        if isinstance(action, Mapping) and isinstance(action.get("set_tweak"), str):
            found[action["set_tweak"]] = action.get("value", True)
    return found


def interpret(actions: Sequence[Any]) -> Notification:
    highlight = tweaks(actions).get("highlight") is True
    return Notification(tuple(actions), "notify" in actions, highlight)
