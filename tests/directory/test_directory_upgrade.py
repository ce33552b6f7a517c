"""POST /rooms/{roomId}/upgrade."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.directory.directory_testing import DirectoryTestCase


class UpgradeTests(DirectoryTestCase):
    users = ("alice", "bob", "carol")

    async def upgrade(self, room_id: str, body: Any, token: str | None = None) -> Any:
        return await self.client.post(
            self.room(room_id, "upgrade"), body, token or self.alice_token
        )

    async def state_map(
        self, room_id: str, token: str | None = None
    ) -> dict[tuple[str, str], dict[str, Any]]:
        response = await self.client.get(self.room(room_id, "state"), token or self.alice_token)
        assert response.code == 200, response.json
        return {(e["type"], e["state_key"]): e for e in response.json}

    async def old_room(self, version: str) -> str:
        room_id = await self.create(
            room_version=version,
            preset="public_chat",
            visibility="public",
            name="Old times",
            topic="Before the upgrade",
            room_alias_name="times",
            initial_state=[
                {"type": "m.room.encryption", "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
                {"type": "m.room.server_acl", "content": {"allow": ["*"], "deny": ["bad.example"]}},
                {"type": "org.example.custom", "content": {"keep": False}},
            ],
        )
        await self.join(room_id, self.bob_token)
        await self.join(room_id, self.carol_token)
        banned = await self.client.post(
            self.room(room_id, "ban"), {"user_id": self.carol, "reason": "spam"}, self.alice_token
        )
        assert banned.code == 200, banned.json
        return room_id

    @async_test
    async def test_upgrade_replaces_the_room(self) -> None:
        old = await self.old_room("10")
        response = await self.upgrade(old, {"new_version": "11"})
        self.assertEqual(response.code, 200, response.json)
        new = response.json["replacement_room"]
        self.assertNotEqual(new, old)
        state = await self.state_map(new)
        create = state[("m.room.create", "")]
        self.assertEqual(create["content"]["room_version"], "11")
        predecessor = create["content"]["predecessor"]
        self.assertEqual(predecessor["room_id"], old)
        self.assertTrue(predecessor["event_id"].startswith("$"))
        self.assertNotIn("type", create["content"])
        for key, expected in (
            ("m.room.name", {"name": "Old times"}),
            ("m.room.join_rules", {"join_rule": "public"}),
            ("m.room.history_visibility", {"history_visibility": "shared"}),
            ("m.room.guest_access", {"guest_access": "forbidden"}),
            ("m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}),
            ("m.room.server_acl", {"allow": ["*"], "deny": ["bad.example"]}),
            ("m.room.canonical_alias", {"alias": "#times:test.local"}),
        ):
            self.assertEqual(state[(key, "")]["content"], expected, key)
        self.assertEqual(state[("m.room.topic", "")]["content"]["topic"], "Before the upgrade")
        self.assertNotIn(("org.example.custom", ""), state)
        levels = state[("m.room.power_levels", "")]["content"]
        self.assertEqual(levels["users"], {self.alice: 100})
        # Members are not moved; banned users stay banned.
        self.assertEqual(state[("m.room.member", self.alice)]["content"]["membership"], "join")
        self.assertNotIn(("m.room.member", self.bob), state)
        self.assertEqual(state[("m.room.member", self.carol)]["content"]["membership"], "ban")

        old_state = await self.state_map(old)
        tombstone = old_state[("m.room.tombstone", "")]["content"]
        self.assertEqual(tombstone["replacement_room"], new)
        self.assertIsInstance(tombstone["body"], str)
        old_levels = old_state[("m.room.power_levels", "")]["content"]
        self.assertGreaterEqual(old_levels["events_default"], 50)
        self.assertGreaterEqual(old_levels["invite"], 50)
        self.assertEqual(old_state[("m.room.canonical_alias", "")]["content"], {})
        # Bob, an ordinary member, can no longer talk in the old room.
        sent = await self.client.put(
            self.room(old, "send/m.room.message/t1"),
            {"msgtype": "m.text", "body": "hi"},
            self.bob_token,
        )
        self.assertEqual(sent.code, 403)

        alias = await self.client.get(f"{V3}/directory/room/{quote('#times:test.local')}")
        self.assertEqual(alias.json["room_id"], new)
        listed = await self.client.get(f"{V3}/publicRooms", self.alice_token)
        self.assertEqual([r["room_id"] for r in listed.json["chunk"]], [new])
        joined = await self.join(new, self.bob_token)
        self.assertEqual(joined.code, 200)
        carol = await self.join(new, self.carol_token)
        self.assertEqual(carol.code, 403)

    @async_test
    async def test_upgrade_to_v12_with_additional_creators(self) -> None:
        old = await self.old_room("11")
        response = await self.upgrade(old, {"new_version": "12", "additional_creators": [self.bob]})
        self.assertEqual(response.code, 200, response.json)
        new = response.json["replacement_room"]
        state = await self.state_map(new)
        create = state[("m.room.create", "")]["content"]
        self.assertEqual(create["predecessor"], {"room_id": old})
        self.assertEqual(create["additional_creators"], [self.bob])
        self.assertNotIn("creator", create)
        levels = state[("m.room.power_levels", "")]["content"]
        # Creators' power is implicit in v12: they may not be listed.
        self.assertNotIn(self.alice, levels["users"])
        self.assertNotIn(self.bob, levels["users"])

    @async_test
    async def test_upgrading_a_space_keeps_its_type_and_children(self) -> None:
        space = await self.create_space(preset="public_chat", name="Guild")
        channel = await self.create(preset="public_chat")
        await self.add_child(space, channel, order="a")
        response = await self.upgrade(space, {"new_version": "12"})
        new = response.json["replacement_room"]
        state = await self.state_map(new)
        self.assertEqual(state[("m.room.create", "")]["content"]["type"], "m.space")
        self.assertEqual(
            state[("m.space.child", channel)]["content"], {"via": ["test.local"], "order": "a"}
        )

    @async_test
    async def test_a_v12_creator_downgrading_keeps_top_power(self) -> None:
        old = await self.create(preset="public_chat")
        response = await self.upgrade(old, {"new_version": "10"})
        self.assertEqual(response.code, 200, response.json)
        state = await self.state_map(response.json["replacement_room"])
        levels = state[("m.room.power_levels", "")]["content"]
        self.assertEqual(levels["users"][self.alice], 150)
        self.assertEqual(state[("m.room.create", "")]["content"]["creator"], self.alice)

    @async_test
    async def test_upgrade_refused(self) -> None:
        room_id = await self.create(preset="public_chat")
        await self.join(room_id, self.bob_token)
        weak = await self.upgrade(room_id, {"new_version": "11"}, self.bob_token)
        self.assertEqual((weak.code, weak.json["errcode"]), (403, "M_FORBIDDEN"))
        outsider = await self.upgrade(room_id, {"new_version": "11"}, self.carol_token)
        self.assertEqual((outsider.code, outsider.json["errcode"]), (403, "M_FORBIDDEN"))
        unknown = await self.upgrade("!nowhere:test.local", {"new_version": "11"})
        self.assertEqual((unknown.code, unknown.json["errcode"]), (403, "M_FORBIDDEN"))
        nul = await self.upgrade("!a\x00b:test.local", {"new_version": "11"})
        self.assertEqual((nul.code, nul.json["errcode"]), (400, "M_INVALID_PARAM"))
        version = await self.upgrade(room_id, {"new_version": "999"})
        self.assertEqual(
            (version.code, version.json["errcode"]), (400, "M_UNSUPPORTED_ROOM_VERSION")
        )
        for body in ({}, {"new_version": 11}):
            response = await self.upgrade(room_id, body)
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_BAD_JSON"))
        creators = await self.upgrade(room_id, {"new_version": "12", "additional_creators": "x"})
        self.assertEqual((creators.code, creators.json["errcode"]), (400, "M_BAD_JSON"))
        invalid = await self.upgrade(room_id, {"new_version": "12", "additional_creators": ["x"]})
        self.assertEqual((invalid.code, invalid.json["errcode"]), (400, "M_INVALID_PARAM"))
        # None of that touched the room.
        state = await self.state_map(room_id)
        self.assertNotIn(("m.room.tombstone", ""), state)

    @async_test
    async def test_power_to_tombstone_is_what_counts(self) -> None:
        room_id = await self.create(room_version="10", preset="public_chat")
        await self.join(room_id, self.bob_token)
        levels = (await self.get_state(room_id, "m.room.power_levels")).json
        levels["events"]["m.room.tombstone"] = 40
        levels["users"][self.bob] = 40
        await self.put_state(room_id, "m.room.power_levels", levels)
        response = await self.upgrade(room_id, {"new_version": "10"}, self.bob_token)
        self.assertEqual(response.code, 200, response.json)
        state = await self.state_map(response.json["replacement_room"], self.bob_token)
        # Bob was lifted to copy the state (the power levels need 100), then set back.
        levels = state[("m.room.power_levels", "")]["content"]
        self.assertEqual(levels["users"], {self.alice: 100, self.bob: 40})
        self.assertEqual(state[("m.room.join_rules", "")]["content"], {"join_rule": "public"})
        self.assertEqual(state[("m.room.member", self.bob)]["content"]["membership"], "join")
