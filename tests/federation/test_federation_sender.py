"""The outbound federation sender over the real queue store (on the run's engine), with a fake
federation client and a fake clock for the retry timers."""

from __future__ import annotations

import copy
from typing import Any

from twisted.internet import defer, task
from twisted.trial import unittest

from federation.client import FederationError
from federation.sender import FederationSender
from storage.federation_queue import FederationQueueStore, RetryState
from tests.asyncutil import async_test
from tests.harness import TestStorage

ORIGIN = "origin.test"
START_S = 1_700_000_000.0


class FakeFederationClient:
    """Records every put_json; answers 200 unless told to fail or to hold a destination."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        # destination -> (how many more calls fail (-1: all), HTTP code or None, body)
        self.failing: dict[str, tuple[int, int | None, Any]] = {}
        # destination -> Deferred that the next calls wait on
        self.gates: dict[str, defer.Deferred] = {}
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self._waiters: list[tuple[int, defer.Deferred]] = []

    async def wait_for_calls(self, count: int) -> None:
        if len(self.calls) < count:
            waiter: defer.Deferred = defer.Deferred()
            self._waiters.append((count, waiter))
            await waiter

    def fail(self, destination: str, times: int = -1, code: int | None = None,
             body: Any = None) -> None:
        self.failing[destination] = (times, code, body)

    def recover(self, destination: str) -> None:
        self.failing.pop(destination, None)

    async def put_json(self, destination: str, path: str, content: Any, **kwargs: Any) -> Any:
        self.calls.append((destination, path, copy.deepcopy(content)))
        for waiter in [w for w in self._waiters if len(self.calls) >= w[0]]:
            self._waiters.remove(waiter)
            waiter[1].callback(None)
        self.in_flight[destination] = self.in_flight.get(destination, 0) + 1
        self.max_in_flight[destination] = max(
            self.max_in_flight.get(destination, 0), self.in_flight[destination]
        )
        try:
            gate = self.gates.get(destination)
            if gate is not None:
                await gate
            times, code, body = self.failing.get(destination, (0, None, None))
            if times != 0:
                if times > 0:
                    self.failing[destination] = (times - 1, code, body)
                if code is None:
                    raise FederationError(destination, "connection refused")
                raise FederationError(destination, f"PUT {path} answered {code}", code, body)
            return {"pdus": {p["event_id"]: {} for p in content["pdus"]}}
        finally:
            self.in_flight[destination] -= 1

    def to(self, destination: str) -> list[tuple[str, dict[str, Any]]]:
        """(path, body) of each call to the destination, in order."""
        return [(path, body) for d, path, body in self.calls if d == destination]


def pdu(n: int) -> tuple[str, dict[str, Any]]:
    event_id = f"$event{n}"
    return event_id, {
        "event_id": event_id,
        "room_id": "!room:origin.test",
        "type": "m.room.message",
        "sender": "@alice:origin.test",
        "content": {"body": f"message {n}"},
    }


def event_ids(body: dict[str, Any]) -> list[str]:
    return [p["event_id"] for p in body["pdus"]]


class FederationSenderTests(unittest.TestCase):
    def setUp(self) -> None:
        self.harness = TestStorage()
        self.store = FederationQueueStore(self.harness.db)
        self.clock = task.Clock()
        self.clock.advance(START_S)
        self.senders: list[FederationSender] = []

    def tearDown(self) -> None:
        for sender in self.senders:
            sender.stop()
        self.harness.stop()

    def sender(self, client: FakeFederationClient, **kwargs: Any) -> FederationSender:
        sender = FederationSender(ORIGIN, self.store, client, self.clock, None, **kwargs)
        self.senders.append(sender)
        return sender

    def now_ms(self) -> int:
        return int(self.clock.seconds() * 1000)

    def next_delay(self) -> float:
        (call,) = self.clock.getDelayedCalls()
        return call.getTime() - self.clock.seconds()

    async def assert_queue_empty(self) -> None:
        self.assertEqual(await self.store.pending_destinations(), [])
        rows = await self.harness.db.run(
            "count_json",
            lambda txn: txn.query_one("SELECT COUNT(*) FROM federation_outbox_pdu_json"),
        )
        self.assertEqual(rows[0], 0)

    @async_test
    async def test_batches_reach_each_destination_once_in_order(self) -> None:
        client = FakeFederationClient()
        sender = self.sender(client)
        queued = [pdu(n) for n in range(120)]
        # Queued before the sender runs (as after a crash), so the batches are full ones.
        for event_id, event in queued:
            await self.store.enqueue_pdus([(event_id, event)], ["a.test", "b.test"])
        await sender.start()
        await sender.wait_idle()

        for destination in ("a.test", "b.test"):
            sent = client.to(destination)
            self.assertEqual([len(body["pdus"]) for _, body in sent], [50, 50, 20])
            self.assertEqual(
                [e for _, body in sent for e in event_ids(body)], [e for e, _ in queued]
            )
            self.assertEqual(len({path for path, _ in sent}), 3)
            for path, body in sent:
                self.assertTrue(path.startswith("/_matrix/federation/v1/send/"))
                self.assertEqual(body["origin"], ORIGIN)
                self.assertEqual(body["origin_server_ts"], self.now_ms())
                self.assertEqual(body["edus"], [])
            self.assertEqual(sent[0][1]["pdus"][0], queued[0][1])
        self.assertEqual(sender.transactions_sent, 6)
        await self.assert_queue_empty()

    @async_test
    async def test_live_sends_are_sequential_and_batched(self) -> None:
        client = FakeFederationClient()
        sender = self.sender(client)
        await sender.start()
        gate: defer.Deferred = defer.Deferred()
        client.gates["a.test"] = gate
        queued = [pdu(n) for n in range(120)]
        for n, (event_id, event) in enumerate(queued):
            # Never ourselves, never an invalid name, each destination once.
            await sender.send_pdu(event, event_id, ["a.test", ORIGIN, "b.test", "a.test", "bad name"])
            if n == 0:
                await client.wait_for_calls(1)
        del client.gates["a.test"]
        gate.callback(None)
        await sender.wait_idle()

        for destination in ("a.test", "b.test"):
            sent = client.to(destination)
            self.assertEqual(
                [e for _, body in sent for e in event_ids(body)], [e for e, _ in queued]
            )
            self.assertTrue(all(len(body["pdus"]) <= 50 for _, body in sent))
            self.assertEqual(client.max_in_flight[destination], 1)
        # a.test was held on its first transaction while 119 more queued up: 1 + 50 + 50 + 19.
        self.assertEqual([len(b["pdus"]) for _, b in client.to("a.test")], [1, 50, 50, 19])
        self.assertEqual({d for d, _, _ in client.calls}, {"a.test", "b.test"})
        await self.assert_queue_empty()

    @async_test
    async def test_down_destination_backs_off_without_delaying_others(self) -> None:
        client = FakeFederationClient()
        client.fail("down.test", code=502)
        sender = self.sender(client, initial_backoff_s=5, max_backoff_s=40)
        await sender.start()
        event_id, event = pdu(1)
        await sender.send_pdu(event, event_id, ["down.test", "up.test"])
        await sender.wait_idle()
        self.assertEqual(len(client.to("up.test")), 1)
        self.assertEqual(len(client.to("down.test")), 1)
        self.assertTrue(sender.is_backing_off("down.test"))

        delays = []
        for n in range(2, 8):
            delay = self.next_delay()
            delays.append(delay)
            self.assertEqual(
                await self.store.get_retry_state("down.test"),
                RetryState(n - 1, self.now_ms() + int(delay * 1000)),
            )
            # Something for up.test meanwhile goes out at once.
            event_id, event = pdu(n)
            await sender.send_pdu(event, event_id, ["down.test", "up.test"])
            await sender.wait_idle()
            self.assertEqual(len(client.to("up.test")), n)
            self.assertEqual(len(client.to("down.test")), n - 1)
            # Just short of the delay nothing happens; at the delay it retries.
            self.clock.advance(delay - 0.5)
            await sender.wait_idle()
            self.assertEqual(len(client.to("down.test")), n - 1)
            self.clock.advance(0.5)
            await sender.wait_idle()
            self.assertEqual(len(client.to("down.test")), n)
        self.assertEqual(delays, [5, 10, 20, 40, 40, 40])

        client.recover("down.test")
        self.clock.advance(self.next_delay())
        await sender.wait_idle()
        self.assertFalse(sender.is_backing_off("down.test"))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        received = [e for _, body in client.to("down.test") for e in event_ids(body)]
        # The first batch retried until it got through, then the rest in order.
        self.assertEqual(list(dict.fromkeys(received)), [f"$event{n}" for n in range(1, 8)])
        self.assertEqual(await self.store.get_retry_state("down.test"), RetryState(0, 0))
        await self.assert_queue_empty()

    @async_test
    async def test_retried_transaction_keeps_its_id_and_body(self) -> None:
        client = FakeFederationClient()
        client.fail("b.test", times=2, code=None)
        sender = self.sender(client, initial_backoff_s=1, max_backoff_s=10)
        await sender.start()
        for n in range(3):
            event_id, event = pdu(n)
            await sender.send_pdu(event, event_id, ["b.test"])
            await sender.wait_idle()
        # The first PDU went out alone and failed; the other two wait behind it.
        self.clock.advance(self.next_delay())
        await sender.wait_idle()
        await sender.send_edu("b.test", "m.typing", {"room_id": "!r", "user_id": "@a", "typing": True})
        self.clock.advance(self.next_delay())
        await sender.wait_idle()

        sent = client.to("b.test")
        self.assertEqual(len(sent), 4)
        self.assertEqual(sent[0], sent[1])
        self.assertEqual(sent[0], sent[2])
        self.assertEqual(event_ids(sent[0][1]), ["$event0"])
        self.assertNotEqual(sent[3][0], sent[0][0])
        self.assertEqual(event_ids(sent[3][1]), ["$event1", "$event2"])
        self.assertEqual([e["edu_type"] for e in sent[3][1]["edus"]], ["m.typing"])
        self.assertEqual(sender.transactions_failed, 2)
        await self.assert_queue_empty()

    @async_test
    async def test_refused_transaction_is_dropped_but_429_is_retried(self) -> None:
        client = FakeFederationClient()
        client.fail("c.test", times=1, code=403, body={"errcode": "M_FORBIDDEN"})
        sender = self.sender(client)
        await sender.start()
        event_id, event = pdu(0)
        await sender.send_pdu(event, event_id, ["c.test"])
        await sender.wait_idle()
        self.assertEqual(sender.transactions_dropped, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        await self.assert_queue_empty()

        client.fail("c.test", times=1, code=429, body={"errcode": "M_LIMIT_EXCEEDED",
                                                       "retry_after_ms": 30_000})
        event_id, event = pdu(1)
        await sender.send_pdu(event, event_id, ["c.test"])
        await sender.wait_idle()
        self.assertEqual(self.next_delay(), 30)
        self.clock.advance(30)
        await sender.wait_idle()
        self.assertEqual([event_ids(b) for _, b in client.to("c.test")],
                         [["$event0"], ["$event1"], ["$event1"]])
        await self.assert_queue_empty()

    @async_test
    async def test_restart_resumes_pending_and_sends_nothing_twice(self) -> None:
        client = FakeFederationClient()
        sender = self.sender(client, initial_backoff_s=60)
        await sender.start()
        for n in range(3):
            event_id, event = pdu(n)
            await sender.send_pdu(event, event_id, ["a.test"])
            await sender.wait_idle()
        self.assertEqual(len(client.to("a.test")), 3)

        client.fail("a.test")
        for n in range(3, 6):
            event_id, event = pdu(n)
            await sender.send_pdu(event, event_id, ["a.test"])
            await sender.wait_idle()
        await sender.send_edu("a.test", "m.receipt", {"n": 1})
        await sender.wait_idle()
        failed_path, failed_body = client.to("a.test")[-1]
        self.assertEqual(event_ids(failed_body), ["$event3"])
        sender.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # Queued and committed, but the process died before the sender woke.
        await self.store.enqueue_pdus([pdu(6)], ["fresh.test"])
        await self.store.enqueue_edu("fresh.test", "m.presence", {"push": []})

        self.clock.advance(30)
        client2 = FakeFederationClient()
        sender2 = self.sender(client2, initial_backoff_s=60)
        await sender2.start()
        await sender2.wait_idle()
        # fresh.test at once; a.test only when its stored retry time (60 s after the failure)
        # comes.
        fresh = client2.to("fresh.test")
        self.assertEqual([(event_ids(b), [e["edu_type"] for e in b["edus"]]) for _, b in fresh],
                         [(["$event6"], ["m.presence"])])
        self.assertEqual(client2.to("a.test"), [])
        self.assertEqual(self.next_delay(), 30)
        self.clock.advance(30)
        await sender2.wait_idle()

        resent = client2.to("a.test")
        self.assertEqual(resent[0], (failed_path, failed_body))
        received = [e for _, body in resent for e in event_ids(body)]
        self.assertEqual(received, ["$event3", "$event4", "$event5"])
        self.assertEqual([e["edu_type"] for _, b in resent for e in b["edus"]], ["m.receipt"])
        await self.assert_queue_empty()

    @async_test
    async def test_edus_ride_along(self) -> None:
        client = FakeFederationClient()
        sender = self.sender(client)
        for n in range(10):
            await self.store.enqueue_pdus([pdu(n)], ["a.test"])
        for n in range(150):
            await self.store.enqueue_edu("a.test", "m.typing", {"n": n})
        await sender.start()
        await sender.wait_idle()
        await sender.send_edu(ORIGIN, "m.typing", {"n": -1})
        await sender.send_edu("a.test", "m.direct_to_device", {"n": 150})
        await sender.wait_idle()

        sent = [body for _, body in client.to("a.test")]
        self.assertEqual([(len(b["pdus"]), len(b["edus"])) for b in sent],
                         [(10, 100), (0, 50), (0, 1)])
        self.assertEqual([e["content"]["n"] for b in sent for e in b["edus"]], list(range(151)))
        self.assertEqual(sent[0]["edus"][0], {"edu_type": "m.typing", "content": {"n": 0}})
        self.assertEqual({d for d, _, _ in client.calls}, {"a.test"})
        await self.assert_queue_empty()

    @async_test
    async def test_stop_cancels_a_request_in_flight(self) -> None:
        client = FakeFederationClient()
        client.gates["slow.test"] = defer.Deferred()
        sender = self.sender(client)
        await sender.start()
        event_id, event = pdu(0)
        await sender.send_pdu(event, event_id, ["slow.test"])
        await client.wait_for_calls(1)
        sender.stop()
        await sender.wait_idle()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(await self.store.pending_destinations(), ["slow.test"])
        self.assertEqual(await self.store.queued_counts("slow.test"), (1, 0))
