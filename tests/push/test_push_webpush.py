"""Web Push straight from the homeserver (MSC4174), end to end: a browser-style subscription
made by the test, a push service on HTTPS loopback, the validation push acknowledged, and each
payload decrypted with the subscription's private key."""

from __future__ import annotations

import base64
import json
import os
from typing import Any
from urllib.parse import quote

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet import defer
from twisted.trial import unittest

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.harness import TestServer
from tests.push.push_testing import HttpsReceiver, Received

UNSTABLE_ACK = "/_matrix/client/unstable/org.matrix.msc4174/pushers/ack"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Subscription:
    """What a browser's PushManager.subscribe() makes: a P-256 key pair and an auth secret."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    @property
    def p256dh(self) -> str:
        return b64(self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))

    def decrypt(self, received: Received) -> Any:
        assert received.headers["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(received.body, private_key=self.key, auth_secret=self.auth,
                                 version="aes128gcm")
        return json.loads(plain)


class WebPush(unittest.TestCase):
    timeout = 60

    def setUp(self) -> defer.Deferred:
        self.answers: list[tuple[Any, ...]] = []
        self.service = HttpsReceiver(responder=lambda path, body: (
            self.answers.pop(0) if self.answers else (201, {})))
        self.service.start()
        self.server = TestServer(ip_range_whitelist=["127.0.0.0/8"])
        return defer.ensureDeferred(self._start())

    async def _start(self) -> None:
        await self.server.start()
        self.client = self.server.client
        self.alice, self.alice_token = await self.client.register("alice")
        self.bob, self.bob_token = await self.client.register("bob")
        self.subscription = Subscription(self.service.url("/push/alice-browser"))

    def tearDown(self) -> defer.Deferred:
        async def stop() -> None:
            await self.server.stop()
            await self.service.stop()

        return defer.ensureDeferred(stop())

    async def subscribe(self, kind: str = "webpush") -> int:
        response = await self.client.post(f"{V3}/pushers/set", {
            "kind": kind, "app_id": "org.example.web", "pushkey": self.subscription.p256dh,
            "app_display_name": "Web", "device_display_name": "Firefox", "lang": "en",
            "data": {"url": self.subscription.endpoint, "auth": b64(self.subscription.auth)},
        }, self.alice_token)
        self.assertIn(response.code, (200, 201), response.json)
        return response.code

    async def pushers(self) -> list[dict]:
        return (await self.client.get(f"{V3}/pushers", self.alice_token)).json["pushers"]

    async def dm(self) -> str:
        created = await self.client.post(f"{V3}/createRoom", {
            "preset": "trusted_private_chat", "invite": [self.alice], "is_direct": True},
            self.bob_token)
        room_id = created.json["room_id"]
        await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.alice_token)
        return room_id

    async def send(self, room_id: str, body: str) -> str:
        response = await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{body.replace(' ', '-')}",
            {"msgtype": "m.text", "body": body}, self.bob_token)
        return response.json["event_id"]

    @async_test
    async def test_capability_advertises_the_vapid_key(self) -> None:
        caps = (await self.client.get(f"{V3}/capabilities", self.alice_token)).json
        stable = caps["capabilities"]["m.webpush"]
        self.assertTrue(stable["enabled"])
        self.assertEqual(caps["capabilities"]["org.matrix.msc4174.webpush"], stable)
        raw = base64.urlsafe_b64decode(stable["vapid"] + "==")
        self.assertEqual((len(raw), raw[0]), (65, 4))  # an uncompressed P-256 point

    @async_test
    async def test_subscribe_acknowledge_and_receive_an_encrypted_notification(self) -> None:
        room_id = await self.dm()
        self.assertEqual(await self.subscribe(), 201)
        [pusher] = await self.pushers()
        self.assertFalse(pusher["activated"])

        [validation] = await self.service.wait_for(1)
        self.assertEqual(validation.path, "/push/alice-browser")
        self.assertTrue(validation.headers["authorization"].startswith("vapid t="))
        ack = self.subscription.decrypt(validation)
        self.assertEqual(ack["app_id"], "org.example.web")

        # Dormant: a message before the acknowledgement is not pushed.
        await self.send(room_id, "too early")
        await self.server.hs.pushers.wait_idle()
        self.assertEqual(len(self.service.received), 1)

        wrong = await self.client.post(f"{V3}/pushers/ack", {
            "app_id": "org.example.web", "ack_token": "not-it"}, self.alice_token)
        self.assertEqual((wrong.code, wrong.json["errcode"]), (400, "M_UNKNOWN_ACTIVATION_TOKEN"))
        unknown_app = await self.client.post(f"{V3}/pushers/ack", {
            "app_id": "org.example.other", "ack_token": ack["ack_token"]}, self.alice_token)
        self.assertEqual((unknown_app.code, unknown_app.json["errcode"]), (404, "M_NOT_FOUND"))
        done = await self.client.post(UNSTABLE_ACK, ack, self.alice_token)
        self.assertEqual(done.code, 200, done.json)
        [pusher] = await self.pushers()
        self.assertTrue(pusher["activated"])

        event_id = await self.send(room_id, "now you hear me")
        [_, pushed] = await self.service.wait_for(2)
        note = self.subscription.decrypt(pushed)
        self.assertEqual((note["event_id"], note["room_id"], note["sender"]),
                         (event_id, room_id, self.bob))
        self.assertEqual(note["content"]["body"], "now you hear me")
        # Unread: the invite, the message sent while dormant (counted, not pushed), this one.
        self.assertEqual(note["counts"]["unread"], 3)
        self.assertEqual(pushed.headers["ttl"].isdigit(), True)

    @async_test
    async def test_expired_token_and_gone_subscription(self) -> None:
        room_id = await self.dm()
        await self.subscribe(kind="org.matrix.msc4174.webpush")
        [validation] = await self.service.wait_for(1)
        ack = self.subscription.decrypt(validation)
        # Five minutes later the token is no good.
        later = self.server.hs.clock.time_msec() + 5 * 60 * 1000 + 1
        self.patch(self.server.hs.pushers.clock, "time_msec", lambda: later)
        expired = await self.client.post(f"{V3}/pushers/ack", ack, self.alice_token)
        self.assertEqual((expired.code, expired.json["errcode"]),
                         (410, "M_EXPIRED_ACTIVATION_TOKEN"))
        # Subscribing again sends a fresh token, which works.
        self.assertEqual(await self.subscribe(kind="org.matrix.msc4174.webpush"), 201)
        [_, again] = await self.service.wait_for(2)
        fresh = self.subscription.decrypt(again)
        self.assertNotEqual(fresh["ack_token"], ack["ack_token"])
        self.assertEqual((await self.client.post(f"{V3}/pushers/ack", fresh,
                                                 self.alice_token)).code, 200)
        # The push service says the subscription is gone: the pusher is deleted.
        self.answers = [(410, {})]
        await self.send(room_id, "hello?")
        await self.service.wait_for(3)
        await self.server.hs.pushers.wait_idle()
        self.assertEqual(await self.pushers(), [])

    @async_test
    async def test_plain_http_endpoints_are_refused(self) -> None:
        response = await self.client.post(f"{V3}/pushers/set", {
            "kind": "webpush", "app_id": "org.example.web", "pushkey": self.subscription.p256dh,
            "app_display_name": "Web", "device_display_name": "Firefox", "lang": "en",
            "data": {"url": "http://push.example/abc", "auth": b64(self.subscription.auth)},
        }, self.alice_token)
        self.assertEqual((response.code, response.json["errcode"]), (400, "M_INVALID_PARAM"))

    @async_test
    async def test_a_redirect_is_not_followed(self) -> None:
        """The address checked is the one posted to (MSC4174): a push service that redirects
        elsewhere gets the one request, and the validation push is not sent on."""
        elsewhere = self.service.url("/elsewhere")
        self.answers = [(307, {}, {"Location": elsewhere})]
        self.assertEqual(await self.subscribe(), 201)
        await self.service.wait_for(1)
        await self.server.hs.pushers.wait_idle()
        self.assertEqual([r.path for r in self.service.received], ["/push/alice-browser"])
