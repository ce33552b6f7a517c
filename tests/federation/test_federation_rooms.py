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


class RejectAndKnock(TwoServersCase):
    async def member_of(self, room_id: str, user_id: str) -> str | None:
        members = await self.a.client.get(
            f"{V3}/rooms/{quote(room_id)}/state/m.room.member/{quote(user_id)}", self.alice_token
        )
        return members.json.get("membership") if members.code == 200 else None

    async def eventually_member(self, room_id: str, user_id: str, membership: str) -> None:
        for _ in range(50):
            if await self.member_of(room_id, user_id) == membership:
                return
            await self.a.hs.clock.sleep(0.1)
        self.fail(f"{user_id} never became {membership} on A")

    @async_test
    async def test_rejecting_a_remote_invite(self) -> None:
        created = await self.a.client.post(
            f"{V3}/createRoom", {"preset": "private_chat"}, self.alice_token
        )
        room_id = created.json["room_id"]
        await self.a.client.post(
            f"{V3}/rooms/{quote(room_id)}/invite", {"user_id": self.bob}, self.alice_token
        )
        await self.sync_until(
            self.b, self.bob_token, lambda s: room_id in s["rooms"]["invite"], "the invite"
        )
        since = self.next_batch
        left = await self.b.client.post(f"{V3}/rooms/{quote(room_id)}/leave", {}, self.bob_token)
        self.assertEqual(left.code, 200, left.json)
        # The inviting server records the rejection, and bob's /sync moves the room to leave.
        await self.eventually_member(room_id, self.bob, "leave")
        sync = await self.b.client.get(f"{V3}/sync?since={since}&timeout=1000", self.bob_token)
        self.assertIn(room_id, sync.json["rooms"]["leave"])
        self.assertNotIn(room_id, sync.json["rooms"]["invite"])

    @async_test
    async def test_knock_then_invite_then_join(self) -> None:
        created = await self.a.client.post(
            f"{V3}/createRoom",
            {"preset": "private_chat", "name": "knock knock",
             "initial_state": [{"type": "m.room.join_rules", "state_key": "",
                                "content": {"join_rule": "knock"}}]},
            self.alice_token,
        )
        room_id = created.json["room_id"]
        knocked = await self.b.client.post(
            f"{V3}/knock/{quote(room_id)}?via={quote(self.a.server_name)}", {}, self.bob_token
        )
        self.assertEqual(knocked.code, 200, knocked.json)
        await self.eventually_member(room_id, self.bob, "knock")

        def knock_state(sync: dict) -> list | None:
            room = sync["rooms"].get("knock", {}).get(room_id)
            return room["knock_state"]["events"] if room else None

        stripped = await self.sync_until(self.b, self.bob_token, knock_state, "the knock")
        names = [e["content"].get("name") for e in stripped if e["type"] == "m.room.name"]
        self.assertEqual(names, ["knock knock"])

        invited = await self.a.client.post(
            f"{V3}/rooms/{quote(room_id)}/invite", {"user_id": self.bob}, self.alice_token
        )
        self.assertEqual(invited.code, 200, invited.json)
        joined = await self.b.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
        self.assertEqual(joined.code, 200, joined.json)
        await self.eventually_member(room_id, self.bob, "join")


class Backfill(TwoServersCase):
    @async_test
    async def test_history_from_before_the_join_is_fetched_when_paging_back(self) -> None:
        room_id = await self.create_public_room()
        sent = [await self.send(self.a, self.alice_token, room_id, f"old {i}") for i in range(30)]
        joined = await self.b.client.post(
            f"{V3}/join/{quote(room_id)}?via={quote(self.a.server_name)}", {}, self.bob_token
        )
        self.assertEqual(joined.code, 200, joined.json)
        before_paging = (await self.b.client.get(f"{V3}/sync", self.bob_token)).json["next_batch"]

        bodies: list[str] = []
        ids: list[str] = []
        types: list[str] = []
        token = None
        for _ in range(20):
            path = f"{V3}/rooms/{quote(room_id)}/messages?dir=b&limit=10"
            response = await self.b.client.get(path + (f"&from={token}" if token else ""),
                                               self.bob_token)
            self.assertEqual(response.code, 200, response.json)
            for event in response.json["chunk"]:
                ids.append(event["event_id"])
                types.append(event["type"])
                if event["type"] == "m.room.message":
                    bodies.append(event["content"]["body"])
            token = response.json.get("end")
            if token is None:
                break
        # Every old message once, newest first, and nothing twice.
        self.assertEqual(bodies, [f"old {i}" for i in reversed(range(30))])
        self.assertEqual(len(ids), len(set(ids)))
        self.assertTrue(set(sent) <= set(ids))
        # The room's beginning too, though B first got those events as the state of its join.
        self.assertEqual(types[-1], "m.room.create")
        self.assertIn("m.room.power_levels", types)
        # History is not news: bob's next incremental sync does not replay it.
        sync = await self.b.client.get(
            f"{V3}/sync?since={before_paging}&timeout=500", self.bob_token
        )
        self.assertNotIn(room_id, sync.json["rooms"]["join"])


class Gaps(TwoServersCase):
    @async_test
    async def test_an_event_after_a_long_gap_is_placed_with_the_state_from_its_origin(
        self,
    ) -> None:
        room_id = await self.shared_room()
        sender = self.a.hs.federation_sender
        real_send_pdu = sender.send_pdu

        async def lost(*args, **kwargs) -> None:
            return None  # B never hears of these

        sender.send_pdu = lost
        try:
            for i in range(30):
                await self.send(self.a, self.alice_token, room_id, f"missed {i}")
            await self.a.client.put(
                f"{V3}/rooms/{quote(room_id)}/state/m.room.topic/",
                {"topic": "changed while B was away"},
                self.alice_token,
            )
        finally:
            sender.send_pdu = real_send_pdu
        import federation.transactions as transactions

        asked = []
        real_fetch = transactions.fetch_state_before

        async def counting_fetch(*args):
            asked.append(args[2].event_id)
            return await real_fetch(*args)

        transactions.fetch_state_before = counting_fetch
        try:
            await self.send(self.a, self.alice_token, room_id, "after the gap")
            seen = await self.wait_for_message(self.b, self.bob_token, room_id, "after the gap")
        finally:
            transactions.fetch_state_before = real_fetch
        # More was missing than /get_missing_events brings: the state came from /state.
        self.assertEqual(len(asked), 1)
        self.assertEqual(seen["sender"], self.alice)
        topic = await self.b.client.get(
            f"{V3}/rooms/{quote(room_id)}/state/m.room.topic/", self.bob_token
        )
        self.assertEqual(topic.json, {"topic": "changed while B was away"})


class RestrictedJoin(TwoServersCase):
    @async_test
    async def test_member_of_the_space_joins_a_restricted_room_across_servers(self) -> None:
        space = await self.a.client.post(
            f"{V3}/createRoom",
            {"preset": "public_chat", "creation_content": {"type": "m.space"}},
            self.alice_token,
        )
        space_id = space.json["room_id"]
        restricted = await self.a.client.post(
            f"{V3}/createRoom",
            {"preset": "private_chat", "initial_state": [{
                "type": "m.room.join_rules", "state_key": "",
                "content": {"join_rule": "restricted",
                            "allow": [{"type": "m.room_membership", "room_id": space_id}]},
            }]},
            self.alice_token,
        )
        room_id = restricted.json["room_id"]
        via = quote(self.a.server_name)
        # Not yet in the space: refused.
        refused = await self.b.client.post(f"{V3}/join/{quote(room_id)}?via={via}", {},
                                           self.bob_token)
        self.assertEqual(refused.code, 403, refused.json)
        joined_space = await self.b.client.post(f"{V3}/join/{quote(space_id)}?via={via}", {},
                                                self.bob_token)
        self.assertEqual(joined_space.code, 200, joined_space.json)
        joined = await self.b.client.post(f"{V3}/join/{quote(room_id)}?via={via}", {},
                                          self.bob_token)
        self.assertEqual(joined.code, 200, joined.json)
        member = await self.a.client.get(
            f"{V3}/rooms/{quote(room_id)}/state/m.room.member/{quote(self.bob)}",
            self.alice_token,
        )
        self.assertEqual(member.json["membership"], "join")
        self.assertEqual(member.json["join_authorised_via_users_server"], self.alice)


class SoftFailure(TwoServersCase):
    @async_test
    async def test_event_evading_a_ban_is_kept_but_never_shown(self) -> None:
        from homeserver.events.builder import build_event
        from homeserver.events.room_versions import get_room_version

        room_id = await self.shared_room()
        before_ban = await self.a.hs.storage.state.get_snapshot(room_id)
        prevs = list(before_ban.forward_extremities)
        auth_ids = [before_ban.state[k] for k in (("m.room.power_levels", ""),
                                                  ("m.room.member", self.bob))]
        banned = await self.a.client.post(
            f"{V3}/rooms/{quote(room_id)}/ban", {"user_id": self.bob}, self.alice_token
        )
        self.assertEqual(banned.code, 200, banned.json)
        # Bob's server sends a message that cites the room as it was before the ban: allowed
        # by the state before it (rules 4 and 5), refused by the current state (rule 6).
        evading = build_event(
            get_room_version(before_ban.room_version),
            server_name=self.b.server_name,
            signing_key=self.b.hs.signing_key,
            event_type="m.room.message",
            sender=self.bob,
            content={"msgtype": "m.text", "body": "you cannot ban me"},
            room_id=room_id,
            prev_event_ids=prevs,
            auth_event_ids=auth_ids,
            depth=before_ban.max_depth + 1,
            origin_server_ts=self.a.hs.clock.time_msec(),
        )
        stored = await self.a.hs.remote_events.receive(evading)
        self.assertIsNone(stored.rejected_reason)
        self.assertTrue(stored.outlier)  # soft-failed: kept, not in the timeline
        messages = await self.a.client.get(
            f"{V3}/rooms/{quote(room_id)}/messages?dir=b&limit=50", self.alice_token
        )
        bodies = [e["content"].get("body") for e in messages.json["chunk"]]
        self.assertNotIn("you cannot ban me", bodies)
        after = await self.a.hs.storage.state.get_snapshot(room_id)
        self.assertNotIn(evading.event_id, after.forward_extremities)

