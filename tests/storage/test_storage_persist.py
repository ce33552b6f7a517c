"""The event persister and state storage, below the HTTP API, on the run's database engine."""

from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.trial import unittest

from homeserver.clock import Clock
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.signing import generate_signing_key
from homeserver.rooms.event_creation import EventCreator, EventDraft
from homeserver.rooms.room_creation import RoomRequest, initial_drafts
from storage.state import MAX_DELTA_DEPTH
from storage.store import Storage
from tests.asyncutil import async_test
from tests.harness import TestStorage

ALICE = "@alice:test.local"


class PersisterTests(unittest.TestCase):
    def setUp(self) -> None:
        self.harness = TestStorage()
        self.key = generate_signing_key()

    def tearDown(self) -> None:
        self.harness.stop()

    async def _start(self) -> tuple[Storage, EventCreator, str]:
        storage = await self.harness.start()
        creator = EventCreator("test.local", self.key, storage, Clock(reactor))
        request = RoomRequest(
            preset="public_chat", visibility="private", room_version=KNOWN_ROOM_VERSIONS["12"]
        )
        drafts = initial_drafts(request, ALICE, {"membership": "join"}, None)
        events = await creator.create_room_events(request.room_version, drafts)
        return storage, creator, events[0].room_id

    @async_test
    async def test_concurrent_sends_share_transactions(self) -> None:
        storage, creator, room_id = await self._start()
        batches_before = storage.persister.batches_written
        sends = [
            defer.ensureDeferred(
                creator.send(room_id, EventDraft("m.room.message", ALICE, {"body": str(i)}))
            )
            for i in range(30)
        ]
        events = await defer.gatherResults(sends)
        orderings = [e.stream_ordering for e in events]
        self.assertEqual(len(set(orderings)), 30)
        # One room is serialised by its lock, so sends queue behind each other's commits; what
        # the persister sees concurrently is one event per commit here. Across rooms they batch.
        self.assertLessEqual(storage.persister.batches_written - batches_before, 30)
        timeline = await storage.events.get_timeline(
            room_id,
            after=0,
            upto=storage.persister.max_stream_ordering,
            limit=100,
            newest_first=False,
        )
        bodies = [e.content.get("body") for e in timeline if e.type == "m.room.message"]
        self.assertEqual(sorted(bodies, key=int), [str(i) for i in range(30)])

    @async_test
    async def test_sends_to_many_rooms_are_group_committed(self) -> None:
        storage, creator, _ = await self._start()
        rooms = []
        for _ in range(8):
            request = RoomRequest(
                preset="public_chat",
                visibility="private",
                room_version=KNOWN_ROOM_VERSIONS["12"],
            )
            drafts = initial_drafts(request, ALICE, {"membership": "join"}, None)
            rooms.append(
                (await creator.create_room_events(request.room_version, drafts))[0].room_id
            )
        batches_before = storage.persister.batches_written
        sends = [
            defer.ensureDeferred(
                creator.send(room, EventDraft("m.room.message", ALICE, {"body": "x"}))
            )
            for room in rooms
        ]
        await defer.gatherResults(sends)
        self.assertLess(storage.persister.batches_written - batches_before, 8)

    @async_test
    async def test_state_survives_a_restart_and_deltas_are_bounded(self) -> None:
        storage, creator, room_id = await self._start()
        for i in range(MAX_DELTA_DEPTH + 5):
            await creator.send(
                room_id, EventDraft("m.room.topic", ALICE, {"topic": f"t{i}"}, state_key="")
            )
        snapshot = await storage.state.get_snapshot(room_id)
        assert snapshot is not None
        topic_id = snapshot.state[("m.room.topic", "")]
        # A new Storage on the same database knows nothing in memory and must agree.
        fresh = Storage(self.harness.db)
        await fresh.start()
        reloaded = await fresh.state.get_snapshot(room_id)
        assert reloaded is not None
        self.assertEqual(reloaded.state, snapshot.state)
        self.assertEqual(reloaded.state_group, snapshot.state_group)
        self.assertEqual(await fresh.state.get_state_group(reloaded.state_group), snapshot.state)
        self.assertLessEqual(
            await fresh.state.get_group_depth(reloaded.state_group), MAX_DELTA_DEPTH
        )
        topic = await fresh.events.get_event(topic_id)
        assert topic is not None
        self.assertEqual(topic.content["topic"], f"t{MAX_DELTA_DEPTH + 4}")

    @async_test
    async def test_failed_event_does_not_break_others_in_the_batch(self) -> None:
        storage, creator, room_id = await self._start()
        good = EventDraft("m.room.message", ALICE, {"body": "ok"})
        event, item = await creator.prepare(await storage.state.get_snapshot(room_id), good)
        # Persisting the same event twice violates the primary key; a batch holding both the
        # duplicate and a good request must still commit the good one.
        await storage.persister.persist([item])
        other = EventDraft("m.room.message", ALICE, {"body": "second"})
        snapshot = await storage.state.get_snapshot(room_id)
        event2, item2 = await creator.prepare(snapshot, other)
        duplicate = defer.ensureDeferred(storage.persister.persist([item]))
        second = defer.ensureDeferred(storage.persister.persist([item2]))
        results = await defer.DeferredList([duplicate, second], consumeErrors=True)
        self.assertFalse(results[0][0])
        self.assertTrue(results[1][0])
        self.assertIsNotNone(await storage.events.get_event(event2.event_id))


    @async_test
    async def test_member_missing_from_a_replaced_state_loses_the_room(self) -> None:
        """A new current state that no longer names a member (state resolution dropped their
        membership) takes the room out of that member's cached room list, as a reload would."""
        storage, creator, room_id = await self._start()
        bob = "@bob:test.local"
        await creator.send(
            room_id, EventDraft("m.room.member", bob, {"membership": "join"}, state_key=bob)
        )
        self.assertEqual(await storage.state.get_rooms_for_user(bob), {room_id: "join"})

        snapshot = await storage.state.get_snapshot(room_id)
        assert snapshot is not None
        event, item = await creator.prepare(
            snapshot, EventDraft("m.room.message", ALICE, {"body": "after the fork"})
        )
        without_bob = {k: v for k, v in snapshot.state.items() if k != ("m.room.member", bob)}
        write = await storage.state.plan_group(room_id, None, without_bob)
        item.extra_state_groups.append((write, without_bob))
        item.current_state = without_bob
        item.current_state_group = write.group_id
        item.current_memberships = {ALICE: "join"}
        await storage.persister.persist([item])

        self.assertEqual(await storage.state.get_rooms_for_user(bob), {})
        self.assertEqual(await storage.state._load_rooms_for_user(bob), {})
        self.assertEqual(await storage.state.get_rooms_for_user(ALICE), {room_id: "join"})
