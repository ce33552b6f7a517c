"""Storage of users' push rules: the rules they added and their changes to the defaults."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from push.rules import DefaultRuleChange, PushRule, UserRules
from storage.database import Database, Txn
from storage.events import chunks, placeholders

_RULE_COLUMNS = "user_id, kind, rule_id, conditions, actions, pattern, enabled"


class RelativeRuleNotFound(Exception):
    """`before` or `after` names a rule the user does not have."""


class PushRuleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_for_users(self, user_ids: Iterable[str]) -> dict[str, UserRules]:
        """Every listed user's rules (an empty UserRules for users who changed nothing)."""
        users = sorted(set(user_ids))

        def txn_fn(txn: Txn) -> tuple[list, list]:
            rules: list = []
            changes: list = []
            for chunk in chunks(users):
                marks = placeholders(len(chunk))
                rules += txn.query(
                    f"SELECT {_RULE_COLUMNS} FROM push_rules WHERE user_id IN ({marks})"
                    " ORDER BY user_id, kind, position",
                    chunk,
                )
                changes += txn.query(
                    "SELECT user_id, rule_id, enabled, actions FROM push_rule_default_changes"
                    f" WHERE user_id IN ({marks})",
                    chunk,
                )
            return rules, changes

        rule_rows, change_rows = await self.db.run("get_push_rules", txn_fn)
        own: dict[str, list[PushRule]] = {u: [] for u in users}
        for user_id, kind, rule_id, conditions, actions, pattern, enabled in rule_rows:
            own[user_id].append(
                PushRule(kind, rule_id, tuple(json.loads(actions)),
                         tuple(json.loads(conditions)), pattern, bool(enabled))
            )
        default_changes: dict[str, dict[str, DefaultRuleChange]] = {u: {} for u in users}
        for user_id, rule_id, enabled, actions in change_rows:
            default_changes[user_id][rule_id] = DefaultRuleChange(
                None if enabled is None else bool(enabled),
                None if actions is None else tuple(json.loads(actions)),
            )
        return {u: UserRules(tuple(own[u]), default_changes[u]) for u in users}

    async def put_rule(
        self, user_id: str, rule: PushRule, before: str | None, after: str | None
    ) -> None:
        """Adds or replaces a user rule. A new rule without before/after becomes the most
        important of its kind; a replaced one keeps its place unless before/after moves it."""
        await self.db.run("put_push_rule", _put_rule, user_id, rule, before, after)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> bool:
        def txn_fn(txn: Txn) -> bool:
            txn.execute(
                "DELETE FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?",
                (user_id, kind, rule_id),
            )
            return txn.rowcount > 0

        return await self.db.run("delete_push_rule", txn_fn)

    async def update_rule(
        self, user_id: str, kind: str, rule_id: str, *, enabled: bool | None = None,
        actions: Sequence[Any] | None = None,
    ) -> bool:
        """Changes a user rule's `enabled` or `actions`; False if the user has no such rule."""
        column, value = _change(enabled, actions)

        def txn_fn(txn: Txn) -> bool:
            txn.execute(
                f"UPDATE push_rules SET {column} = ? WHERE user_id = ? AND kind = ?"
                " AND rule_id = ?",
                (value, user_id, kind, rule_id),
            )
            return txn.rowcount > 0

        return await self.db.run("update_push_rule", txn_fn)

    async def change_default(
        self, user_id: str, rule_id: str, *, enabled: bool | None = None,
        actions: Sequence[Any] | None = None,
    ) -> None:
        """Records the user's change to a server-default rule's `enabled` or `actions`."""
        column, value = _change(enabled, actions)
        await self.db.run(
            "change_default_push_rule",
            lambda txn: txn.execute(
                f"INSERT INTO push_rule_default_changes (user_id, rule_id, {column})"
                f" VALUES (?, ?, ?) ON CONFLICT (user_id, rule_id)"
                f" DO UPDATE SET {column} = excluded.{column}",
                (user_id, rule_id, value),
            ),
        )


def _change(enabled: bool | None, actions: Sequence[Any] | None) -> tuple[str, Any]:
    if enabled is not None:
        return "enabled", int(enabled)
    assert actions is not None
    return "actions", json.dumps(list(actions))


def _put_rule(
    txn: Txn, user_id: str, rule: PushRule, before: str | None, after: str | None
) -> None:
    rows = txn.query(
        "SELECT rule_id FROM push_rules WHERE user_id = ? AND kind = ? ORDER BY position",
        (user_id, rule.kind),
    )
    order = [row[0] for row in rows]
    existed = rule.rule_id in order
    for anchor in (before, after):
        if anchor is not None and (anchor not in order or anchor == rule.rule_id):
            raise RelativeRuleNotFound(anchor)
    if before is not None or after is not None or not existed:
        if existed:
            order.remove(rule.rule_id)
        if before is not None:
            order.insert(order.index(before), rule.rule_id)
        elif after is not None:
            order.insert(order.index(after) + 1, rule.rule_id)
        else:
            order.insert(0, rule.rule_id)
    txn.execute(
        "DELETE FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?",
        (user_id, rule.kind, rule.rule_id),
    )
    txn.execute(
        "INSERT INTO push_rules (user_id, kind, rule_id, position, conditions, actions,"
        " pattern, enabled) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (user_id, rule.kind, rule.rule_id, 0, json.dumps([dict(c) for c in rule.conditions]),
         json.dumps(list(rule.actions)), rule.pattern, int(rule.enabled)),
    )
    txn.executemany(
        "UPDATE push_rules SET position = ? WHERE user_id = ? AND kind = ? AND rule_id = ?",
        [(position, user_id, rule.kind, rule_id) for position, rule_id in enumerate(order)],
    )
