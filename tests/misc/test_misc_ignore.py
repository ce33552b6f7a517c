"""Ignoring users: m.ignored_user_list hides their events (not their state) and invites."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase


class IgnoreTests(ClientTestCase):
    users = ("alice", "bob", "carol")

    async def sync(self, token: str, since: str | None = None) -> dict[str, Any]:
        query = "timeout=0" + (f"&since={quote(since)}" if since else "")
        response = await self.client.get(f"{V3}/sync?{query}", token)
        self.assertEqual(response.code, 200, response.json)
        return response.json

    async def ignore(self, *user_ids: str, token: str | None = None) -> None:
        response = await self.client.put(
            f"{V3}/user/{quote(self.alice)}/account_data/m.ignored_user_list",
            {"ignored_users": {u: {} for u in user_ids}},
            token or self.alice_token,
        )
        self.assertEqual(response.code, 200, response.json)

    async def shared_room(self) -> str:
        response = await self.client.post(
            f"{V3}/createRoom", {"preset": "public_chat"}, self.carol_token
        )
        room_id = response.json["room_id"]
        for token in (self.alice_token, self.bob_token):
            joined = await self.client.post(f"{V3}/join/{quote(room_id)}", {}, token)
            self.assertEqual(joined.code, 200, joined.json)
        return room_id

    async def send(self, room_id: str, body: str, token: str) -> str:
        response = await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{body.replace(' ', '_')}",
            {"msgtype": "m.text", "body": body},
            token,
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json["event_id"]

    async def messages(self, room_id: str, token: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"{V3}/rooms/{quote(room_id)}/messages?dir=b&limit=50", token
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json["chunk"]

    def bodies(self, events: list[dict[str, Any]]) -> list[str]:
        return [e["content"]["body"] for e in events if e["type"] == "m.room.message"]

    @async_test
    async def test_ignored_messages_hidden_but_state_kept(self) -> None:
        room_id = await self.shared_room()
        before = await self.sync(self.alice_token)
        await self.ignore(self.bob)
        await self.send(room_id, "from bob", self.bob_token)
        # A state event of bob's: his new display name.
        rename = await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/state/m.room.member/{quote(self.bob)}",
            {"membership": "join", "displayname": "Bobby"},
            self.bob_token,
        )
        self.assertEqual(rename.code, 200, rename.json)
        await self.send(room_id, "from carol", self.carol_token)

        after = await self.sync(self.alice_token, before["next_batch"])
        timeline = after["rooms"]["join"][room_id]["timeline"]["events"]
        self.assertEqual(self.bodies(timeline), ["from carol"])
        # Bob's state event still arrives: the room must not look different to alice.
        self.assertIn(
            ("m.room.member", self.bob, "Bobby"),
            [(e["type"], e["sender"], e["content"].get("displayname")) for e in timeline],
        )
        self.assertEqual(
            self.bodies(await self.messages(room_id, self.alice_token)), ["from carol"]
        )
        # Everyone else still sees bob.
        carol_view = await self.messages(room_id, self.carol_token)
        self.assertEqual(self.bodies(carol_view), ["from carol", "from bob"])
        initial = await self.sync(self.carol_token)
        self.assertIn(
            "from bob", self.bodies(initial["rooms"]["join"][room_id]["timeline"]["events"])
        )
        # A fresh initial sync of alice's hides bob's earlier messages too.
        fresh = await self.sync(self.alice_token)
        self.assertNotIn("from bob", json.dumps(fresh))

    @async_test
    async def test_unignoring_resumes_without_replaying(self) -> None:
        room_id = await self.shared_room()
        await self.ignore(self.bob)
        first = await self.sync(self.alice_token)
        await self.send(room_id, "while ignored", self.bob_token)
        await self.send(room_id, "carol meanwhile", self.carol_token)
        second = await self.sync(self.alice_token, first["next_batch"])
        timeline = second["rooms"]["join"][room_id]["timeline"]["events"]
        self.assertEqual(self.bodies(timeline), ["carol meanwhile"])
        await self.ignore()
        await self.send(room_id, "after unignore", self.bob_token)
        third = await self.sync(self.alice_token, second["next_batch"])
        # Bob is heard again, but what alice's sync skipped is not sent after the fact.
        timeline = third["rooms"]["join"][room_id]["timeline"]["events"]
        self.assertEqual(self.bodies(timeline), ["after unignore"])
        # The account data change itself is news in /sync.
        self.assertIn(
            {"type": "m.ignored_user_list", "content": {"ignored_users": {}}},
            third["account_data"]["events"],
        )
        # A client that wants the missed history scrolls back (or syncs afresh).
        self.assertEqual(
            self.bodies(await self.messages(room_id, self.alice_token)),
            ["after unignore", "carol meanwhile", "while ignored"],
        )

    @async_test
    async def test_change_takes_effect_at_once(self) -> None:
        room_id = await self.shared_room()
        first = await self.sync(self.alice_token)
        await self.send(room_id, "seen", self.bob_token)
        second = await self.sync(self.alice_token, first["next_batch"])
        self.assertEqual(
            self.bodies(second["rooms"]["join"][room_id]["timeline"]["events"]), ["seen"]
        )
        await self.ignore(self.bob)
        await self.send(room_id, "unseen", self.bob_token)
        third = await self.sync(self.alice_token, second["next_batch"])
        room = third["rooms"]["join"].get(room_id, {"timeline": {"events": []}})
        self.assertEqual(self.bodies(room["timeline"]["events"]), [])

    @async_test
    async def test_invites_from_ignored_users_hidden(self) -> None:
        await self.ignore(self.bob)
        first = await self.sync(self.alice_token)
        response = await self.client.post(
            f"{V3}/createRoom", {"invite": [self.alice]}, self.bob_token
        )
        from_bob = response.json["room_id"]
        response = await self.client.post(
            f"{V3}/createRoom", {"invite": [self.alice]}, self.carol_token
        )
        from_carol = response.json["room_id"]
        second = await self.sync(self.alice_token, first["next_batch"])
        self.assertEqual(list(second["rooms"]["invite"]), [from_carol])
        initial = await self.sync(self.alice_token)
        self.assertEqual(list(initial["rooms"]["invite"]), [from_carol])
        # Once bob is no longer ignored, a fresh sync shows his invite.
        await self.ignore()
        fresh = await self.sync(self.alice_token)
        self.assertEqual(set(fresh["rooms"]["invite"]), {from_bob, from_carol})

    @async_test
    async def test_ignoring_yourself_hides_nothing(self) -> None:
        room_id = await self.shared_room()
        await self.ignore(self.alice)
        await self.send(room_id, "mine", self.alice_token)
        self.assertEqual(self.bodies(await self.messages(room_id, self.alice_token)), ["mine"])

    @async_test
    async def test_list_must_have_the_spec_shape(self) -> None:
        path = f"{V3}/user/{quote(self.alice)}/account_data/m.ignored_user_list"
        cases = [
            ({}, "M_BAD_JSON"),
            ({"ignored_users": []}, "M_BAD_JSON"),
            ({"ignored_users": {self.bob: True}}, "M_BAD_JSON"),
            ({"ignored_users": {"bob": {}}}, "M_INVALID_PARAM"),
        ]
        for body, errcode in cases:
            response = await self.client.put(path, body, self.alice_token)
            self.assertEqual((response.code, response.json["errcode"]), (400, errcode), body)
        missing = await self.client.get(path, self.alice_token)
        self.assertEqual(missing.code, 404)
        # Only the global list is checked: room account data of that type is just data.
        room_id = await self.shared_room()
        room_path = (
            f"{V3}/user/{quote(self.alice)}/rooms/{quote(room_id)}/account_data/m.ignored_user_list"
        )
        self.assertEqual((await self.client.put(room_path, {"x": 1}, self.alice_token)).code, 200)
