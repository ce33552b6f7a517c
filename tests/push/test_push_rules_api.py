"""/pushrules over HTTP, and the m.push_rules account data that follows every change."""

from __future__ import annotations

from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase

RULES = f"{V3}/pushrules/global"


def rule_ids(ruleset: dict, kind: str) -> list[str]:
    return [r["rule_id"] for r in ruleset["global"][kind]]


class PushRulesApi(ClientTestCase):
    async def ruleset(self) -> dict:
        response = await self.client.get(f"{V3}/pushrules/", self.alice_token)
        self.assertEqual(response.code, 200, response.json)
        return response.json

    @async_test
    async def test_defaults_are_the_spec_rules_in_order(self) -> None:
        ruleset = await self.ruleset()
        self.assertEqual(rule_ids(ruleset, "override"), [
            ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me",
            ".m.rule.member_event", ".m.rule.is_user_mention", ".m.rule.is_room_mention",
            ".m.rule.tombstone", ".m.rule.reaction", ".m.rule.room.server_acl",
            ".m.rule.suppress_edits",
        ])
        self.assertEqual(rule_ids(ruleset, "underride"), [
            ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
            ".m.rule.message", ".m.rule.encrypted",
        ])
        self.assertEqual((ruleset["global"]["content"], ruleset["global"]["room"]), ([], []))
        mention = ruleset["global"]["override"][4]
        self.assertEqual(mention["conditions"][0]["value"], self.alice)
        self.assertFalse(ruleset["global"]["override"][0]["enabled"])
        global_only = await self.client.get(f"{RULES}/", self.alice_token)
        self.assertEqual(global_only.json, ruleset["global"])

    @async_test
    async def test_add_order_change_and_delete_user_rules(self) -> None:
        for rule_id, query in (("tea", ""), ("time", ""), ("first", "?before=time"),
                               ("last", "?after=tea")):
            response = await self.client.put(
                f"{RULES}/content/{rule_id}{query}", {"pattern": rule_id, "actions": ["notify"]},
                self.alice_token,
            )
            self.assertEqual(response.code, 200, response.json)
        # New rules go first unless placed; before/after put them next to their anchor.
        self.assertEqual(rule_ids(await self.ruleset(), "content"),
                         ["first", "time", "tea", "last"])
        one = await self.client.get(f"{RULES}/content/tea", self.alice_token)
        self.assertEqual(one.json, {"rule_id": "tea", "default": False, "enabled": True,
                                    "actions": ["notify"], "pattern": "tea"})

        off = await self.client.put(f"{RULES}/content/tea/enabled", {"enabled": False},
                                    self.alice_token)
        self.assertEqual(off.code, 200, off.json)
        enabled = await self.client.get(f"{RULES}/content/tea/enabled", self.alice_token)
        self.assertEqual(enabled.json, {"enabled": False})
        # Updating the rule keeps it disabled and in its place; dont_notify is dropped.
        await self.client.put(f"{RULES}/content/tea", {"pattern": "tea*",
                                                       "actions": ["dont_notify"]},
                              self.alice_token)
        tea = (await self.client.get(f"{RULES}/content/tea", self.alice_token)).json
        self.assertEqual((tea["enabled"], tea["actions"], tea["pattern"]), (False, [], "tea*"))
        self.assertEqual(rule_ids(await self.ruleset(), "content"),
                         ["first", "time", "tea", "last"])

        deleted = await self.client.request("DELETE", f"{RULES}/content/tea",
                                            token=self.alice_token)
        self.assertEqual(deleted.code, 200, deleted.json)
        gone = await self.client.get(f"{RULES}/content/tea", self.alice_token)
        self.assertEqual((gone.code, gone.json["errcode"]), (404, "M_NOT_FOUND"))
        # Bob's rules are his own.
        bobs = await self.client.get(f"{V3}/pushrules/", self.bob_token)
        self.assertEqual(bobs.json["global"]["content"], [])

    @async_test
    async def test_default_rules_can_be_switched_and_given_actions_but_not_replaced(self) -> None:
        master = f"{RULES}/override/.m.rule.master"
        self.assertEqual((await self.client.put(f"{master}/enabled", {"enabled": True},
                                                self.alice_token)).code, 200)
        message = f"{RULES}/underride/.m.rule.message"
        self.assertEqual((await self.client.put(
            f"{message}/actions", {"actions": ["notify", {"set_tweak": "sound",
                                                          "value": "bing"}]},
            self.alice_token)).code, 200)
        got = (await self.client.get(message, self.alice_token)).json
        self.assertEqual(got["actions"], ["notify", {"set_tweak": "sound", "value": "bing"}])
        self.assertTrue(got["default"])
        self.assertTrue((await self.client.get(master, self.alice_token)).json["enabled"])

        replaced = await self.client.put(master, {"actions": []}, self.alice_token)
        self.assertEqual((replaced.code, replaced.json["errcode"]), (400, "M_INVALID_PARAM"))
        deleted = await self.client.request("DELETE", master, token=self.alice_token)
        self.assertEqual(deleted.code, 400)

    @async_test
    async def test_bad_requests_get_matrix_errors(self) -> None:
        cases = [
            ("PUT", f"{RULES}/content/x", {"actions": ["notify"]}, 400),  # no pattern
            ("PUT", f"{RULES}/content/x", {"pattern": "x"}, 400),  # no actions
            ("PUT", f"{RULES}/content/x", {"pattern": "x", "actions": [3]}, 400),
            ("PUT", f"{RULES}/override/x", {"actions": [], "conditions": "no"}, 400),
            ("PUT", f"{RULES}/nonsense/x", {"actions": []}, 400),
            ("PUT", f"{RULES}/room/notaroom", {"actions": []}, 400),
            ("PUT", f"{RULES}/content/x?before=missing", {"pattern": "x", "actions": []}, 400),
            ("PUT", f"{RULES}/content/x?after=.m.rule.master", {"pattern": "x", "actions": []},
             400),
            ("GET", f"{RULES}/override/unknown", None, 404),
            ("PUT", f"{RULES}/override/unknown/enabled", {"enabled": True}, 404),
            ("PUT", f"{RULES}/override/.m.rule.master/enabled", {"enabled": "yes"}, 400),
            ("DELETE", f"{RULES}/sender/{quote('@nobody:x')}", None, 404),
        ]
        for method, path, body, code in cases:
            response = await self.client.request(method, path, body, token=self.alice_token)
            self.assertEqual(response.code, code, (method, path, response.json))
            self.assertIn("errcode", response.json)

    @async_test
    async def test_changes_reach_sync_as_account_data(self) -> None:
        initial = await self.client.get(f"{V3}/sync", self.alice_token)
        [rules] = [e for e in initial.json["account_data"]["events"]
                   if e["type"] == "m.push_rules"]
        self.assertEqual(rules["content"], await self.ruleset())
        since = initial.json["next_batch"]
        room = f"{RULES}/room/{quote('!quiet:test.local')}"
        self.assertEqual((await self.client.put(room, {"actions": []}, self.alice_token)).code,
                         200)
        later = await self.client.get(f"{V3}/sync?since={since}&timeout=5000", self.alice_token)
        [changed] = [e for e in later.json["account_data"]["events"]
                     if e["type"] == "m.push_rules"]
        self.assertEqual(rule_ids(changed["content"], "room"), ["!quiet:test.local"])
        direct = await self.client.get(
            f"{V3}/user/{quote(self.alice)}/account_data/m.push_rules", self.alice_token)
        self.assertEqual(direct.json, changed["content"])
