"""Pushers of kind http, end to end: a real HTTPS push gateway on loopback records what the
homeserver sends it (the push gateway API's POST /_matrix/push/v1/notify)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from twisted.internet import defer
from twisted.trial import unittest

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.harness import TestServer
from tests.push.push_testing import HttpsReceiver

NOTIFY = "/_matrix/push/v1/notify"


class GatewayCase(unittest.TestCase):
    """A test server and a recording gateway; alice sets pushers, bob writes to her."""

    timeout = 60

    # Loopback is a private address: the gateway is reachable only when it is whitelisted.
    whitelist = ["127.0.0.0/8"]

    def setUp(self) -> defer.Deferred:
        self.answers: list[tuple[Any, ...]] = []
        self.gateway = HttpsReceiver(responder=self.answer)
        self.gateway.start()  # first: the server trusts the certificate it finds at start
        self.server = TestServer(ip_range_whitelist=self.whitelist,
                                 push={"retry_initial_backoff": "100ms"})
        return defer.ensureDeferred(self._start())

    def answer(self, path: str, body: bytes) -> tuple[Any, ...]:
        return self.answers.pop(0) if self.answers else (200, {"rejected": []})

    async def _start(self) -> None:
        await self.server.start()
        self.client = self.server.client
        self.alice, self.alice_token = await self.client.register("alice")
        self.bob, self.bob_token = await self.client.register("bob")

    def tearDown(self) -> defer.Deferred:
        async def stop() -> None:
            await self.server.stop()
            await self.gateway.stop()

        return defer.ensureDeferred(stop())

    async def set_pusher(self, pushkey: str = "device-token", **data: Any) -> None:
        response = await self.client.post(f"{V3}/pushers/set", {
            "kind": "http", "app_id": "org.example.app", "pushkey": pushkey,
            "app_display_name": "Example", "device_display_name": "Alice's phone", "lang": "en",
            "data": {"url": self.gateway.url(NOTIFY), **data},
        }, self.alice_token)
        self.assertEqual(response.code, 200, response.json)

    async def dm(self) -> str:
        created = await self.client.post(f"{V3}/createRoom", {
            "preset": "trusted_private_chat", "invite": [self.alice], "is_direct": True,
            "name": "Lunch"}, self.bob_token)
        room_id = created.json["room_id"]
        joined = await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.alice_token)
        self.assertEqual(joined.code, 200, joined.json)
        return room_id

    async def send(self, room_id: str, token: str, body: str) -> str:
        response = await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{body.replace(' ', '-')}",
            {"msgtype": "m.text", "body": body}, token)
        self.assertEqual(response.code, 200, response.json)
        return response.json["event_id"]

    async def settle(self) -> None:
        await self.server.hs.pushers.wait_idle()


class PushGateway(GatewayCase):
    @async_test
    async def test_a_message_is_pushed_once_with_counts(self) -> None:
        room_id = await self.dm()
        await self.set_pusher(custom="kept")
        listed = await self.client.get(f"{V3}/pushers", self.alice_token)
        [pusher] = listed.json["pushers"]
        self.assertEqual((pusher["kind"], pusher["pushkey"], pusher["data"]["custom"]),
                         ("http", "device-token", "kept"))

        own = await self.send(room_id, self.alice_token, "my own words")
        # What came before (the invite, which notified) is read.
        read = await self.client.post(
            f"{V3}/rooms/{quote(room_id)}/receipt/m.read/{quote(own)}", {}, self.alice_token)
        self.assertEqual(read.code, 200, read.json)
        event_id = await self.send(room_id, self.bob_token, "lunch at noon?")
        [received] = await self.gateway.wait_for(1)
        await self.settle()
        self.assertEqual(len(self.gateway.received), 1)  # exactly once; never for alice's own
        self.assertEqual(received.path, NOTIFY)
        note = received.json()["notification"]
        self.assertEqual((note["event_id"], note["room_id"], note["type"], note["sender"]),
                         (event_id, room_id, "m.room.message", self.bob))
        self.assertEqual(note["content"]["body"], "lunch at noon?")
        self.assertEqual((note["room_name"], note["sender_display_name"]), ("Lunch", "bob"))
        self.assertEqual(note["counts"], {"unread": 1})
        self.assertEqual(note["prio"], "high")  # the one-to-one rule plays a sound
        [device] = note["devices"]
        self.assertEqual((device["app_id"], device["pushkey"]), ("org.example.app",
                                                                 "device-token"))
        self.assertEqual(device["data"], {"custom": "kept"})  # everything but the URL
        self.assertEqual(device["tweaks"], {"sound": "default"})

        await self.send(room_id, self.bob_token, "or one?")
        [_, second] = await self.gateway.wait_for(2)
        self.assertEqual(second.json()["notification"]["counts"], {"unread": 2})

    @async_test
    async def test_event_id_only_and_a_failing_gateway_retried(self) -> None:
        room_id = await self.dm()
        await self.set_pusher(format="event_id_only")
        self.answers = [(503, {}), (502, {})]
        event_id = await self.send(room_id, self.bob_token, "secret plans")
        received = await self.gateway.wait_for(3)
        await self.settle()
        self.assertEqual(len(self.gateway.received), 3)  # two failures, then delivered once
        note = received[-1].json()["notification"]
        self.assertEqual(note["event_id"], event_id)
        self.assertNotIn("content", note)
        self.assertNotIn("sender", note)

    @async_test
    async def test_rejected_pushkey_removes_the_pusher(self) -> None:
        room_id = await self.dm()
        await self.set_pusher()
        self.answers = [(200, {"rejected": ["device-token"]})]
        await self.send(room_id, self.bob_token, "hello?")
        await self.gateway.wait_for(1)
        await self.settle()
        listed = await self.client.get(f"{V3}/pushers", self.alice_token)
        self.assertEqual(listed.json["pushers"], [])
        await self.send(room_id, self.bob_token, "anyone?")
        await self.settle()
        self.assertEqual(len(self.gateway.received), 1)

    @async_test
    async def test_pusher_removal_and_bad_requests(self) -> None:
        await self.set_pusher()
        bad = [
            {"kind": "http", "app_id": "a", "pushkey": "k"},  # no display names, lang, data
            {"kind": "carrier-pigeon", "app_id": "a", "pushkey": "k", "app_display_name": "A",
             "device_display_name": "D", "lang": "en", "data": {"url": "https://x/y"}},
            {"kind": "http", "app_id": "a", "pushkey": "k", "app_display_name": "A",
             "device_display_name": "D", "lang": "en",
             "data": {"url": "http://insecure.example/_matrix/push/v1/notify"}},
            {"kind": "http", "app_id": "a", "pushkey": "k", "app_display_name": "A",
             "device_display_name": "D", "lang": "en",
             "data": {"url": "https://example.org/elsewhere"}},
        ]
        for body in bad:
            response = await self.client.post(f"{V3}/pushers/set", body, self.alice_token)
            self.assertEqual(response.code, 400, body)
            self.assertIn(response.json["errcode"], ("M_MISSING_PARAM", "M_INVALID_PARAM"))
        removed = await self.client.post(f"{V3}/pushers/set", {
            "kind": None, "app_id": "org.example.app", "pushkey": "device-token"},
            self.alice_token)
        self.assertEqual(removed.code, 200, removed.json)
        listed = await self.client.get(f"{V3}/pushers", self.alice_token)
        self.assertEqual(listed.json["pushers"], [])

    @async_test
    async def test_append_false_takes_the_pushkey_from_other_users(self) -> None:
        await self.set_pusher()
        taken = await self.client.post(f"{V3}/pushers/set", {
            "kind": "http", "app_id": "org.example.app", "pushkey": "device-token",
            "app_display_name": "Example", "device_display_name": "Bob's phone", "lang": "en",
            "data": {"url": self.gateway.url(NOTIFY)}}, self.bob_token)
        self.assertEqual(taken.code, 200, taken.json)
        alices = await self.client.get(f"{V3}/pushers", self.alice_token)
        self.assertEqual(alices.json["pushers"], [])
        bobs = await self.client.get(f"{V3}/pushers", self.bob_token)
        self.assertEqual(len(bobs.json["pushers"]), 1)

    @async_test
    async def test_a_logged_out_devices_pushers_go_with_it(self) -> None:
        await self.set_pusher()
        login = await self.client.post(f"{V3}/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "correct horse"}, None)
        self.assertEqual(login.code, 200, login.json)
        other_token = login.json["access_token"]
        out = await self.client.post(f"{V3}/logout", {}, self.alice_token)
        self.assertEqual(out.code, 200, out.json)
        listed = await self.client.get(f"{V3}/pushers", other_token)
        self.assertEqual(listed.json["pushers"], [])


class PrivateGateway(GatewayCase):
    whitelist: list[str] = []

    @async_test
    async def test_a_private_gateway_is_refused_and_not_retried(self) -> None:
        room_id = await self.dm()
        await self.set_pusher()
        await self.send(room_id, self.bob_token, "anyone there?")
        await self.settle()
        worker = next(iter(self.server.hs.pushers._workers.values()))
        self.assertIsNone(worker.timer)  # dropped, not backing off to try again
        self.assertEqual(self.gateway.received, [])
