"""Users' push rules: the `/pushrules` operations, the cached rulesets the evaluator reads, and
the `m.push_rules` account data that tells a user's clients the rules changed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError, bad_json, not_found
from push.rules import (
    DEFAULT_RULES,
    KINDS,
    PushRule,
    Ruleset,
    UserRules,
    find_rule,
    ruleset,
    ruleset_json,
    strip_historical_actions,
)
from storage.lru import LruCache
from storage.push_rules import RelativeRuleNotFound

if TYPE_CHECKING:
    from homeserver.sync.notifier import Notifier
    from storage.store import Storage

PUSH_RULES_TYPE = "m.push_rules"


def _invalid(message: str) -> MatrixError:
    return MatrixError(400, Codes.INVALID_PARAM, message)


class PushRulesService:
    def __init__(self, storage: Storage, notifier: Notifier, cache_size: int = 10_000) -> None:
        self.storage = storage
        self.notifier = notifier
        # user_id -> (account data position when loaded, ruleset). A write bumps the user's
        # account data position (m.push_rules), which is what makes an entry stale.
        self._cache: LruCache[str, tuple[int, Ruleset]] = LruCache(cache_size)

    # -- reading -------------------------------------------------------------------------------

    async def rulesets_for(self, user_ids: Iterable[str]) -> dict[str, Ruleset]:
        """Each user's rules in evaluation order; one query for all those not cached."""
        changes = self.storage.account_data.changes
        found: dict[str, Ruleset] = {}
        missing = []
        for user_id in user_ids:
            entry = self._cache.get(user_id)
            if entry is not None and not changes.changed_since(user_id, entry[0]):
                found[user_id] = entry[1]
            else:
                missing.append(user_id)
        if missing:
            position = self.storage.account_data.stream.current
            loaded = await self.storage.push_rules.get_for_users(missing)
            for user_id, user_rules in loaded.items():
                rules = ruleset(user_id, user_rules)
                self._cache.set(user_id, (position, rules))
                found[user_id] = rules
        return found

    async def get_ruleset(self, user_id: str) -> Ruleset:
        return (await self.rulesets_for([user_id]))[user_id]

    async def ruleset_json(self, user_id: str) -> dict[str, Any]:
        return ruleset_json(await self.get_ruleset(user_id))

    async def get_rule(self, user_id: str, kind: str, rule_id: str) -> PushRule:
        _check_kind(kind)
        rule = find_rule(await self.get_ruleset(user_id), kind, rule_id)
        if rule is None:
            raise not_found("The push rule was not found.")
        return rule

    # -- writing -------------------------------------------------------------------------------

    async def put_rule(
        self, user_id: str, kind: str, rule_id: str, body: Mapping[str, Any],
        before: str | None, after: str | None,
    ) -> None:
        _check_kind(kind)
        if rule_id.startswith("."):
            raise _invalid("Rule IDs starting with '.' are reserved for server-default rules")
        if "/" in rule_id or "\\" in rule_id:
            raise _invalid("Rule IDs may not contain slashes or backslashes")
        for anchor in (before, after):
            if anchor is not None and anchor.startswith("."):
                raise _invalid("A rule cannot be placed relative to a server-default rule")
        existing = find_rule(await self.get_ruleset(user_id), kind, rule_id)
        rule = _rule_from_body(kind, rule_id, body)
        if existing is not None:
            # Updating a rule changes what it does, not whether it is switched on.
            rule = PushRule(rule.kind, rule.rule_id, rule.actions, rule.conditions,
                            rule.pattern, existing.enabled)
        try:
            await self.storage.push_rules.put_rule(user_id, rule, before, after)
        except RelativeRuleNotFound as e:
            raise MatrixError(400, Codes.UNKNOWN, f"before/after rule not found: {e}") from e
        await self._publish(user_id)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        _check_kind(kind)
        if rule_id in DEFAULT_RULES:
            raise _invalid("Server-default rules cannot be deleted; disable them instead")
        if not await self.storage.push_rules.delete_rule(user_id, kind, rule_id):
            raise not_found("The push rule was not found.")
        await self._publish(user_id)

    async def set_enabled(self, user_id: str, kind: str, rule_id: str, enabled: Any) -> None:
        if not isinstance(enabled, bool):
            raise bad_json("'enabled' must be a boolean")
        await self._update(user_id, kind, rule_id, enabled=enabled)

    async def set_actions(self, user_id: str, kind: str, rule_id: str, actions: Any) -> None:
        await self._update(user_id, kind, rule_id, actions=_actions(actions))

    async def _update(self, user_id: str, kind: str, rule_id: str, **change: Any) -> None:
        rule = await self.get_rule(user_id, kind, rule_id)
        if rule.default:
            await self.storage.push_rules.change_default(user_id, rule_id, **change)
        elif not await self.storage.push_rules.update_rule(user_id, kind, rule_id, **change):
            raise not_found("The push rule was not found.")
        await self._publish(user_id)

    async def _publish(self, user_id: str) -> None:
        """The new ruleset goes out as `m.push_rules` account data (spec: Push Rules: Events)."""
        loaded = await self.storage.push_rules.get_for_users([user_id])
        rules = ruleset(user_id, loaded.get(user_id, UserRules()))
        await self.storage.account_data.put(user_id, "", PUSH_RULES_TYPE, ruleset_json(rules))
        self.notifier.wake_users([user_id])


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise _invalid(f"Unknown push rule kind {kind!r}")


def _actions(actions: Any) -> tuple[Any, ...]:
    if not isinstance(actions, list):
        raise bad_json("'actions' must be a list")
    for action in actions:
        if isinstance(action, str):
            continue
        if not (isinstance(action, dict) and isinstance(action.get("set_tweak"), str)):
            raise bad_json(f"Unknown push action {action!r}")
    return strip_historical_actions(actions)


def _rule_from_body(kind: str, rule_id: str, body: Mapping[str, Any]) -> PushRule:
    actions = _actions(body.get("actions"))
    conditions: tuple[dict[str, Any], ...] = ()
    pattern = None
    if kind in ("override", "underride"):
        raw = body.get("conditions", [])
        if not isinstance(raw, list) or not all(
            isinstance(c, dict) and isinstance(c.get("kind"), str) for c in raw
        ):
            raise bad_json("'conditions' must be a list of objects with a 'kind'")
        conditions = tuple(raw)
    elif kind == "content":
        pattern = body.get("pattern")
        if not isinstance(pattern, str):
            raise MatrixError(400, Codes.MISSING_PARAM, "Content rules need a 'pattern'")
    elif kind == "room" and not rule_id.startswith("!"):
        raise _invalid("The rule ID of a room rule is the room's ID")
    elif kind == "sender" and not rule_id.startswith("@"):
        raise _invalid("The rule ID of a sender rule is the user's ID")
    return PushRule(kind, rule_id, actions, conditions, pattern)
