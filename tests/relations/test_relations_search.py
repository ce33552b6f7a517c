"""POST /search (room_events) on the engine of the run: SQLite FTS5 or PostgreSQL full text."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.relations.relations_testing import RoomsTestCase


class SearchTests(RoomsTestCase):
    async def search(
        self, criteria: dict[str, Any], token: str | None = None, next_batch: str | None = None
    ):
        path = f"{V3}/search" + (f"?next_batch={quote(next_batch)}" if next_batch else "")
        return await self.client.post(
            path, {"search_categories": {"room_events": criteria}}, token or self.alice_token
        )

    async def found(self, criteria: dict[str, Any], token: str | None = None) -> list[str]:
        response = await self.search(criteria, token)
        self.assertEqual(response.code, 200, response.json)
        return [
            r["result"]["event_id"]
            for r in response.json["search_categories"]["room_events"]["results"]
        ]

    async def all_pages(self, criteria: dict[str, Any]) -> list[list[str]]:
        pages: list[list[str]] = []
        next_batch = None
        while len(pages) < 10:
            response = await self.search(criteria, next_batch=next_batch)
            self.assertEqual(response.code, 200, response.json)
            room_events = response.json["search_categories"]["room_events"]
            pages.append([r["result"]["event_id"] for r in room_events["results"]])
            next_batch = room_events.get("next_batch")
            if next_batch is None:
                break
        return pages

    @async_test
    async def test_rank_and_recent_order(self) -> None:
        room_id = await self.create_room(self.alice_token)
        once = await self.say(room_id, "I would like some cake please", self.alice_token)
        many = await self.say(room_id, "cake cake cake cake", self.alice_token)
        await self.say(room_id, "pie is better", self.alice_token)
        last = await self.say(room_id, "the cake is a lie", self.alice_token)
        response = await self.search({"search_term": "cake"})
        room_events = response.json["search_categories"]["room_events"]
        ranked = [r["result"]["event_id"] for r in room_events["results"]]
        self.assertEqual(ranked[0], many)
        self.assertEqual(set(ranked), {once, many, last})
        ranks = [r["rank"] for r in room_events["results"]]
        self.assertEqual(ranks, sorted(ranks, reverse=True))
        self.assertEqual((room_events["count"], room_events["highlights"]), (3, ["cake"]))
        self.assertEqual(room_events["results"][0]["result"]["room_id"], room_id)
        recent = await self.found({"search_term": "cake", "order_by": "recent"})
        self.assertEqual(recent, [last, many, once])
        # Every word must match; words are stemmed ("please" finds "pleased" and back).
        self.assertEqual(await self.found({"search_term": "CAKE pleased"}), [once])
        self.assertEqual(await self.found({"search_term": "cake pudding"}), [])

    @async_test
    async def test_next_batch_pages_through_everything_once(self) -> None:
        room_id = await self.create_room(self.alice_token)
        sent = [await self.say(room_id, f"apple number {n}", self.alice_token) for n in range(5)]
        for order in ("recent", "rank"):
            criteria = {"search_term": "apple", "order_by": order, "filter": {"limit": 2}}
            pages = await self.all_pages(criteria)
            self.assertEqual([len(page) for page in pages], [2, 2, 1], order)
            self.assertEqual(sorted(sum(pages, [])), sorted(sent), order)
            if order == "recent":
                self.assertEqual(sum(pages, []), sent[::-1])
        response = await self.search({"search_term": "apple"}, next_batch="garbage")
        self.assertEqual((response.code, response.json["errcode"]), (400, "M_INVALID_PARAM"))
        page = await self.search({"search_term": "apple", "filter": {"limit": 1}})
        token = page.json["search_categories"]["room_events"]["next_batch"]
        other_order = await self.search(
            {"search_term": "apple", "order_by": "recent"}, next_batch=token
        )
        self.assertEqual(other_order.code, 400)

    @async_test
    async def test_only_rooms_and_events_the_user_may_see(self) -> None:
        shared = await self.create_room(self.alice_token, preset="public_chat")
        await self.join(shared, self.bob_token)
        seen = await self.say(shared, "banana before", self.alice_token)
        private = await self.create_room(self.alice_token)
        await self.say(private, "banana private", self.alice_token)
        response = await self.client.post(f"{V3}/rooms/{quote(shared)}/leave", {}, self.bob_token)
        self.assertEqual(response.code, 200)
        await self.say(shared, "banana after", self.alice_token)
        # Bob left: he finds what he saw while he was there, nothing after, nothing elsewhere.
        self.assertEqual(await self.found({"search_term": "banana"}, self.bob_token), [seen])
        self.assertEqual(await self.found({"search_term": "banana"}, self.carol_token), [])
        self.assertEqual(len(await self.found({"search_term": "banana"})), 3)
        only_private = {"search_term": "banana", "filter": {"rooms": [private]}}
        self.assertEqual(len(await self.found(only_private)), 1)
        not_alice = {"search_term": "banana", "filter": {"not_senders": [self.alice]}}
        self.assertEqual(await self.found(not_alice), [])
        await self.redact(shared, seen, self.alice_token)
        self.assertEqual(await self.found({"search_term": "banana"}, self.bob_token), [])

    @async_test
    async def test_keys_names_and_topics(self) -> None:
        room_id = await self.create_room(self.alice_token, name="Walrus den", topic="Tusks only")
        message = await self.say(room_id, "a walrus swims", self.alice_token)
        everything = await self.found({"search_term": "walrus", "order_by": "recent"})
        self.assertEqual(len(everything), 2)
        self.assertEqual(everything[0], message)
        self.assertEqual(
            await self.found({"search_term": "walrus", "keys": ["content.body"]}), [message]
        )
        topics = await self.found({"search_term": "tusks", "keys": ["content.topic"]})
        self.assertEqual(len(topics), 1)

    @async_test
    async def test_context_profiles_groups_and_state(self) -> None:
        room_id = await self.create_room(self.alice_token, preset="public_chat")
        await self.join(room_id, self.bob_token)
        before = await self.say(room_id, "hello", self.bob_token)
        hit = await self.say(room_id, "zebra crossing", self.alice_token)
        after = await self.say(room_id, "goodbye", self.bob_token)
        response = await self.search(
            {
                "search_term": "zebra",
                "event_context": {"before_limit": 1, "after_limit": 1, "include_profile": True},
                "groupings": {"group_by": [{"key": "room_id"}, {"key": "sender"}]},
                "include_state": True,
            }
        )
        self.assertEqual(response.code, 200, response.json)
        room_events = response.json["search_categories"]["room_events"]
        context = room_events["results"][0]["context"]
        self.assertEqual([e["event_id"] for e in context["events_before"]], [before])
        self.assertEqual([e["event_id"] for e in context["events_after"]], [after])
        self.assertEqual(context["profile_info"][self.bob]["displayname"], "bob")
        self.assertIn(self.alice, context["profile_info"])
        earlier = await self.messages(
            room_id, self.alice_token, f"dir=b&limit=1&from={context['start']}"
        )
        self.assertNotIn(hit, [e["event_id"] for e in earlier])
        self.assertEqual(room_events["groups"]["room_id"][room_id]["results"], [hit])
        self.assertEqual(room_events["groups"]["sender"][self.alice]["results"], [hit])
        state_types = {e["type"] for e in room_events["state"][room_id]}
        self.assertIn("m.room.create", state_types)

    @async_test
    async def test_group_next_batch_stays_in_the_group(self) -> None:
        first = await self.create_room(self.alice_token)
        second = await self.create_room(self.alice_token)
        mine = [await self.say(first, f"kiwi {n}", self.alice_token) for n in range(3)]
        await self.say(second, "kiwi elsewhere", self.alice_token)
        await self.say(second, "kiwi elsewhere again", self.alice_token)
        criteria = {
            "search_term": "kiwi",
            "order_by": "recent",
            "filter": {"limit": 1},
            "groupings": {"group_by": [{"key": "room_id"}]},
        }
        collected = [await self.found({**criteria, "filter": {"rooms": [first], "limit": 1}})]
        response = await self.search({**criteria, "filter": {"rooms": [first], "limit": 1}})
        token = response.json["search_categories"]["room_events"]["groups"]["room_id"][first][
            "next_batch"
        ]
        while token is not None:
            response = await self.search(criteria, next_batch=token)
            room_events = response.json["search_categories"]["room_events"]
            collected.append([r["result"]["event_id"] for r in room_events["results"]])
            token = room_events.get("next_batch")
            self.assertLess(len(collected), 10)
        self.assertEqual(sum(collected, []), mine[::-1])

    @async_test
    async def test_bad_requests(self) -> None:
        for body in (
            {},
            {"search_categories": []},
            {"search_categories": {"room_events": {}}},
            {"search_categories": {"room_events": {"search_term": 3}}},
            {"search_categories": {"room_events": {"search_term": "x", "order_by": "best"}}},
            {"search_categories": {"room_events": {"search_term": "x", "keys": ["content.url"]}}},
            {"search_categories": {"room_events": {"search_term": "x", "filter": {"limit": -1}}}},
            {
                "search_categories": {
                    "room_events": {"search_term": "x", "filter": {"senders": ["@a\x00"]}}
                }
            },
            {
                "search_categories": {
                    "room_events": {"search_term": "x", "event_context": {"before_limit": "5"}}
                }
            },
            {
                "search_categories": {
                    "room_events": {
                        "search_term": "x",
                        "groupings": {"group_by": [{"key": "type"}]},
                    }
                }
            },
        ):
            response = await self.client.post(f"{V3}/search", body, self.alice_token)
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_BAD_JSON"), body)
        # Query syntax of either engine in the term is just text.
        room_id = await self.create_room(self.alice_token)
        await self.say(room_id, "quotes and stars", self.alice_token)
        for term in ('"quotes', "stars*", "NEAR(quotes stars)", "quotes OR -stars", "!&|():'", ""):
            response = await self.search({"search_term": term})
            self.assertEqual(response.code, 200, (term, response.json))
        unknown = await self.client.post(
            f"{V3}/search", {"search_categories": {}}, self.alice_token
        )
        self.assertEqual((unknown.code, unknown.json), (200, {"search_categories": {}}))
