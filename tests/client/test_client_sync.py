"""/sync over real HTTP: initial, incremental, long-poll, restart, bounded catch-up."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from urllib.parse import quote

from twisted.internet import defer

from homeserver.rooms.event_creation import EventDraft
from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase


def sync_path(since: str | None = None, timeout: int = 0, sync_filter: dict | None = None) -> str:
    path = f"{V3}/sync?timeout={timeout}"
    if since:
        path += f"&since={quote(since)}"
    if sync_filter is not None:
        path += "&filter=" + quote(json.dumps(sync_filter))
    return path


def timeline_bodies(sync: dict, room_id: str) -> list[str]:
    room = sync["rooms"]["join"].get(room_id)
    if room is None:
        return []
    return [
        e["content"]["body"] for e in room["timeline"]["events"] if e["type"] == "m.room.message"
    ]


class SyncTests(ClientTestCase):
    async def shared_room(self) -> str:
        created = await self.client.post(
            f"{V3}/createRoom", {"preset": "public_chat", "name": "hall"}, self.alice_token
        )
        assert created.code == 200, created.json
        room_id = created.json["room_id"]
        joined = await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
        assert joined.code == 200, joined.json
        return room_id

    async def send(self, room_id: str, body: str, token: str, txn: str | None = None) -> str:
        txn = txn or f"t{time.monotonic_ns()}"
        response = await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{txn}",
            {"msgtype": "m.text", "body": body},
            token,
        )
        assert response.code == 200, response.json
        return response.json["event_id"]

    @async_test
    async def test_initial_then_incremental(self) -> None:
        room_id = await self.shared_room()
        await self.send(room_id, "one", self.alice_token)
        initial = await self.client.get(sync_path(), self.bob_token)
        self.assertEqual(initial.code, 200)
        room = initial.json["rooms"]["join"][room_id]
        self.assertEqual(timeline_bodies(initial.json, room_id), ["one"])
        state_types = {e["type"] for e in room["state"]["events"]}
        self.assertIn(
            "m.room.create", state_types | {e["type"] for e in room["timeline"]["events"]}
        )
        self.assertIn("prev_batch", room["timeline"])
        await self.send(room_id, "two", self.alice_token)
        later = await self.client.get(sync_path(initial.json["next_batch"]), self.bob_token)
        self.assertEqual(timeline_bodies(later.json, room_id), ["two"])
        self.assertFalse(later.json["rooms"]["join"][room_id]["timeline"]["limited"])
        # Nothing new: the room is absent and the token still moves on.
        idle = await self.client.get(sync_path(later.json["next_batch"]), self.bob_token)
        self.assertEqual(idle.json["rooms"]["join"], {})

    @async_test
    async def test_own_message_carries_transaction_id_for_sending_device_only(self) -> None:
        room_id = await self.shared_room()
        await self.send(room_id, "echo", self.alice_token, txn="my-txn-1")
        mine = await self.client.get(sync_path(), self.alice_token)
        event = mine.json["rooms"]["join"][room_id]["timeline"]["events"][-1]
        self.assertEqual(event["unsigned"]["transaction_id"], "my-txn-1")
        theirs = await self.client.get(sync_path(), self.bob_token)
        event = theirs.json["rooms"]["join"][room_id]["timeline"]["events"][-1]
        self.assertNotIn("transaction_id", event["unsigned"])

    @async_test
    async def test_same_txn_id_sends_once(self) -> None:
        room_id = await self.shared_room()
        first = await self.send(room_id, "once", self.alice_token, txn="dup")
        again = await self.send(room_id, "once", self.alice_token, txn="dup")
        self.assertEqual(first, again)
        sync = await self.client.get(sync_path(), self.bob_token)
        self.assertEqual(timeline_bodies(sync.json, room_id), ["once"])

    @async_test
    async def test_long_poll_wakes_for_shared_room(self) -> None:
        room_id = await self.shared_room()
        initial = await self.client.get(sync_path(), self.bob_token)
        started = time.monotonic()
        poll = defer.ensureDeferred(
            self.client.get(sync_path(initial.json["next_batch"], timeout=20000), self.bob_token)
        )
        await self.server.hs.clock.sleep(0.2)
        self.assertFalse(poll.called)
        await self.send(room_id, "wake up", self.alice_token)
        result = await poll
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(timeline_bodies(result.json, room_id), ["wake up"])

    @async_test
    async def test_long_poll_sleeps_through_other_rooms(self) -> None:
        await self.shared_room()
        private = await self.client.post(f"{V3}/createRoom", {}, self.alice_token)
        initial = await self.client.get(sync_path(), self.bob_token)
        started = time.monotonic()
        poll = defer.ensureDeferred(
            self.client.get(sync_path(initial.json["next_batch"], timeout=1500), self.bob_token)
        )
        await self.server.hs.clock.sleep(0.2)
        await self.send(private.json["room_id"], "not for bob", self.alice_token)
        result = await poll
        self.assertGreaterEqual(time.monotonic() - started, 1.4)
        self.assertEqual(result.json["rooms"]["join"], {})

    @async_test
    async def test_resume_after_restart_loses_and_repeats_nothing(self) -> None:
        room_id = await self.shared_room()
        await self.send(room_id, "before", self.alice_token)
        first = await self.client.get(sync_path(), self.bob_token)
        token = first.json["next_batch"]
        await self.send(room_id, "while away 1", self.alice_token)
        await self.server.restart()
        self.client = self.server.client
        await self.send(room_id, "while away 2", self.alice_token)
        resumed = await self.client.get(sync_path(token), self.bob_token)
        self.assertEqual(timeline_bodies(resumed.json, room_id), ["while away 1", "while away 2"])
        again = await self.client.get(sync_path(resumed.json["next_batch"]), self.bob_token)
        self.assertEqual(again.json["rooms"]["join"], {})

    @async_test
    async def test_catch_up_reads_only_the_newest_events(self) -> None:
        """A token from before 20 000 events: the sync loads `limit` events, not 20 000."""
        room_id = await self.shared_room()
        old = await self.client.get(sync_path(), self.bob_token)
        await self._bulk_messages(room_id, 20_000)
        hs = self.server.hs
        hs.storage.events.cache.clear()
        loaded_before = hs.storage.events.events_loaded_from_db
        limit = 10
        caught_up = await self.client.get(
            sync_path(old.json["next_batch"], sync_filter={"room": {"timeline": {"limit": limit}}}),
            self.bob_token,
        )
        loaded = hs.storage.events.events_loaded_from_db - loaded_before
        timeline = caught_up.json["rooms"]["join"][room_id]["timeline"]
        self.assertTrue(timeline["limited"])
        self.assertEqual(timeline_bodies(caught_up.json, room_id)[-1], "bulk 19999")
        self.assertEqual(len(timeline["events"]), limit)
        # The timeline plus the few state events the room has: nowhere near 20 000.
        self.assertLess(loaded, limit + 20)
        # The rest is still there, reached by paging back from prev_batch.
        page = await self.client.get(
            f"{V3}/rooms/{quote(room_id)}/messages?dir=b&limit=5&from="
            + quote(timeline["prev_batch"]),
            self.bob_token,
        )
        self.assertEqual(
            [e["content"]["body"] for e in page.json["chunk"]],
            [f"bulk {i}" for i in range(19989, 19984, -1)],
        )

    async def _bulk_messages(self, room_id: str, count: int) -> None:
        """Inserts events through the store in large batches, bypassing HTTP for speed."""
        hs = self.server.hs
        creator = hs.event_creator
        async with creator.locks.hold(room_id):
            shared = await hs.storage.state.get_snapshot(room_id)
            # Build on a private copy: the persister advances the shared snapshot on commit.
            snapshot = replace(shared, forward_extremities=list(shared.forward_extremities))
            batch = []
            for i in range(count):
                event, item = await creator.prepare(
                    snapshot, EventDraft("m.room.message", self.alice, {"body": f"bulk {i}"})
                )
                batch.append(item)
                snapshot.forward_extremities = [event.event_id]
                snapshot.max_depth = event.depth
                if len(batch) == 2000:
                    await hs.storage.persister.persist(batch)
                    batch = []
            if batch:
                await hs.storage.persister.persist(batch)
