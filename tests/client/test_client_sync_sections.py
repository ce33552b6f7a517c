"""/sync sections and options: invites, leaves, full_state, filters, lazy loading, account data."""

from __future__ import annotations

import json
from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase


class SyncSectionTests(ClientTestCase):
    async def sync(self, token: str, since: str | None = None, **params: object) -> dict:
        query = "timeout=0"
        if since:
            query += "&since=" + quote(since)
        for key, value in params.items():
            if isinstance(value, dict):
                value = json.dumps(value)
            query += f"&{key}={quote(str(value))}"
        response = await self.client.get(f"{V3}/sync?{query}", token)
        assert response.code == 200, response.json
        return response.json

    async def create(self, **body: object) -> str:
        response = await self.client.post(f"{V3}/createRoom", body, self.alice_token)
        assert response.code == 200, response.json
        return response.json["room_id"]

    async def send(self, room_id: str, body: str, token: str) -> None:
        response = await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{body.replace(' ', '_')}",
            {"msgtype": "m.text", "body": body},
            token,
        )
        assert response.code == 200, response.json

    @async_test
    async def test_invite_shows_stripped_state_then_join_moves_room(self) -> None:
        room_id = await self.create(name="Secret club", invite=[self.bob])
        first = await self.sync(self.bob_token)
        invite = first["rooms"]["invite"][room_id]["invite_state"]["events"]
        by_type = {e["type"]: e for e in invite}
        self.assertEqual(by_type["m.room.name"]["content"], {"name": "Secret club"})
        self.assertEqual(by_type["m.room.member"]["content"]["membership"], "invite")
        self.assertEqual(by_type["m.room.member"]["state_key"], self.bob)
        self.assertNotIn("event_id", by_type["m.room.name"])
        await self.client.post(f"{V3}/rooms/{quote(room_id)}/join", {}, self.bob_token)
        second = await self.sync(self.bob_token, first["next_batch"])
        self.assertNotIn(room_id, second["rooms"]["invite"])
        joined = second["rooms"]["join"][room_id]
        # A newly joined room comes with its full state.
        state_types = {e["type"] for e in joined["state"]["events"]} | {
            e["type"] for e in joined["timeline"]["events"]
        }
        self.assertTrue({"m.room.create", "m.room.power_levels", "m.room.name"} <= state_types)

    @async_test
    async def test_kicked_user_sees_leave_and_nothing_after(self) -> None:
        room_id = await self.create(preset="public_chat")
        await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
        first = await self.sync(self.bob_token)
        await self.send(room_id, "before kick", self.alice_token)
        await self.client.post(
            f"{V3}/rooms/{quote(room_id)}/kick", {"user_id": self.bob}, self.alice_token
        )
        await self.send(room_id, "after kick", self.alice_token)
        second = await self.sync(self.bob_token, first["next_batch"])
        self.assertNotIn(room_id, second["rooms"]["join"])
        left = second["rooms"]["leave"][room_id]
        events = left["timeline"]["events"]
        self.assertEqual(events[0]["content"]["body"], "before kick")
        self.assertEqual(events[-1]["content"]["membership"], "leave")
        self.assertNotIn("after kick", json.dumps(left))
        # Initial syncs show left rooms only when asked, and never once forgotten.
        plain = await self.sync(self.bob_token)
        self.assertNotIn(room_id, plain["rooms"]["leave"])
        with_leave = await self.sync(self.bob_token, filter={"room": {"include_leave": True}})
        self.assertIn(room_id, with_leave["rooms"]["leave"])
        await self.client.post(f"{V3}/rooms/{quote(room_id)}/forget", {}, self.bob_token)
        forgotten = await self.sync(self.bob_token, filter={"room": {"include_leave": True}})
        self.assertNotIn(room_id, forgotten["rooms"]["leave"])

    @async_test
    async def test_full_state_and_limited_state_delta(self) -> None:
        room_id = await self.create(preset="public_chat", name="one")
        await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
        first = await self.sync(self.bob_token)
        await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/state/m.room.name", {"name": "two"}, self.alice_token
        )
        for i in range(5):
            await self.send(room_id, f"filler {i}", self.alice_token)
        limited = await self.sync(
            self.bob_token, first["next_batch"], filter={"room": {"timeline": {"limit": 2}}}
        )
        room = limited["rooms"]["join"][room_id]
        self.assertTrue(room["timeline"]["limited"])
        # The rename happened in the gap: it comes as state, and only what changed does.
        self.assertEqual(
            [(e["type"], e["content"]) for e in room["state"]["events"]],
            [("m.room.name", {"name": "two"})],
        )
        full = await self.sync(self.bob_token, limited["next_batch"], full_state="true")
        full_types = {e["type"] for e in full["rooms"]["join"][room_id]["state"]["events"]}
        self.assertIn("m.room.create", full_types)
        self.assertIn("m.room.join_rules", full_types)

    @async_test
    async def test_lazy_loading_members(self) -> None:
        room_id = await self.create(preset="public_chat")
        _, carol_token = await self.client.register("carol")
        for token in (self.bob_token, carol_token):
            await self.client.post(f"{V3}/join/{quote(room_id)}", {}, token)
        for i in range(3):
            await self.send(room_id, f"alice {i}", self.alice_token)
        lazy = {"room": {"timeline": {"limit": 3}, "state": {"lazy_load_members": True}}}
        result = await self.sync(self.bob_token, filter=lazy)
        room = result["rooms"]["join"][room_id]
        members = {e["state_key"] for e in room["state"]["events"] if e["type"] == "m.room.member"}
        # Alice sent the timeline, Bob is the reader; Carol is left out until she speaks.
        self.assertEqual(members, {self.alice, self.bob})
        self.assertEqual(room["summary"]["m.joined_member_count"], 3)

    @async_test
    async def test_saved_filter_by_id(self) -> None:
        room_id = await self.create(preset="public_chat")
        for i in range(4):
            await self.send(room_id, f"n{i}", self.alice_token)
        created = await self.client.post(
            f"{V3}/user/{quote(self.alice)}/filter",
            {"room": {"timeline": {"limit": 2, "types": ["m.room.message"]}}},
            self.alice_token,
        )
        filter_id = created.json["filter_id"]
        fetched = await self.client.get(
            f"{V3}/user/{quote(self.alice)}/filter/{filter_id}", self.alice_token
        )
        self.assertEqual(fetched.json["room"]["timeline"]["limit"], 2)
        result = await self.sync(self.alice_token, filter=filter_id)
        events = result["rooms"]["join"][room_id]["timeline"]["events"]
        self.assertEqual([e["content"]["body"] for e in events], ["n2", "n3"])
        unknown = await self.client.get(f"{V3}/sync?filter=999", self.alice_token)
        self.assertEqual(unknown.code, 400)
        others = await self.client.get(
            f"{V3}/user/{quote(self.alice)}/filter/{filter_id}", self.bob_token
        )
        self.assertEqual(others.code, 403)

    @async_test
    async def test_account_data_global_and_per_room(self) -> None:
        room_id = await self.create()
        first = await self.sync(self.alice_token)
        path = f"{V3}/user/{quote(self.alice)}"
        await self.client.put(
            f"{path}/account_data/m.direct", {self.bob: [room_id]}, self.alice_token
        )
        await self.client.put(
            f"{path}/rooms/{quote(room_id)}/account_data/org.example.colour",
            {"colour": "teal"},
            self.alice_token,
        )
        second = await self.sync(self.alice_token, first["next_batch"])
        self.assertEqual(
            second["account_data"]["events"],
            [{"type": "m.direct", "content": {self.bob: [room_id]}}],
        )
        room_data = second["rooms"]["join"][room_id]["account_data"]["events"]
        self.assertEqual(room_data, [{"type": "org.example.colour", "content": {"colour": "teal"}}])
        read_back = await self.client.get(f"{path}/account_data/m.direct", self.alice_token)
        self.assertEqual(read_back.json, {self.bob: [room_id]})
        missing = await self.client.get(f"{path}/account_data/nothing.here", self.alice_token)
        self.assertEqual(missing.code, 404)
        not_mine = await self.client.get(f"{path}/account_data/m.direct", self.bob_token)
        self.assertEqual(not_mine.code, 403)
        third = await self.sync(self.alice_token, second["next_batch"])
        self.assertEqual(third["account_data"]["events"], [])
