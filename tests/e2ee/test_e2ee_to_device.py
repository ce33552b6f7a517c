"""PUT /sendToDevice and delivery through /sync: once, until acknowledged, in bounded batches."""

from __future__ import annotations

from twisted.internet import defer

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.e2ee.e2ee_testing import E2eeTestCase


class ToDeviceTests(E2eeTestCase):
    async def _start(self) -> None:
        await super()._start()
        self.bob_device = await self.device_id(self.bob_token)

    async def send(self, txn_id: str, messages: dict, event_type: str = "m.test") -> None:
        response = await self.client.put(
            f"{V3}/sendToDevice/{event_type}/{txn_id}", {"messages": messages}, self.alice_token
        )
        self.assertEqual(response.code, 200, response.json)
        self.assertEqual(response.json, {})

    @async_test
    async def test_delivered_once_and_redelivered_until_acknowledged(self) -> None:
        start = await self.sync(self.bob_token)
        self.assertEqual(start["to_device"]["events"], [])
        await self.send("t1", {self.bob: {self.bob_device: {"n": 1}}})
        first = await self.sync(self.bob_token, start["next_batch"])
        expected = [{"sender": self.alice, "type": "m.test", "content": {"n": 1}}]
        self.assertEqual(first["to_device"]["events"], expected)
        # The response was "lost": syncing again from the same token sends it again.
        again = await self.sync(self.bob_token, start["next_batch"])
        self.assertEqual(again["to_device"]["events"], expected)
        # Syncing from the new token acknowledges it: never seen again, even from old tokens.
        acked = await self.sync(self.bob_token, again["next_batch"])
        self.assertEqual(acked["to_device"]["events"], [])
        stale = await self.sync(self.bob_token, start["next_batch"])
        self.assertEqual(stale["to_device"]["events"], [])
        # Only Bob's device gets it.
        self.assertEqual((await self.sync(self.alice_token))["to_device"]["events"], [])

    @async_test
    async def test_a_retried_transaction_sends_nothing_twice(self) -> None:
        start = await self.sync(self.bob_token)
        for _ in range(2):
            await self.send("same", {self.bob: {self.bob_device: {"n": 1}}})
        # The same txn ID for another event type is another request (spec: the path differs).
        await self.send("same", {self.bob: {self.bob_device: {"n": 2}}}, "m.other")
        events = (await self.sync(self.bob_token, start["next_batch"]))["to_device"]["events"]
        self.assertEqual(
            [(e["type"], e["content"]) for e in events],
            [
                ("m.test", {"n": 1}),
                ("m.other", {"n": 2}),
            ],
        )

    @async_test
    async def test_star_reaches_every_device_and_named_devices_win(self) -> None:
        phone = await self.login("bob", "PHONE")
        await self.send(
            "t1",
            {
                self.bob: {"*": {"to": "all"}, "PHONE": {"to": "phone"}, "GONE": {"to": "x"}},
                "@carol:elsewhere.example": {"*": {"to": "remote"}},
            },
        )
        laptop_events = (await self.sync(self.bob_token))["to_device"]["events"]
        phone_events = (await self.sync(phone))["to_device"]["events"]
        self.assertEqual([e["content"] for e in laptop_events], [{"to": "all"}])
        self.assertEqual([e["content"] for e in phone_events], [{"to": "phone"}])

    @async_test
    async def test_large_queue_comes_in_batches_of_100(self) -> None:
        start = await self.sync(self.bob_token)
        for n in range(150):
            await self.send(f"t{n}", {self.bob: {self.bob_device: {"n": n}}})
        first = await self.sync(self.bob_token, start["next_batch"])
        self.assertEqual(
            [e["content"]["n"] for e in first["to_device"]["events"]], list(range(100))
        )
        second = await self.sync(self.bob_token, first["next_batch"])
        self.assertEqual(
            [e["content"]["n"] for e in second["to_device"]["events"]], list(range(100, 150))
        )
        third = await self.sync(self.bob_token, second["next_batch"])
        self.assertEqual(third["to_device"]["events"], [])

    @async_test
    async def test_long_poll_wakes_for_a_message(self) -> None:
        start = await self.sync(self.bob_token)
        poll = defer.ensureDeferred(
            self.client.get(f"{V3}/sync?timeout=10000&since={start['next_batch']}", self.bob_token)
        )
        await self.send("t1", {self.bob: {self.bob_device: {"wake": True}}})
        response = await poll
        self.assertEqual(response.code, 200)
        self.assertEqual(
            [e["content"] for e in response.json["to_device"]["events"]], [{"wake": True}]
        )

    @async_test
    async def test_deleting_a_device_deletes_its_messages(self) -> None:
        phone = await self.login("bob", "PHONE")
        await self.send("t1", {self.bob: {"PHONE": {"n": 1}}})
        response = await self.client.post(
            f"{V3}/delete_devices",
            {
                "devices": ["PHONE"],
                "auth": {
                    "type": "m.login.password",
                    "password": "correct horse",
                    "identifier": {"type": "m.id.user", "user": "bob"},
                },
            },
            self.bob_token,
        )
        self.assertEqual(response.code, 200, response.json)
        phone = await self.login("bob", "PHONE")
        self.assertEqual((await self.sync(phone))["to_device"]["events"], [])

    @async_test
    async def test_bad_bodies(self) -> None:
        for body in (
            {},
            {"messages": []},
            {"messages": {self.bob: ["x"]}},
            {"messages": {self.bob: {self.bob_device: "not an object"}}},
            {"messages": {"not a user": {"D": {}}}},
        ):
            response = await self.client.put(
                f"{V3}/sendToDevice/m.test/bad", body, self.alice_token
            )
            self.assertEqual(response.code, 400, (body, response.json))
            self.assertEqual(response.json["errcode"], "M_BAD_JSON")
        response = await self.client.put(f"{V3}/sendToDevice/m.test/x", {"messages": {}})
        self.assertEqual(response.code, 401)
