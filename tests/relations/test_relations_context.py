"""GET /rooms/{roomId}/context/{eventId} and GET /rooms/{roomId}/timestamp_to_event."""

from __future__ import annotations

import json
from urllib.parse import quote

from twisted.internet import reactor, task

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.relations.relations_testing import RoomsTestCase, relations_of


class ContextTests(RoomsTestCase):
    async def context(self, room_id: str, event_id: str, query: str = "", token=None):
        path = self.room_path(room_id, f"context/{quote(event_id)}?{query}", V3)
        return await self.client.get(path, token or self.alice_token)

    async def room_with_messages(self, count: int) -> tuple[str, list[str]]:
        room_id = await self.create_room(self.alice_token, preset="public_chat")
        await self.join(room_id, self.bob_token)
        ids = []
        for n in range(count):
            token = self.alice_token if n % 2 == 0 else self.bob_token
            ids.append(await self.say(room_id, f"m{n}", token))
        return room_id, ids

    @async_test
    async def test_events_around_with_tokens_that_continue(self) -> None:
        room_id, ids = await self.room_with_messages(9)
        response = await self.context(room_id, ids[4], "limit=4")
        self.assertEqual(response.code, 200, response.json)
        body = response.json
        self.assertEqual(body["event"]["event_id"], ids[4])
        self.assertEqual([e["event_id"] for e in body["events_before"]], [ids[3], ids[2]])
        self.assertEqual([e["event_id"] for e in body["events_after"]], [ids[5], ids[6]])
        state_types = {e["type"] for e in body["state"]}
        self.assertTrue({"m.room.create", "m.room.member"} <= state_types)
        earlier = await self.messages(
            room_id, self.alice_token, f"dir=b&limit=1&from={body['start']}"
        )
        self.assertEqual(earlier[0]["event_id"], ids[1])
        later = await self.messages(room_id, self.alice_token, f"dir=f&limit=1&from={body['end']}")
        self.assertEqual(later[0]["event_id"], ids[7])

    @async_test
    async def test_filter_and_lazy_loaded_members(self) -> None:
        room_id, ids = await self.room_with_messages(5)
        await self.join(room_id, self.carol_token)
        last = await self.say(room_id, "after carol", self.alice_token)
        event_filter = json.dumps({"senders": [self.bob], "lazy_load_members": True})
        response = await self.context(room_id, ids[2], f"limit=2&filter={quote(event_filter)}")
        body = response.json
        # The filter leaves the event itself alone, and keeps only bob's messages around it.
        self.assertEqual(body["event"]["sender"], self.alice)
        self.assertEqual([e["event_id"] for e in body["events_before"]], [ids[1]])
        self.assertEqual([e["event_id"] for e in body["events_after"]], [ids[3]])
        self.assertNotIn(last, [e["event_id"] for e in body["events_after"]])
        # Lazy loading: only the members of the events' senders, no other state types.
        self.assertEqual(
            {(e["type"], e["state_key"]) for e in body["state"]}, {("m.room.member", self.bob)}
        )

    @async_test
    async def test_bundles_and_visibility(self) -> None:
        joined_only = {
            "type": "m.room.history_visibility",
            "content": {"history_visibility": "joined"},
        }
        room_id = await self.create_room(
            self.alice_token, preset="private_chat", initial_state=[joined_only]
        )
        hidden = await self.say(room_id, "before bob", self.alice_token)
        response = await self.client.post(
            self.room_path(room_id, "invite", V3), {"user_id": self.bob}, self.alice_token
        )
        self.assertEqual(response.code, 200)
        await self.join(room_id, self.bob_token)
        root = await self.say(room_id, "root", self.alice_token)
        reply = await self.say(room_id, "r", self.bob_token, rel_type="m.thread", event_id=root)
        body = (await self.context(room_id, root, token=self.bob_token)).json
        self.assertEqual(relations_of(body["event"])["m.thread"]["latest_event"]["event_id"], reply)
        self.assertNotIn(hidden, [e["event_id"] for e in body["events_before"]])
        response = await self.context(room_id, hidden, token=self.bob_token)
        self.assertEqual((response.code, response.json["errcode"]), (404, "M_NOT_FOUND"))
        response = await self.context(room_id, "$unknown", token=self.bob_token)
        self.assertEqual((response.code, response.json["errcode"]), (404, "M_NOT_FOUND"))
        response = await self.context(room_id, root, token=self.carol_token)
        self.assertEqual((response.code, response.json["errcode"]), (403, "M_FORBIDDEN"))
        response = await self.context(room_id, root, "limit=x")
        self.assertEqual((response.code, response.json["errcode"]), (400, "M_INVALID_PARAM"))
        response = await self.context(room_id, root, "filter=%7Bnot-json")
        self.assertEqual((response.code, response.json["errcode"]), (400, "M_NOT_JSON"))


class TimestampToEventTests(RoomsTestCase):
    async def lookup(self, room_id: str, query: str, token: str | None = None):
        return await self.client.get(
            self.room_path(room_id, f"timestamp_to_event?{query}"), token or self.alice_token
        )

    @async_test
    async def test_both_directions(self) -> None:
        room_id = await self.create_room(self.alice_token)
        sent = []
        for n in range(3):
            # Distinct timestamps, so "closest" has one answer.
            await task.deferLater(reactor, 0.005, lambda: None)
            event_id = await self.say(room_id, f"m{n}", self.alice_token)
            sent.append(await self.get_event(room_id, event_id, self.alice_token))
        middle = sent[1]["origin_server_ts"]
        for direction, ts, expected in (
            ("f", middle, sent[1]),
            ("b", middle, sent[1]),
            ("f", middle + 1, sent[2]),
            ("b", middle - 1, sent[0]),
            ("b", 2**53, sent[2]),
        ):
            response = await self.lookup(room_id, f"ts={ts}&dir={direction}")
            self.assertEqual(response.code, 200, response.json)
            self.assertEqual(
                response.json,
                {
                    "event_id": expected["event_id"],
                    "origin_server_ts": expected["origin_server_ts"],
                },
                (direction, ts),
            )
        first = await self.lookup(room_id, "ts=0&dir=f")
        self.assertEqual(first.code, 200)
        self.assertLess(first.json["origin_server_ts"], sent[0]["origin_server_ts"])
        for query in ("ts=0&dir=b", f"ts={sent[2]['origin_server_ts'] + 1}&dir=f"):
            response = await self.lookup(room_id, query)
            self.assertEqual((response.code, response.json["errcode"]), (404, "M_NOT_FOUND"))

    @async_test
    async def test_bad_requests(self) -> None:
        room_id = await self.create_room(self.alice_token)
        for query, errcode in (
            ("dir=f", "M_MISSING_PARAM"),
            ("ts=1", "M_MISSING_PARAM"),
            ("ts=1&dir=up", "M_INVALID_PARAM"),
            ("ts=soon&dir=f", "M_INVALID_PARAM"),
        ):
            response = await self.lookup(room_id, query)
            self.assertEqual((response.code, response.json["errcode"]), (400, errcode), query)
        response = await self.lookup(room_id, "ts=1&dir=f", self.bob_token)
        self.assertEqual((response.code, response.json["errcode"]), (403, "M_FORBIDDEN"))
