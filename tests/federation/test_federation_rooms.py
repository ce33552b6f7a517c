"""Two of our servers share a room: a remote join, then messages both ways, over HTTPS."""

from __future__ import annotations

from urllib.parse import quote

from tests.asyncutil import async_test
from tests.federation.federation_testing import V3, TwoServersCase


class SharedRoom(TwoServersCase):
    @async_test
    async def test_remote_join_then_messages_both_ways(self) -> None:
        room_id = await self.create_public_room()
        joined = await self.b.client.post(
            f"{V3}/join/{quote(room_id)}?via={quote(self.a.server_name)}", {}, self.bob_token
        )
        self.assertEqual(joined.code, 200, joined.json)

        # Both servers agree that both users are in the room.
        for server, token in ((self.a, self.alice_token), (self.b, self.bob_token)):
            members = await server.client.get(
                f"{V3}/rooms/{quote(room_id)}/joined_members", token
            )
            self.assertEqual(members.code, 200, members.json)
            self.assertEqual(set(members.json["joined"]), {self.alice, self.bob})

        await self.send(self.a, self.alice_token, room_id, "hello from A")
        seen_by_bob = await self.wait_for_message(self.b, self.bob_token, room_id, "hello from A")
        self.assertEqual(seen_by_bob["sender"], self.alice)

        await self.send(self.b, self.bob_token, room_id, "hello from B")
        seen_by_alice = await self.wait_for_message(
            self.a, self.alice_token, room_id, "hello from B"
        )
        self.assertEqual(seen_by_alice["sender"], self.bob)

    @async_test
    async def test_invite_only_room_refuses_a_remote_join(self) -> None:
        created = await self.a.client.post(
            f"{V3}/createRoom", {"preset": "private_chat"}, self.alice_token
        )
        room_id = created.json["room_id"]
        joined = await self.b.client.post(
            f"{V3}/join/{quote(room_id)}?via={quote(self.a.server_name)}", {}, self.bob_token
        )
        self.assertEqual((joined.code, joined.json["errcode"]), (403, "M_FORBIDDEN"))
        # Nothing of the room was kept on B.
        self.assertIsNone(await self.b.hs.storage.state.get_snapshot(room_id))

    @async_test
    async def test_join_through_a_remote_alias(self) -> None:
        room_id = await self.create_public_room()
        alias = f"#hall:{self.a.server_name}"
        put = await self.a.client.put(
            f"{V3}/directory/room/{quote(alias)}", {"room_id": room_id}, self.alice_token
        )
        self.assertEqual(put.code, 200, put.json)
        joined = await self.b.client.post(f"{V3}/join/{quote(alias)}", {}, self.bob_token)
        self.assertEqual(joined.code, 200, joined.json)
        self.assertEqual(joined.json["room_id"], room_id)


class Invites(TwoServersCase):
    @async_test
    async def test_invite_shows_on_the_other_server_and_can_be_accepted(self) -> None:
        created = await self.a.client.post(
            f"{V3}/createRoom",
            {"preset": "private_chat", "name": "secret plans", "is_direct": True},
            self.alice_token,
        )
        room_id = created.json["room_id"]
        invited = await self.a.client.post(
            f"{V3}/rooms/{quote(room_id)}/invite", {"user_id": self.bob}, self.alice_token
        )
        self.assertEqual(invited.code, 200, invited.json)

        def invite_state(sync: dict) -> list[dict] | None:
            room = sync["rooms"]["invite"].get(room_id)
            return room["invite_state"]["events"] if room else None

        stripped = await self.sync_until(self.b, self.bob_token, invite_state, "the invite")
        by_type = {(e["type"], e.get("state_key")): e for e in stripped}
        self.assertEqual(by_type[("m.room.name", "")]["content"], {"name": "secret plans"})
        self.assertEqual(by_type[("m.room.member", self.bob)]["content"]["membership"], "invite")
        self.assertEqual(by_type[("m.room.member", self.bob)]["sender"], self.alice)

        # Accepting needs no via: the inviter's server is asked.
        joined = await self.b.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
        self.assertEqual(joined.code, 200, joined.json)
        await self.send(self.b, self.bob_token, room_id, "thanks for the invite")
        await self.wait_for_message(self.a, self.alice_token, room_id, "thanks for the invite")
        await self.send(self.a, self.alice_token, room_id, "welcome")
        await self.wait_for_message(self.b, self.bob_token, room_id, "welcome")

    @async_test
    async def test_invite_of_an_unknown_remote_user_fails(self) -> None:
        created = await self.a.client.post(f"{V3}/createRoom", {}, self.alice_token)
        room_id = created.json["room_id"]
        nobody = f"@nobody:{self.b.server_name}"
        invited = await self.a.client.post(
            f"{V3}/rooms/{quote(room_id)}/invite", {"user_id": nobody}, self.alice_token
        )
        self.assertEqual(invited.code, 404, invited.json)
        members = await self.a.client.get(f"{V3}/rooms/{quote(room_id)}/members", self.alice_token)
        self.assertNotIn(nobody, [e["state_key"] for e in members.json["chunk"]])
