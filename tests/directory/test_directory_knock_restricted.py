"""Knocking (POST /knock, the /sync knock section) and restricted join rules."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.directory.directory_testing import DirectoryTestCase, join_rules


class KnockTests(DirectoryTestCase):
    users = ("alice", "bob", "carol")

    async def knock(self, target: str, token: str, body: Any = None) -> Any:
        return await self.client.post(f"{V3}/knock/{quote(target)}", body or {}, token)

    @async_test
    async def test_knock_shows_in_sync_and_timeline_then_invite_lets_in(self) -> None:
        room_id = await self.create(name="Clubhouse", initial_state=[join_rules("knock")])
        alice_first = await self.sync(self.alice_token)
        bob_first = await self.sync(self.bob_token)
        knocked = await self.knock(room_id, self.bob_token, {"reason": "let me in"})
        self.assertEqual((knocked.code, knocked.json), (200, {"room_id": room_id}))

        bob_sync = await self.sync(self.bob_token, bob_first["next_batch"])
        state = bob_sync["rooms"]["knock"][room_id]["knock_state"]["events"]
        by_type = {e["type"]: e for e in state}
        self.assertIn("m.room.create", by_type)
        self.assertEqual(by_type["m.room.name"]["content"], {"name": "Clubhouse"})
        member = by_type["m.room.member"]
        self.assertEqual(
            (member["state_key"], member["content"]["membership"]), (self.bob, "knock")
        )
        self.assertEqual(set(member), {"type", "state_key", "content", "sender"})
        self.assertNotIn(room_id, bob_sync["rooms"]["join"])

        alice_sync = await self.sync(self.alice_token, alice_first["next_batch"])
        timeline = alice_sync["rooms"]["join"][room_id]["timeline"]["events"]
        knocks = [e for e in timeline if e["type"] == "m.room.member" and e["sender"] == self.bob]
        self.assertEqual(knocks[0]["content"]["membership"], "knock")
        self.assertEqual(knocks[0]["content"]["reason"], "let me in")

        # Without an invite the knock does not let bob in; an invite does.
        refused = await self.join(room_id, self.bob_token)
        self.assertEqual((refused.code, refused.json["errcode"]), (403, "M_FORBIDDEN"))
        await self.invite(room_id, self.bob)
        joined = await self.join(room_id, self.bob_token)
        self.assertEqual(joined.code, 200)
        later = await self.sync(self.bob_token, bob_sync["next_batch"])
        self.assertIn(room_id, later["rooms"]["join"])
        self.assertNotIn(room_id, later["rooms"]["knock"])

    @async_test
    async def test_leave_rescinds_a_knock(self) -> None:
        room_id = await self.create(initial_state=[join_rules("knock")])
        self.assertEqual((await self.knock(room_id, self.carol_token)).code, 200)
        left = await self.client.post(self.room(room_id, "leave"), {}, self.carol_token)
        self.assertEqual(left.code, 200)
        member = await self.get_state(room_id, "m.room.member", self.carol)
        self.assertEqual(member.json["membership"], "leave")
        full = await self.sync(self.carol_token)
        self.assertNotIn(room_id, full["rooms"]["knock"])

    @async_test
    async def test_knock_by_alias(self) -> None:
        room_id = await self.create(room_alias_name="lobby", initial_state=[join_rules("knock")])
        knocked = await self.knock("#lobby:test.local", self.bob_token)
        self.assertEqual((knocked.code, knocked.json), (200, {"room_id": room_id}))

    @async_test
    async def test_knock_refused_where_the_room_does_not_allow_it(self) -> None:
        public = await self.create(preset="public_chat")
        response = await self.knock(public, self.bob_token)
        self.assertEqual((response.code, response.json["errcode"]), (403, "M_FORBIDDEN"))
        # Room version 6 has no knocking, whatever its join rule says.
        old = await self.create(room_version="6", initial_state=[join_rules("knock")])
        response = await self.knock(old, self.bob_token)
        self.assertEqual((response.code, response.json["errcode"]), (403, "M_FORBIDDEN"))
        # Members cannot knock.
        knockable = await self.create(initial_state=[join_rules("knock")])
        response = await self.knock(knockable, self.alice_token)
        self.assertEqual((response.code, response.json["errcode"]), (403, "M_FORBIDDEN"))

    @async_test
    async def test_knock_on_unknown_rooms_and_bad_input(self) -> None:
        unknown = await self.knock("!nowhere:test.local", self.bob_token)
        self.assertEqual((unknown.code, unknown.json["errcode"]), (404, "M_NOT_FOUND"))
        missing = await self.knock("#nowhere:test.local", self.bob_token)
        self.assertEqual((missing.code, missing.json["errcode"]), (404, "M_NOT_FOUND"))
        for target in ("!a\x00b:test.local", "#a\x00b:test.local"):
            nul = await self.knock(target, self.bob_token)
            self.assertEqual((nul.code, nul.json["errcode"]), (400, "M_INVALID_PARAM"))
        room_id = await self.create(initial_state=[join_rules("knock")])
        bad = await self.knock(room_id, self.bob_token, {"reason": 5})
        self.assertEqual((bad.code, bad.json["errcode"]), (400, "M_BAD_JSON"))
        anonymous = await self.client.post(f"{V3}/knock/{quote(room_id)}", {})
        self.assertEqual((anonymous.code, anonymous.json["errcode"]), (401, "M_MISSING_TOKEN"))


class RestrictedJoinTests(DirectoryTestCase):
    users = ("alice", "bob", "carol")

    @async_test
    async def test_members_of_an_allowed_room_join_without_invite(self) -> None:
        space = await self.create_space(preset="public_chat")
        for version in ("8", "10", "12"):
            room_id = await self.create(
                room_version=version, initial_state=[join_rules("restricted", space)]
            )
            refused = await self.join(room_id, self.bob_token)
            self.assertEqual((refused.code, refused.json["errcode"]), (403, "M_FORBIDDEN"))
            self.assertEqual((await self.join(space, self.bob_token)).code, 200)
            joined = await self.join(room_id, self.bob_token)
            self.assertEqual(joined.code, 200, version)
            member = await self.get_state(room_id, "m.room.member", self.bob)
            self.assertEqual(member.json["membership"], "join")
            self.assertEqual(member.json["join_authorised_via_users_server"], self.alice)
            await self.client.post(self.room(space, "leave"), {}, self.bob_token)
        # Having been a member is not enough: the condition is checked at join time.
        carol = await self.join(room_id, self.carol_token)
        self.assertEqual((carol.code, carol.json["errcode"]), (403, "M_FORBIDDEN"))

    @async_test
    async def test_invited_users_join_restricted_rooms_without_the_condition(self) -> None:
        space = await self.create_space()
        room_id = await self.create(initial_state=[join_rules("restricted", space)])
        await self.invite(room_id, self.carol)
        joined = await self.join(room_id, self.carol_token)
        self.assertEqual(joined.code, 200)
        member = await self.get_state(room_id, "m.room.member", self.carol)
        self.assertNotIn("join_authorised_via_users_server", member.json)

    @async_test
    async def test_restricted_rule_in_a_version_without_it_is_invite_only(self) -> None:
        space = await self.create_space(preset="public_chat")
        await self.join(space, self.bob_token)
        room_id = await self.create(
            room_version="7", initial_state=[join_rules("restricted", space)]
        )
        refused = await self.join(room_id, self.bob_token)
        self.assertEqual((refused.code, refused.json["errcode"]), (403, "M_FORBIDDEN"))

    @async_test
    async def test_knock_restricted_joins_members_and_lets_others_knock(self) -> None:
        space = await self.create_space(preset="public_chat")
        await self.join(space, self.bob_token)
        room_id = await self.create(
            room_version="10", initial_state=[join_rules("knock_restricted", space)]
        )
        self.assertEqual((await self.join(room_id, self.bob_token)).code, 200)
        refused = await self.join(room_id, self.carol_token)
        self.assertEqual((refused.code, refused.json["errcode"]), (403, "M_FORBIDDEN"))
        knocked = await self.client.post(f"{V3}/knock/{quote(room_id)}", {}, self.carol_token)
        self.assertEqual(knocked.code, 200)
        member = await self.get_state(room_id, "m.room.member", self.carol)
        self.assertEqual(member.json["membership"], "knock")
