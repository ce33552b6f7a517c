"""Unread counts in /sync and GET /notifications, as the push rules decide them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase

THREADED = quote(json.dumps({"room": {"timeline": {"unread_thread_notifications": True}}}))


class UnreadCounts(ClientTestCase):
    users = ("alice", "bob", "carol")

    async def group_room(self) -> str:
        created = await self.client.post(f"{V3}/createRoom", {"preset": "public_chat"},
                                         self.alice_token)
        room_id = created.json["room_id"]
        for token in (self.bob_token, self.carol_token):
            joined = await self.client.post(f"{V3}/join/{quote(room_id)}", {}, token)
            self.assertEqual(joined.code, 200, joined.json)
        return room_id

    async def send(self, room_id: str, token: str, body: str, **content: Any) -> str:
        self.txn = getattr(self, "txn", 0) + 1
        response = await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/t{self.txn}",
            {"msgtype": "m.text", "body": body, **content}, token,
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json["event_id"]

    async def room_section(self, room_id: str, since: str | None = None,
                           threaded: bool = False) -> dict:
        query = "timeout=0" + (f"&since={since}" if since else "")
        query += f"&filter={THREADED}" if threaded else ""
        response = await self.client.get(f"{V3}/sync?{query}", self.alice_token)
        self.assertEqual(response.code, 200, response.json)
        self.next_batch = response.json["next_batch"]
        return response.json["rooms"]["join"].get(room_id, {})

    async def receipt(self, room_id: str, event_id: str, body: dict | None = None,
                      receipt_type: str = "m.read") -> None:
        response = await self.client.post(
            f"{V3}/rooms/{quote(room_id)}/receipt/{receipt_type}/{quote(event_id)}",
            body or {}, self.alice_token,
        )
        self.assertEqual(response.code, 200, response.json)

    @async_test
    async def test_counts_rise_with_messages_and_clear_with_a_receipt(self) -> None:
        room_id = await self.group_room()
        section = await self.room_section(room_id)
        self.assertEqual(section["unread_notifications"],
                         {"notification_count": 0, "highlight_count": 0})
        await self.send(room_id, self.bob_token, "hello all")
        await self.send(room_id, self.alice_token, "my own message does not count")
        last = await self.send(room_id, self.carol_token, "alice, look",
                               **{"m.mentions": {"user_ids": [self.alice]}})
        # The count arrives in the same sync as the events.
        section = await self.room_section(room_id, self.next_batch)
        self.assertEqual(len(section["timeline"]["events"]), 3)
        self.assertEqual(section["unread_notifications"],
                         {"notification_count": 2, "highlight_count": 1})

        await self.receipt(room_id, last, receipt_type="m.read.private")
        section = await self.room_section(room_id, self.next_batch)
        self.assertEqual(section["unread_notifications"],
                         {"notification_count": 0, "highlight_count": 0})
        # Bob's counts are his own: alice's and carol's messages.
        bob_sync = await self.client.get(f"{V3}/sync?timeout=0", self.bob_token)
        self.assertEqual(bob_sync.json["rooms"]["join"][room_id]["unread_notifications"],
                         {"notification_count": 2, "highlight_count": 0})

    @async_test
    async def test_muted_room_and_notices_do_not_count(self) -> None:
        room_id = await self.group_room()
        await self.send(room_id, self.bob_token, "a bot speaks", msgtype="m.notice")
        section = await self.room_section(room_id)
        self.assertEqual(section["unread_notifications"]["notification_count"], 0)
        muted = await self.client.put(f"{V3}/pushrules/global/room/{quote(room_id)}",
                                      {"actions": []}, self.alice_token)
        self.assertEqual(muted.code, 200, muted.json)
        await self.send(room_id, self.bob_token, "nobody hears this")
        section = await self.room_section(room_id, self.next_batch)
        self.assertEqual(section["unread_notifications"]["notification_count"], 0)

    @async_test
    async def test_threads_are_counted_and_cleared_apart(self) -> None:
        room_id = await self.group_room()
        root = await self.send(room_id, self.bob_token, "thread root")
        thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
        await self.send(room_id, self.bob_token, "in the thread", **thread)
        reply = await self.send(room_id, self.carol_token, "me too", **thread)
        main = await self.send(room_id, self.carol_token, "back in the room")

        section = await self.room_section(room_id, threaded=True)
        self.assertEqual(section["unread_notifications"],
                         {"notification_count": 2, "highlight_count": 0})
        self.assertEqual(section["unread_thread_notifications"],
                         {root: {"notification_count": 2, "highlight_count": 0}})
        unsplit = await self.room_section(room_id)
        self.assertEqual(unsplit["unread_notifications"]["notification_count"], 4)
        self.assertNotIn("unread_thread_notifications", unsplit)

        # A threaded receipt clears its thread only.
        await self.receipt(room_id, reply, {"thread_id": root})
        section = await self.room_section(room_id, threaded=True)
        self.assertEqual(section["unread_notifications"]["notification_count"], 2)
        self.assertEqual(section["unread_thread_notifications"], {})
        # An unthreaded receipt clears everything up to its event.
        await self.receipt(room_id, main)
        section = await self.room_section(room_id)
        self.assertEqual(section["unread_notifications"]["notification_count"], 0)

    @async_test
    async def test_notifications_list_with_highlight_filter_and_pages(self) -> None:
        room_id = await self.group_room()
        sent = []
        for i in range(5):
            mentions = {"m.mentions": {"user_ids": [self.alice]}} if i % 2 == 0 else {}
            sent.append(await self.send(room_id, self.bob_token, f"message {i}", **mentions))
        await self.receipt(room_id, sent[1])

        first = await self.client.get(f"{V3}/notifications?limit=3", self.alice_token)
        self.assertEqual(first.code, 200, first.json)
        bodies = [n["event"]["content"]["body"] for n in first.json["notifications"]]
        self.assertEqual(bodies, ["message 4", "message 3", "message 2"])
        self.assertEqual({n["room_id"] for n in first.json["notifications"]}, {room_id})
        self.assertFalse(first.json["notifications"][0]["read"])
        self.assertIn("notify", first.json["notifications"][0]["actions"])
        rest = await self.client.get(
            f"{V3}/notifications?limit=3&from={first.json['next_token']}", self.alice_token)
        self.assertEqual([(n["event"]["content"]["body"], n["read"])
                          for n in rest.json["notifications"]],
                         [("message 1", True), ("message 0", True)])
        self.assertNotIn("next_token", rest.json)

        highlights = await self.client.get(f"{V3}/notifications?only=highlight",
                                           self.alice_token)
        self.assertEqual([n["event"]["event_id"] for n in highlights.json["notifications"]],
                         [sent[4], sent[2], sent[0]])
        bad = await self.client.get(f"{V3}/notifications?from=nonsense", self.alice_token)
        self.assertEqual((bad.code, bad.json["errcode"]), (400, "M_INVALID_PARAM"))

    @async_test
    async def test_notifications_older_than_thirty_days_are_swept(self) -> None:
        room_id = await self.group_room()
        await self.send(room_id, self.bob_token, "old news")
        pushers = self.server.hs.pushers
        await pushers._sweep()  # a day's sweep now keeps it
        listed = await self.client.get(f"{V3}/notifications", self.alice_token)
        self.assertEqual(len(listed.json["notifications"]), 1)
        later = pushers.clock.time_msec() + 31 * 24 * 3600 * 1000
        self.patch(pushers.clock, "time_msec", lambda: later)
        await pushers._sweep()
        listed = await self.client.get(f"{V3}/notifications", self.alice_token)
        self.assertEqual(listed.json["notifications"], [])
