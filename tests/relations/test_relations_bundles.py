"""Bundled aggregations (unsigned.m.relations) as clients see them in /messages, /event, /sync."""

from __future__ import annotations

from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.relations.relations_testing import RoomsTestCase, by_id, relations_of


class BundleTests(RoomsTestCase):
    async def public_room(self) -> str:
        room_id = await self.create_room(self.alice_token, preset="public_chat")
        await self.join(room_id, self.bob_token)
        await self.join(room_id, self.carol_token)
        return room_id

    async def sync_timeline(self, token: str, room_id: str) -> list[dict]:
        sync_filter = quote('{"room":{"timeline":{"limit":50}}}')
        response = await self.client.get(f"{V3}/sync?filter={sync_filter}", token)
        self.assertEqual(response.code, 200, response.json)
        return response.json["rooms"]["join"][room_id]["timeline"]["events"]

    @async_test
    async def test_latest_valid_edit_is_bundled_without_replacing_content(self) -> None:
        room_id = await self.public_room()
        original = await self.say(room_id, "I like cake", self.alice_token)
        await self.edit(room_id, original, "I like pie", self.alice_token)
        latest = await self.edit(room_id, original, "I like chocolate cake", self.alice_token)
        # Not valid replacements: another sender, and a replacement without m.new_content.
        await self.edit(room_id, original, "bob was here", self.bob_token)
        await self.say(
            room_id, "* no new content", self.alice_token, rel_type="m.replace", event_id=original
        )
        views = {
            "messages": by_id(await self.messages(room_id, self.bob_token))[original],
            "event": await self.get_event(room_id, original, self.bob_token),
            "sync": by_id(await self.sync_timeline(self.bob_token, room_id))[original],
        }
        for name, event in views.items():
            replace = relations_of(event)["m.replace"]
            self.assertEqual(replace["event_id"], latest, name)
            self.assertEqual(replace["sender"], self.alice, name)
            self.assertEqual(replace["content"]["m.new_content"]["body"], "I like chocolate cake")
            self.assertEqual(replace["content"]["m.relates_to"]["event_id"], original)
            # The server no longer replaces the original's content (spec v1.7).
            self.assertEqual(event["content"]["body"], "I like cake", name)

    @async_test
    async def test_thread_summary_per_viewer(self) -> None:
        room_id = await self.public_room()
        root = await self.say(room_id, "Threads?", self.alice_token)
        await self.say(room_id, "yes", self.bob_token, rel_type="m.thread", event_id=root)
        last = await self.say(room_id, "indeed", self.bob_token, rel_type="m.thread", event_id=root)
        edit = await self.edit(room_id, last, "indeed!", self.bob_token)
        for token, participated in (
            (self.alice_token, True),  # the root's sender
            (self.bob_token, True),  # replied in the thread
            (self.carol_token, False),
        ):
            thread = relations_of(by_id(await self.messages(room_id, token))[root])["m.thread"]
            self.assertEqual(thread["count"], 2)
            self.assertEqual(thread["current_user_participated"], participated)
            latest_event = thread["latest_event"]
            self.assertEqual(latest_event["event_id"], last)
            self.assertEqual(latest_event["room_id"], room_id)
            self.assertEqual(latest_event["content"]["body"], "indeed")
            # The latest event carries its own aggregations.
            self.assertEqual(relations_of(latest_event)["m.replace"]["event_id"], edit)
        synced = by_id(await self.sync_timeline(self.carol_token, room_id))[root]
        thread = relations_of(synced)["m.thread"]
        self.assertEqual((thread["count"], thread["latest_event"]["event_id"]), (2, last))
        # Sections of /sync leave out room_id; so does the bundled copy.
        self.assertNotIn("room_id", thread["latest_event"])

    @async_test
    async def test_references_bundled_and_annotations_not(self) -> None:
        room_id = await self.public_room()
        target = await self.say(room_id, "vote", self.alice_token)
        first = await self.say(
            room_id, "a", self.bob_token, rel_type="m.reference", event_id=target
        )
        second = await self.say(
            room_id, "b", self.carol_token, rel_type="m.reference", event_id=target
        )
        await self.send(
            room_id,
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "👍"}},
            self.bob_token,
            "m.reaction",
        )
        relations = relations_of(await self.get_event(room_id, target, self.alice_token))
        self.assertEqual(
            relations, {"m.reference": {"chunk": [{"event_id": first}, {"event_id": second}]}}
        )
        plain = await self.say(room_id, "nothing relates to me", self.alice_token)
        self.assertNotIn(
            "m.relations", (await self.get_event(room_id, plain, self.alice_token))["unsigned"]
        )

    @async_test
    async def test_redactions_break_relations(self) -> None:
        room_id = await self.public_room()
        original = await self.say(room_id, "first", self.alice_token)
        older = await self.edit(room_id, original, "second", self.alice_token)
        newer = await self.edit(room_id, original, "third", self.alice_token)
        await self.redact(room_id, newer, self.alice_token)
        event = await self.get_event(room_id, original, self.bob_token)
        # A redacted edit no longer counts: the one before it is the latest again.
        self.assertEqual(relations_of(event)["m.replace"]["event_id"], older)
        await self.redact(room_id, older, self.alice_token)
        event = await self.get_event(room_id, original, self.bob_token)
        self.assertNotIn("m.relations", event["unsigned"])
        # A redacted original gets no edit bundled, even with a live edit around.
        await self.edit(room_id, original, "fourth", self.alice_token)
        await self.redact(room_id, original, self.alice_token)
        event = by_id(await self.messages(room_id, self.bob_token))[original]
        self.assertEqual(event["content"], {})
        self.assertNotIn("m.replace", relations_of(event))
        # A redacted thread reply leaves the count.
        root = await self.say(room_id, "root", self.alice_token)
        reply = await self.say(room_id, "r1", self.bob_token, rel_type="m.thread", event_id=root)
        kept = await self.say(room_id, "r2", self.bob_token, rel_type="m.thread", event_id=root)
        await self.redact(room_id, kept, self.bob_token)
        thread = relations_of(await self.get_event(room_id, root, self.alice_token))["m.thread"]
        self.assertEqual((thread["count"], thread["latest_event"]["event_id"]), (1, reply))

    @async_test
    async def test_ignored_users_left_out_of_thread_summary(self) -> None:
        room_id = await self.public_room()
        root = await self.say(room_id, "root", self.alice_token)
        carols = await self.say(room_id, "c", self.carol_token, rel_type="m.thread", event_id=root)
        await self.say(room_id, "b", self.bob_token, rel_type="m.thread", event_id=root)
        response = await self.client.put(
            f"{V3}/user/{quote(self.alice)}/account_data/m.ignored_user_list",
            {"ignored_users": {self.bob: {}}},
            self.alice_token,
        )
        self.assertEqual(response.code, 200)
        thread = relations_of(await self.get_event(room_id, root, self.alice_token))["m.thread"]
        self.assertEqual((thread["count"], thread["latest_event"]["event_id"]), (1, carols))
        thread = relations_of(await self.get_event(room_id, root, self.carol_token))["m.thread"]
        self.assertEqual(thread["count"], 2)

    @async_test
    async def test_bundles_read_from_the_database_after_restart(self) -> None:
        room_id = await self.public_room()
        root = await self.say(room_id, "root", self.alice_token)
        reply = await self.say(room_id, "r", self.bob_token, rel_type="m.thread", event_id=root)
        await self.server.restart()
        self.client = self.server.client
        thread = relations_of(await self.get_event(room_id, root, self.alice_token))["m.thread"]
        self.assertEqual((thread["count"], thread["latest_event"]["event_id"]), (1, reply))
        # A reply arriving after the restart is bundled with a root from before it.
        newer = await self.say(room_id, "r2", self.carol_token, rel_type="m.thread", event_id=root)
        synced = by_id(await self.sync_timeline(self.alice_token, room_id))[root]
        thread = relations_of(synced)["m.thread"]
        self.assertEqual((thread["count"], thread["latest_event"]["event_id"]), (2, newer))
