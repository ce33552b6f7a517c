"""GET /rooms/{roomId}/threads: ordering by activity, include=participated, pagination."""

from __future__ import annotations

from urllib.parse import quote

from tests.asyncutil import async_test
from tests.relations.relations_testing import RoomsTestCase, relations_of


class ThreadsListTests(RoomsTestCase):
    async def threads(self, room_id: str, query: str = "", token: str | None = None):
        return await self.client.get(
            self.room_path(room_id, f"threads?{query}"), token or self.alice_token
        )

    async def three_threads(self) -> tuple[str, list[str]]:
        """Threads rooted by alice, bob and carol; alice replied in carol's. Returns the roots
        in order of latest activity, most recent first: alice's, carol's, bob's."""
        room_id = await self.create_room(self.alice_token, preset="public_chat")
        await self.join(room_id, self.bob_token)
        await self.join(room_id, self.carol_token)
        by_alice = await self.say(room_id, "alice's", self.alice_token)
        by_bob = await self.say(room_id, "bob's", self.bob_token)
        by_carol = await self.say(room_id, "carol's", self.carol_token)
        await self.say(room_id, "1", self.bob_token, rel_type="m.thread", event_id=by_alice)
        await self.say(room_id, "2", self.bob_token, rel_type="m.thread", event_id=by_bob)
        await self.say(room_id, "3", self.alice_token, rel_type="m.thread", event_id=by_carol)
        await self.say(room_id, "4", self.bob_token, rel_type="m.thread", event_id=by_alice)
        await self.say(room_id, "not a thread", self.alice_token)
        return room_id, [by_alice, by_carol, by_bob]

    @async_test
    async def test_all_and_participated(self) -> None:
        room_id, roots = await self.three_threads()
        response = await self.threads(room_id)
        self.assertEqual(response.code, 200, response.json)
        self.assertEqual([e["event_id"] for e in response.json["chunk"]], roots)
        self.assertNotIn("next_batch", response.json)
        # Every root comes with its thread summary.
        thread = relations_of(response.json["chunk"][0])["m.thread"]
        self.assertEqual((thread["count"], thread["current_user_participated"]), (2, True))
        participated = await self.threads(room_id, "include=participated")
        # Alice sent the first root and replied in carol's thread; bob's she never touched.
        self.assertEqual([e["event_id"] for e in participated.json["chunk"]], roots[:2])
        carol = await self.threads(room_id, "include=participated", self.carol_token)
        self.assertEqual([e["event_id"] for e in carol.json["chunk"]], [roots[1]])

    @async_test
    async def test_pagination(self) -> None:
        room_id, roots = await self.three_threads()
        seen: list[str] = []
        query = "limit=1"
        for _ in range(5):
            response = await self.threads(room_id, query)
            self.assertEqual(response.code, 200, response.json)
            seen += [e["event_id"] for e in response.json["chunk"]]
            if "next_batch" not in response.json:
                break
            query = f"limit=1&from={quote(response.json['next_batch'])}"
        self.assertEqual(seen, roots)

    @async_test
    async def test_redacting_the_only_reply_ends_the_thread(self) -> None:
        room_id = await self.create_room(self.alice_token)
        root = await self.say(room_id, "root", self.alice_token)
        reply = await self.say(room_id, "r", self.alice_token, rel_type="m.thread", event_id=root)
        self.assertEqual(len((await self.threads(room_id)).json["chunk"]), 1)
        await self.redact(room_id, reply, self.alice_token)
        self.assertEqual((await self.threads(room_id)).json, {"chunk": []})

    @async_test
    async def test_root_of_an_ignored_user_is_shown_redacted(self) -> None:
        room_id = await self.create_room(self.bob_token, preset="public_chat")
        await self.join(room_id, self.alice_token)
        root = await self.say(room_id, "secret", self.bob_token)
        await self.say(room_id, "r", self.alice_token, rel_type="m.thread", event_id=root)
        response = await self.client.put(
            f"/_matrix/client/v3/user/{quote(self.alice)}/account_data/m.ignored_user_list",
            {"ignored_users": {self.bob: {}}},
            self.alice_token,
        )
        self.assertEqual(response.code, 200)
        chunk = (await self.threads(room_id)).json["chunk"]
        self.assertEqual([(e["event_id"], e["content"]) for e in chunk], [(root, {})])

    @async_test
    async def test_errors(self) -> None:
        room_id = await self.create_room(self.alice_token)
        for query in ("include=mine", "limit=0", "from=garbage"):
            response = await self.threads(room_id, query)
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_INVALID_PARAM"))
        response = await self.threads(room_id, "", self.bob_token)
        self.assertEqual((response.code, response.json["errcode"]), (403, "M_FORBIDDEN"))
