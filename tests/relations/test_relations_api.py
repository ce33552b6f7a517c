"""GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]: paging, filters, recurse."""

from __future__ import annotations

from urllib.parse import quote

from homeserver.errors import MatrixError
from homeserver.relations.relations import check_new_relation
from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.relations.relations_testing import RoomsTestCase


class RelationsApiTests(RoomsTestCase):
    async def relations(self, room_id: str, rest: str, token: str | None = None):
        return await self.client.get(
            self.room_path(room_id, f"relations/{rest}"), token or self.alice_token
        )

    async def react(self, room_id: str, target: str, key: str, token: str) -> str:
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}
        return await self.send(room_id, content, token, "m.reaction")

    async def page_through(self, room_id: str, rest: str, query: str) -> list[list[str]]:
        """Event IDs of each page, following next_batch to the end."""
        pages: list[list[str]] = []
        token = None
        while True:
            suffix = f"&from={quote(token)}" if token else ""
            response = await self.relations(room_id, f"{rest}?{query}{suffix}")
            self.assertEqual(response.code, 200, response.json)
            pages.append([event["event_id"] for event in response.json["chunk"]])
            if token is not None:
                self.assertEqual(response.json["prev_batch"], token)
            else:
                self.assertNotIn("prev_batch", response.json)
            token = response.json.get("next_batch")
            if token is None:
                return pages
            self.assertLess(len(pages), 10, "pagination does not end")

    @async_test
    async def test_children_paginate_in_both_directions(self) -> None:
        room_id = await self.create_room(self.alice_token, preset="public_chat")
        await self.join(room_id, self.bob_token)
        root = await self.say(room_id, "root", self.alice_token)
        children = []
        for n in range(3):
            children.append(
                await self.say(room_id, f"r{n}", self.bob_token, rel_type="m.thread", event_id=root)
            )
            children.append(await self.react(room_id, root, f"k{n}", self.bob_token))
        await self.say(room_id, "unrelated", self.alice_token)
        backwards = await self.page_through(room_id, quote(root), "limit=4")
        self.assertEqual(backwards, [children[::-1][:4], children[::-1][4:]])
        forwards = await self.page_through(room_id, quote(root), "limit=4&dir=f")
        self.assertEqual(forwards, [children[:4], children[4:]])
        # `to` stops at a token: from the newest, down to (not including) the first page's end.
        first = await self.relations(room_id, f"{quote(root)}?limit=2")
        upto = await self.relations(room_id, f"{quote(root)}?to={quote(first.json['next_batch'])}")
        self.assertEqual([e["event_id"] for e in upto.json["chunk"]], children[::-1][:2])

    @async_test
    async def test_rel_type_and_event_type_filters(self) -> None:
        room_id = await self.create_room(self.alice_token)
        root = await self.say(room_id, "root", self.alice_token)
        reply = await self.say(room_id, "r", self.alice_token, rel_type="m.thread", event_id=root)
        reaction = await self.react(room_id, root, "👍", self.alice_token)
        response = await self.relations(room_id, f"{quote(root)}/m.thread")
        self.assertEqual([e["event_id"] for e in response.json["chunk"]], [reply])
        response = await self.relations(room_id, f"{quote(root)}/m.annotation/m.reaction")
        self.assertEqual([e["event_id"] for e in response.json["chunk"]], [reaction])
        response = await self.relations(room_id, f"{quote(root)}/m.annotation/m.room.message")
        self.assertEqual(response.json, {"chunk": []})
        # The chunk holds client events, with their own bundles.
        full = await self.relations(room_id, quote(root))
        self.assertEqual(full.json["chunk"][0]["content"]["m.relates_to"]["key"], "👍")

    @async_test
    async def test_recurse_follows_relations_of_relations(self) -> None:
        room_id = await self.create_room(self.alice_token)
        chain = [await self.say(room_id, "a", self.alice_token)]
        for body in "bcde":
            chain.append(
                await self.say(
                    room_id, body, self.alice_token, rel_type="m.reference", event_id=chain[-1]
                )
            )
        direct = await self.relations(room_id, quote(chain[0]))
        self.assertEqual([e["event_id"] for e in direct.json["chunk"]], [chain[1]])
        self.assertNotIn("recursion_depth", direct.json)
        deep = await self.relations(room_id, f"{quote(chain[0])}?recurse=true")
        self.assertEqual(deep.json["recursion_depth"], 3)
        # Three levels: b, c and d, newest first; e is a fourth level down.
        self.assertEqual([e["event_id"] for e in deep.json["chunk"]], chain[3:0:-1])
        shallow = await self.relations(room_id, f"{quote(chain[0])}?recurse=false")
        self.assertEqual(shallow.json["recursion_depth"], 1)
        self.assertEqual([e["event_id"] for e in shallow.json["chunk"]], [chain[1]])
        # Filters apply at every level: a child reached only through a non-matching
        # intermediate event is left out.
        root = await self.say(room_id, "root", self.alice_token)
        reply = await self.say(room_id, "r", self.alice_token, rel_type="m.thread", event_id=root)
        await self.say(room_id, "ref", self.alice_token, rel_type="m.reference", event_id=reply)
        response = await self.relations(room_id, f"{quote(root)}/m.reference?recurse=true")
        self.assertEqual(response.json["chunk"], [])
        response = await self.relations(room_id, f"{quote(root)}?recurse=true")
        self.assertEqual(len(response.json["chunk"]), 2)

    @async_test
    async def test_only_what_the_user_may_see(self) -> None:
        room_id = await self.create_room(self.alice_token, preset="public_chat")
        root = await self.say(room_id, "root", self.alice_token)
        await self.join(room_id, self.bob_token)
        seen = await self.say(room_id, "r1", self.alice_token, rel_type="m.thread", event_id=root)
        response = await self.client.post(f"{V3}/rooms/{quote(room_id)}/leave", {}, self.bob_token)
        self.assertEqual(response.code, 200)
        await self.say(room_id, "r2", self.alice_token, rel_type="m.thread", event_id=root)
        response = await self.relations(room_id, quote(root), self.bob_token)
        self.assertEqual([e["event_id"] for e in response.json["chunk"]], [seen])
        # Not in the room at all, or an unknown parent: 404 as the spec says.
        response = await self.relations(room_id, quote(root), self.carol_token)
        self.assertEqual((response.code, response.json["errcode"]), (404, "M_NOT_FOUND"))
        response = await self.relations(room_id, quote("$nope"))
        self.assertEqual((response.code, response.json["errcode"]), (404, "M_NOT_FOUND"))
        private = await self.create_room(self.carol_token)
        elsewhere = await self.say(private, "x", self.carol_token)
        response = await self.relations(room_id, quote(elsewhere))
        self.assertEqual((response.code, response.json["errcode"]), (404, "M_NOT_FOUND"))

    @async_test
    async def test_bad_parameters(self) -> None:
        room_id = await self.create_room(self.alice_token)
        root = await self.say(room_id, "root", self.alice_token)
        for query in ("dir=x", "from=nonsense", "limit=abc", "recurse=maybe", "limit=-1"):
            response = await self.relations(room_id, f"{quote(root)}?{query}")
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_INVALID_PARAM"))
        for rest in (quote("$a\x00b"), f"{quote(root)}/m.thread%00"):
            response = await self.relations(room_id, rest)
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_INVALID_PARAM"))
        response = await self.client.get(
            f"{V3}/rooms/{quote(room_id)}/relations/{quote(root)}", self.alice_token
        )
        self.assertEqual(response.code, 404, "the relations API is under v1 only")
        response = await self.client.get(self.room_path(room_id, f"relations/{quote(root)}"))
        self.assertEqual((response.code, response.json["errcode"]), (401, "M_MISSING_TOKEN"))


class SendChecksTests(RoomsTestCase):
    """check_new_relation: what the send path asks before a client's related event goes out."""

    async def check(self, room_id: str, event_type: str, content: dict) -> str | None:
        try:
            await check_new_relation(
                self.server.hs.storage, room_id, self.alice, event_type, content
            )
        except MatrixError as error:
            self.assertEqual(error.http_status, 400)
            return error.errcode
        return None

    @async_test
    async def test_no_thread_off_a_child(self) -> None:
        room_id = await self.create_room(self.alice_token)
        root = await self.say(room_id, "root", self.alice_token)
        reply = await self.say(room_id, "r", self.alice_token, rel_type="m.thread", event_id=root)
        in_reply = await self.send(
            room_id,
            {"body": "re", "m.relates_to": {"m.in_reply_to": {"event_id": root}}},
            self.alice_token,
        )
        thread_off = {"body": "x", "m.relates_to": {"rel_type": "m.thread", "event_id": reply}}
        self.assertEqual(await self.check(room_id, "m.room.message", thread_off), "M_UNKNOWN")
        # A rich reply has no rel_type: threads may start from it; so from any plain event.
        for parent in (root, in_reply):
            content = {"body": "x", "m.relates_to": {"rel_type": "m.thread", "event_id": parent}}
            self.assertIsNone(await self.check(room_id, "m.room.message", content))

    @async_test
    async def test_no_duplicate_annotation(self) -> None:
        room_id = await self.create_room(self.alice_token)
        root = await self.say(room_id, "root", self.alice_token)
        thumbs = {"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👍"}}
        self.assertIsNone(await self.check(room_id, "m.reaction", thumbs))
        reaction = await self.send(room_id, thumbs, self.alice_token, "m.reaction")
        self.assertEqual(await self.check(room_id, "m.reaction", thumbs), "M_DUPLICATE_ANNOTATION")
        other_key = {"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👎"}}
        self.assertIsNone(await self.check(room_id, "m.reaction", other_key))
        # Once the first is redacted, the same annotation may be sent again.
        await self.redact(room_id, reaction, self.alice_token)
        self.assertIsNone(await self.check(room_id, "m.reaction", thumbs))
