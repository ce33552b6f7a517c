"""Typing, read receipts and to-device messages between two of our servers."""

from __future__ import annotations

from urllib.parse import quote

from tests.asyncutil import async_test
from tests.federation.federation_testing import V3, TwoServersCase


def _ephemeral(sync: dict, room_id: str, event_type: str) -> list[dict]:
    room = sync["rooms"]["join"].get(room_id, {})
    return [e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == event_type]


class Edus(TwoServersCase):
    @async_test
    async def test_typing_reaches_the_other_server_and_stops(self) -> None:
        room_id = await self.shared_room()
        path = f"{V3}/rooms/{quote(room_id)}/typing/{quote(self.alice)}"
        response = await self.a.client.put(path, {"typing": True, "timeout": 30000},
                                           self.alice_token)
        self.assertEqual(response.code, 200, response.json)

        def typing_users(sync: dict) -> list[str] | None:
            events = _ephemeral(sync, room_id, "m.typing")
            return events[-1]["content"]["user_ids"] if events else None

        seen = await self.sync_until(self.b, self.bob_token, typing_users, "alice typing")
        self.assertEqual(seen, [self.alice])
        await self.a.client.put(path, {"typing": False}, self.alice_token)
        stopped = await self.sync_until(
            self.b, self.bob_token,
            lambda s: (typing_users(s) == []) or None, "alice stopping", since=self.next_batch,
        )
        self.assertTrue(stopped)

    @async_test
    async def test_read_receipt_reaches_the_other_server(self) -> None:
        room_id = await self.shared_room()
        event_id = await self.send(self.b, self.bob_token, room_id, "read me")
        await self.wait_for_message(self.a, self.alice_token, room_id, "read me")
        response = await self.a.client.post(
            f"{V3}/rooms/{quote(room_id)}/receipt/m.read/{quote(event_id)}", {}, self.alice_token
        )
        self.assertEqual(response.code, 200, response.json)

        def alice_read(sync: dict) -> dict | None:
            for event in _ephemeral(sync, room_id, "m.receipt"):
                readers = event["content"].get(event_id, {}).get("m.read", {})
                if self.alice in readers:
                    return readers[self.alice]
            return None

        receipt = await self.sync_until(self.b, self.bob_token, alice_read, "alice's receipt")
        self.assertIn("ts", receipt)

    @async_test
    async def test_to_device_message_is_delivered_once(self) -> None:
        login = await self.b.client.post(
            f"{V3}/login",
            {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"},
             "password": "correct horse", "device_id": "BOBPHONE"},
        )
        self.assertEqual(login.code, 200, login.json)
        bob_phone = login.json["access_token"]
        body = {"messages": {self.bob: {"BOBPHONE": {"secret": "s3cr3t"}}}}
        for _ in range(2):  # a retried request: the same transaction ID
            sent = await self.a.client.put(
                f"{V3}/sendToDevice/m.test/txn1", body, self.alice_token
            )
            self.assertEqual(sent.code, 200, sent.json)

        def messages(sync: dict) -> list[dict] | None:
            return sync.get("to_device", {}).get("events", []) or None

        received = await self.sync_until(self.b, bob_phone, messages, "the to-device message")
        self.assertEqual(
            [(m["sender"], m["type"], m["content"]) for m in received],
            [(self.alice, "m.test", {"secret": "s3cr3t"})],
        )
        # Acknowledged by the next sync, and never delivered again.
        later = await self.b.client.get(f"{V3}/sync?timeout=1500&since={self.next_batch}", bob_phone)
        self.assertEqual(later.json.get("to_device", {}).get("events", []), [])


class Presence(TwoServersCase):
    @async_test
    async def test_presence_reaches_users_sharing_a_room(self) -> None:
        await self.shared_room()
        response = await self.a.client.put(
            f"{V3}/presence/{quote(self.alice)}/status",
            {"presence": "unavailable", "status_msg": "lunch"},
            self.alice_token,
        )
        self.assertEqual(response.code, 200, response.json)

        def alice_presence(sync: dict) -> dict | None:
            for event in sync.get("presence", {}).get("events", []):
                if event["sender"] == self.alice and event["content"].get("status_msg"):
                    return event["content"]
            return None

        content = await self.sync_until(self.b, self.bob_token, alice_presence, "presence")
        self.assertEqual((content["presence"], content["status_msg"]), ("unavailable", "lunch"))
        status = await self.b.client.get(f"{V3}/presence/{quote(self.alice)}/status",
                                         self.bob_token)
        self.assertEqual(status.json["presence"], "unavailable")
