"""Room tags: GET/PUT/DELETE /user/{userId}/rooms/{roomId}/tags, and their m.tag in /sync."""

from __future__ import annotations

from urllib.parse import quote

from twisted.internet import defer, reactor, task

from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase


class TagTests(ClientTestCase):
    async def create_room(self) -> str:
        response = await self.client.post(f"{V3}/createRoom", {}, self.alice_token)
        self.assertEqual(response.code, 200, response.json)
        return response.json["room_id"]

    def tags_path(self, room_id: str, tag: str | None = None, user: str | None = None) -> str:
        path = f"{V3}/user/{quote(user or self.alice)}/rooms/{quote(room_id)}/tags"
        return path + (f"/{quote(tag, safe='')}" if tag is not None else "")

    async def sync(self, since: str | None = None) -> dict:
        query = "timeout=0" + (f"&since={quote(since)}" if since else "")
        response = await self.client.get(f"{V3}/sync?{query}", self.alice_token)
        self.assertEqual(response.code, 200, response.json)
        return response.json

    @async_test
    async def test_put_get_delete(self) -> None:
        room_id = await self.create_room()
        empty = await self.client.get(self.tags_path(room_id), self.alice_token)
        self.assertEqual((empty.code, empty.json), (200, {"tags": {}}))
        for tag, body in (("m.favourite", {"order": 0.25}), ("u.work", {}), ("u.x", {"order": 1})):
            response = await self.client.put(self.tags_path(room_id, tag), body, self.alice_token)
            self.assertEqual((response.code, response.json), (200, {}))
        got = await self.client.get(self.tags_path(room_id), self.alice_token)
        self.assertEqual(
            got.json, {"tags": {"m.favourite": {"order": 0.25}, "u.work": {}, "u.x": {"order": 1}}}
        )
        # Re-tagging replaces the tag's content.
        await self.client.put(self.tags_path(room_id, "u.work"), {"order": 0.5}, self.alice_token)
        deleted = await self.client.request(
            "DELETE", self.tags_path(room_id, "m.favourite"), token=self.alice_token
        )
        self.assertEqual((deleted.code, deleted.json), (200, {}))
        got = await self.client.get(self.tags_path(room_id), self.alice_token)
        self.assertEqual(got.json, {"tags": {"u.work": {"order": 0.5}, "u.x": {"order": 1}}})
        # Deleting a tag the room does not have is fine.
        again = await self.client.request(
            "DELETE", self.tags_path(room_id, "m.favourite"), token=self.alice_token
        )
        self.assertEqual(again.code, 200)

    @async_test
    async def test_tags_reach_sync_as_room_account_data(self) -> None:
        room_id = await self.create_room()
        first = await self.sync()
        await self.client.put(
            self.tags_path(room_id, "m.lowpriority"), {"order": 0.1}, self.alice_token
        )
        second = await self.sync(first["next_batch"])
        events = second["rooms"]["join"][room_id]["account_data"]["events"]
        self.assertEqual(
            events, [{"type": "m.tag", "content": {"tags": {"m.lowpriority": {"order": 0.1}}}}]
        )
        # The tag is also readable as ordinary room account data.
        raw = await self.client.get(
            f"{V3}/user/{quote(self.alice)}/rooms/{quote(room_id)}/account_data/m.tag",
            self.alice_token,
        )
        self.assertEqual(raw.json, {"tags": {"m.lowpriority": {"order": 0.1}}})
        # An unchanged list is not sent again.
        await self.client.request(
            "DELETE", self.tags_path(room_id, "u.absent"), token=self.alice_token
        )
        third = await self.sync(second["next_batch"])
        self.assertNotIn(room_id, third["rooms"]["join"])

    @async_test
    async def test_long_poll_wakes_on_tag(self) -> None:
        room_id = await self.create_room()
        first = await self.sync()
        poll = defer.ensureDeferred(
            self.client.get(
                f"{V3}/sync?timeout=10000&since={quote(first['next_batch'])}", self.alice_token
            )
        )
        # Let the long-poll start waiting before the change that should wake it.
        await task.deferLater(reactor, 0.3, lambda: None)
        self.assertFalse(poll.called)
        await self.client.put(self.tags_path(room_id, "u.a"), {}, self.alice_token)
        response = await poll
        self.assertEqual(response.code, 200)
        events = response.json["rooms"]["join"][room_id]["account_data"]["events"]
        self.assertEqual(events[0]["content"], {"tags": {"u.a": {}}})

    @async_test
    async def test_only_own_tags(self) -> None:
        room_id = await self.create_room()
        for method, path in (
            ("GET", self.tags_path(room_id)),
            ("PUT", self.tags_path(room_id, "u.a")),
            ("DELETE", self.tags_path(room_id, "u.a")),
        ):
            response = await self.client.request(method, path, {}, token=self.bob_token)
            self.assertEqual((response.code, response.json["errcode"]), (403, "M_FORBIDDEN"))
        unauthenticated = await self.client.get(self.tags_path(room_id))
        self.assertEqual(unauthenticated.code, 401)

    @async_test
    async def test_bad_input(self) -> None:
        room_id = await self.create_room()
        cases = [
            (self.tags_path(room_id, "u.a"), {"order": "first"}, "M_BAD_JSON"),
            (self.tags_path(room_id, "u.a"), {"order": True}, "M_BAD_JSON"),
            (self.tags_path(room_id, "u.a"), {"order": None}, "M_BAD_JSON"),
            (self.tags_path(room_id, "u." + "x" * 254), {}, "M_INVALID_PARAM"),
            (self.tags_path("not-a-room", "u.a"), {}, "M_INVALID_PARAM"),
        ]
        for path, body, errcode in cases:
            response = await self.client.put(path, body, self.alice_token)
            self.assertEqual((response.code, response.json["errcode"]), (400, errcode), path)
        not_json = await self.client.request(
            "PUT", self.tags_path(room_id, "u.a"), raw=b"{", token=self.alice_token
        )
        self.assertEqual((not_json.code, not_json.json["errcode"]), (400, "M_NOT_JSON"))
        array = await self.client.put(self.tags_path(room_id, "u.a"), [1], self.alice_token)
        self.assertEqual(array.code, 400)
        # None of it was stored.
        got = await self.client.get(self.tags_path(room_id), self.alice_token)
        self.assertEqual(got.json, {"tags": {}})
        # 255 bytes is the limit, not over it.
        longest = "u." + "x" * 253
        ok = await self.client.put(self.tags_path(room_id, longest), {}, self.alice_token)
        self.assertEqual(ok.code, 200, ok.json)
