"""Who may publish a room to the public room directory: `room_list_publication_rules`.

With rules configured they mean what they mean in Synapse: each rule has optional `user_id`,
`room_id` and `alias` globs ("*" any run of characters, "?" one; case-insensitive; a missing
glob is "*") and an `action`, allow or deny; the first rule matching the request decides, and a
request no rule matches is denied. The alias glob matches when it is "*" or when any of the
room's aliases matches it. A room still being created has no room ID yet: only rules whose
room_id glob is "*" can match it.

Without the key we do not follow Synapse's "nobody" default: the room's creators and its admins
(those who may change its power levels) may publish, as may server admins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from homeserver.config import ConfigError
from homeserver.globs import glob_to_regex

_KEY = "room_list_publication_rules"
_RULE_KEYS = frozenset({"user_id", "room_id", "alias", "action"})


@dataclass(frozen=True)
class PublicationRule:
    allow: bool
    user_id: re.Pattern[str]
    room_id: re.Pattern[str]
    room_id_is_any: bool
    alias: re.Pattern[str]
    alias_is_any: bool

    def matches(self, user_id: str, room_id: str | None, aliases: Sequence[str]) -> bool:
        if not self.user_id.fullmatch(user_id):
            return False
        if room_id is None:
            if not self.room_id_is_any:
                return False
        elif not self.room_id.fullmatch(room_id):
            return False
        if self.alias_is_any:
            return True
        return any(self.alias.fullmatch(alias) for alias in aliases)


def parse_rule(index: int, raw: Mapping[str, Any]) -> PublicationRule:
    where = f"{_KEY}[{index}]"
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    action = raw.get("action")
    if action not in ("allow", "deny"):
        raise ConfigError(f"{where}.action: expected 'allow' or 'deny', got {action!r}")
    globs = {}
    for key in ("user_id", "room_id", "alias"):
        value = raw.get(key, "*")
        if not isinstance(value, str):
            raise ConfigError(f"{where}.{key}: expected a glob string, got {value!r}")
        globs[key] = value
    return PublicationRule(
        allow=action == "allow",
        user_id=glob_to_regex(globs["user_id"]),
        room_id=glob_to_regex(globs["room_id"]),
        room_id_is_any=globs["room_id"] == "*",
        alias=glob_to_regex(globs["alias"]),
        alias_is_any=globs["alias"] == "*",
    )


class PublicationPolicy:
    """`rules` None means the key is absent: the built-in policy of the module docstring."""

    def __init__(self, rules: Sequence[Mapping[str, Any]] | None) -> None:
        self.rules = None if rules is None else [parse_rule(i, r) for i, r in enumerate(rules)]

    @property
    def uses_rules(self) -> bool:
        return self.rules is not None

    def rules_allow(self, user_id: str, room_id: str | None, aliases: Sequence[str]) -> bool:
        assert self.rules is not None
        for rule in self.rules:
            if rule.matches(user_id, room_id, aliases):
                return rule.allow
        return False
