"""Server ACLs across two of our servers: A ("127.0.0.1:PORT") bans B ("localhost:PORT")."""

from __future__ import annotations

from urllib.parse import quote

from twisted.internet import defer

from federation.client import FederationError
from tests.asyncutil import async_test
from tests.federation.federation_testing import V3, FederatingServer, TwoServersCase

FED = "/_matrix/federation/v1"


class ServerAcl(TwoServersCase):
    def setUp(self) -> defer.Deferred:
        self.a = FederatingServer()
        self.b = FederatingServer(host="localhost")
        return defer.ensureDeferred(self._start())

    async def set_acl(self, room_id: str, content: dict) -> str:
        response = await self.a.client.put(
            f"{V3}/rooms/{quote(room_id)}/state/m.room.server_acl", content, self.alice_token
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json["event_id"]

    async def alice_bodies(self, room_id: str) -> list[str]:
        response = await self.a.client.get(
            f"{V3}/rooms/{quote(room_id)}/messages?dir=b&limit=50", self.alice_token
        )
        self.assertEqual(response.code, 200, response.json)
        return [e["content"].get("body") for e in response.json["chunk"]]

    async def refused_by_a(self, path: str, args: dict | None = None) -> FederationError:
        with self.assertRaises(FederationError) as caught:
            await self.b.hs.federation_client.get_json(self.a.server_name, path, args)
        return caught.exception

    @async_test
    async def test_denied_server_is_shut_out_until_the_acl_lets_it_back(self) -> None:
        room_id = await self.shared_room()
        acl_id = await self.set_acl(room_id, {"allow": ["*"], "deny": ["localhost"]})
        # B is still a resident: A keeps sending it the room's events, the ACL included.
        await self.sync_until(
            self.b, self.bob_token,
            lambda s: any(e["event_id"] == acl_id for e in s["rooms"]["join"].get(
                room_id, {}).get("timeline", {}).get("events", [])),
            "the ACL event",
        )

        # PDUs and typing from the denied server are dropped.
        await self.send(self.b, self.bob_token, room_id, "from a denied server")
        typing = await self.b.client.put(
            f"{V3}/rooms/{quote(room_id)}/typing/{quote(self.bob)}",
            {"typing": True, "timeout": 30000}, self.bob_token,
        )
        self.assertEqual(typing.code, 200, typing.json)
        await self.b.hs.federation_sender.wait_idle()
        self.assertNotIn("from a denied server", await self.alice_bodies(room_id))
        sync = (await self.a.client.get(f"{V3}/sync", self.alice_token)).json
        ephemeral = sync["rooms"]["join"][room_id].get("ephemeral", {}).get("events", [])
        self.assertFalse(
            [e for e in ephemeral if e["type"] == "m.typing" and e["content"]["user_ids"]]
        )

        # Room requests from it get 403 M_FORBIDDEN.
        for path, args in [
            (f"{FED}/state_ids/{quote(room_id)}", {"event_id": acl_id}),
            (f"{FED}/backfill/{quote(room_id)}", {"v": acl_id, "limit": "10"}),
            (f"{FED}/make_join/{quote(room_id)}/{quote('@carol:' + self.b.server_name)}", None),
            (f"{FED}/event/{quote(acl_id)}", None),
        ]:
            error = await self.refused_by_a(path, args)
            self.assertEqual((error.code, error.errcode), (403, "M_FORBIDDEN"), path)
        # A new member joining through B (a resident, so B makes the join itself) is not let in.
        carol, carol_token = await self.b.client.register("carol")
        join = await self.b.client.post(f"{V3}/rooms/{quote(room_id)}/join", {}, carol_token)
        self.assertEqual(join.code, 200, join.json)
        await self.b.hs.federation_sender.wait_idle()
        members = await self.a.client.get(
            f"{V3}/rooms/{quote(room_id)}/joined_members", self.alice_token
        )
        self.assertEqual(sorted(members.json["joined"]), sorted([self.alice, self.bob]))

        # Lifting the ban lets B's next message in: the ACL is read from current state.
        await self.set_acl(room_id, {"allow": ["*"]})
        await self.send(self.b, self.bob_token, room_id, "welcome back")
        await self.wait_for_message(self.a, self.alice_token, room_id, "welcome back")

    @async_test
    async def test_receipts_from_a_denied_server_are_ignored(self) -> None:
        room_id = await self.shared_room()
        event_id = await self.send(self.a, self.alice_token, room_id, "read me")
        await self.wait_for_message(self.b, self.bob_token, room_id, "read me")
        await self.set_acl(room_id, {"allow": ["*"], "deny": ["LOCALHOST"]})
        receipt = await self.b.client.post(
            f"{V3}/rooms/{quote(room_id)}/receipt/m.read/{quote(event_id)}", {}, self.bob_token
        )
        self.assertEqual(receipt.code, 200, receipt.json)
        await self.b.hs.federation_sender.wait_idle()
        sync = (await self.a.client.get(f"{V3}/sync", self.alice_token)).json
        ephemeral = sync["rooms"]["join"][room_id].get("ephemeral", {}).get("events", [])
        readers = [
            user
            for e in ephemeral if e["type"] == "m.receipt"
            for by_type in e["content"].values()
            for user in by_type.get("m.read", {})
        ]
        self.assertNotIn(self.bob, readers)
