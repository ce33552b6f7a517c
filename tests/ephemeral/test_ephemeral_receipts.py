"""Receipts and read markers: POST /receipt/{receiptType}/{eventId}, POST /read_markers,
m.receipt in /sync and m.fully_read in room account data."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.ephemeral.ephemeral_testing import EphemeralTestCase, ephemeral_of, error_of


def receipts_in(sync: dict, room_id: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(event_id, receipt type, user) -> receipt data, over all the room's m.receipt events."""
    found = {}
    for event in ephemeral_of(sync, room_id, "m.receipt"):
        for event_id, by_type in event["content"].items():
            for receipt_type, by_user in by_type.items():
                for user_id, data in by_user.items():
                    found[(event_id, receipt_type, user_id)] = data
    return found


def fully_read_of(sync: dict, room_id: str) -> str | None:
    room = sync["rooms"]["join"].get(room_id, {})
    for event in room.get("account_data", {}).get("events", []):
        if event["type"] == "m.fully_read":
            return event["content"]["event_id"]
    return None


class ReceiptTests(EphemeralTestCase):
    users = ("alice", "bob", "carol")

    async def receipt(
        self, room_id: str, receipt_type: str, event_id: str, token: str, body: Any = None
    ) -> tuple[int, str]:
        response = await self.client.post(
            f"{V3}/rooms/{quote(room_id)}/receipt/{receipt_type}/{quote(event_id)}",
            {} if body is None else body,
            token,
        )
        if response.code == 200:
            self.assertEqual(response.json, {})
        return error_of(response) if response.code != 200 else (200, "")

    async def read_markers(self, room_id: str, body: Any, token: str) -> tuple[int, str]:
        response = await self.client.post(f"{V3}/rooms/{quote(room_id)}/read_markers", body, token)
        return error_of(response) if response.code != 200 else (200, "")

    @async_test
    async def test_public_receipt_reaches_others_private_one_only_its_owner(self) -> None:
        room_id = await self.shared_room()
        event_id = await self.send(room_id, self.alice_token)
        alice_start = (await self.sync(self.alice_token))["next_batch"]
        bob_start = (await self.sync(self.bob_token))["next_batch"]
        before = int(time.time() * 1000)
        self.assertEqual(await self.receipt(room_id, "m.read", event_id, self.bob_token), (200, ""))
        seen = receipts_in(await self.sync(self.alice_token, alice_start), room_id)
        self.assertEqual(list(seen), [(event_id, "m.read", self.bob)])
        receipt = seen[(event_id, "m.read", self.bob)]
        self.assertGreaterEqual(receipt["ts"], before)
        self.assertNotIn("thread_id", receipt)

        alice_next = (await self.sync(self.alice_token))["next_batch"]
        self.assertEqual(
            await self.receipt(room_id, "m.read.private", event_id, self.bob_token), (200, "")
        )
        own = receipts_in(await self.sync(self.bob_token, bob_start), room_id)
        self.assertIn((event_id, "m.read.private", self.bob), own)
        others = await self.sync(self.alice_token, alice_next)
        self.assertEqual(receipts_in(others, room_id), {})
        self.assertNotIn("m.read.private", str(await self.sync(self.alice_token)))

    @async_test
    async def test_long_poll_is_woken_by_a_receipt(self) -> None:
        room_id = await self.shared_room()
        event_id = await self.send(room_id, self.alice_token)
        token = (await self.sync(self.alice_token))["next_batch"]
        woken = await self.woken_by(
            self.alice_token,
            token,
            lambda: self.receipt(room_id, "m.read", event_id, self.bob_token),
            lambda sync: bool(receipts_in(sync, room_id)),
        )
        self.assertIn((event_id, "m.read", self.bob), receipts_in(woken, room_id))

    @async_test
    async def test_initial_sync_has_current_receipts_and_they_never_move_back(self) -> None:
        room_id = await self.shared_room()
        older = await self.send(room_id, self.alice_token)
        newer = await self.send(room_id, self.alice_token)
        await self.receipt(room_id, "m.read", newer, self.bob_token)
        # A device that is behind reports an older event: accepted, and ignored.
        self.assertEqual(await self.receipt(room_id, "m.read", older, self.bob_token), (200, ""))
        initial = receipts_in(await self.sync(self.alice_token), room_id)
        self.assertIn((newer, "m.read", self.bob), initial)
        self.assertNotIn((older, "m.read", self.bob), initial)

    @async_test
    async def test_threaded_receipts(self) -> None:
        room_id = await self.shared_room()
        root = await self.send(room_id, self.alice_token)
        reply = await self.send(
            room_id,
            self.alice_token,
            {
                "msgtype": "m.text",
                "body": "in the thread",
                "m.relates_to": {"rel_type": "m.thread", "event_id": root},
            },
        )
        main_event = await self.send(room_id, self.alice_token)
        start = (await self.sync(self.alice_token))["next_batch"]
        ok = (200, "")
        self.assertEqual(
            await self.receipt(room_id, "m.read", reply, self.bob_token, {"thread_id": root}), ok
        )
        self.assertEqual(
            await self.receipt(
                room_id, "m.read", main_event, self.bob_token, {"thread_id": "main"}
            ),
            ok,
        )
        self.assertEqual(await self.receipt(room_id, "m.read", main_event, self.bob_token), ok)
        seen = receipts_in(await self.sync(self.alice_token, start), room_id)
        self.assertEqual(seen[(reply, "m.read", self.bob)]["thread_id"], root)
        # One user's threaded and unthreaded receipts on one event do not overwrite each other.
        events = ephemeral_of(await self.sync(self.alice_token, start), room_id, "m.receipt")
        threads = sorted(
            str(data.get("thread_id"))
            for e in events
            for data in e["content"].get(main_event, {}).get("m.read", {}).values()
        )
        self.assertEqual(threads, ["None", "main"])

        invalid = (400, "M_INVALID_PARAM")
        for body in ({"thread_id": ""}, {"thread_id": 5}, {"thread_id": "thread"}):
            self.assertEqual(
                await self.receipt(room_id, "m.read", reply, self.bob_token, body), invalid, body
            )
        # The event is not in the thread the receipt names.
        self.assertEqual(
            await self.receipt(room_id, "m.read", reply, self.bob_token, {"thread_id": "main"}),
            invalid,
        )
        self.assertEqual(
            await self.receipt(room_id, "m.read", main_event, self.bob_token, {"thread_id": root}),
            invalid,
        )
        self.assertEqual(
            await self.receipt(room_id, "m.fully_read", reply, self.bob_token, {"thread_id": root}),
            invalid,
        )

    @async_test
    async def test_refusals(self) -> None:
        room_id = await self.shared_room()
        event_id = await self.send(room_id, self.alice_token)
        elsewhere = await self.create_room(self.carol_token)
        other_event = await self.send(elsewhere, self.carol_token)
        self.assertEqual(
            await self.receipt(room_id, "m.unknown", event_id, self.bob_token),
            (400, "M_INVALID_PARAM"),
        )
        self.assertEqual(
            await self.receipt(room_id, "m.read", "$nope", self.bob_token), (404, "M_NOT_FOUND")
        )
        self.assertEqual(
            await self.receipt(room_id, "m.read", other_event, self.bob_token), (404, "M_NOT_FOUND")
        )
        self.assertEqual(
            await self.receipt(room_id, "m.read", event_id, self.carol_token), (403, "M_FORBIDDEN")
        )
        self.assertEqual(
            await self.receipt(room_id, "m.read", event_id, self.bob_token, [1]),
            (400, "M_BAD_JSON"),
        )
        self.assertEqual(
            await self.read_markers(room_id, {"m.fully_read": 5}, self.bob_token),
            (400, "M_BAD_JSON"),
        )
        # A refused marker changes nothing, not even the valid receipt beside it.
        self.assertEqual(
            await self.read_markers(
                room_id, {"m.read": event_id, "m.fully_read": other_event}, self.bob_token
            ),
            (404, "M_NOT_FOUND"),
        )
        self.assertEqual(receipts_in(await self.sync(self.alice_token), room_id), {})

    @async_test
    async def test_read_markers_set_fully_read_and_receipts(self) -> None:
        room_id = await self.shared_room()
        first = await self.send(room_id, self.alice_token)
        second = await self.send(room_id, self.alice_token)
        start = (await self.sync(self.bob_token))["next_batch"]
        alice_start = (await self.sync(self.alice_token))["next_batch"]
        body = {"m.fully_read": second, "m.read": second, "m.read.private": first}
        self.assertEqual(await self.read_markers(room_id, body, self.bob_token), (200, ""))
        mine = await self.sync(self.bob_token, start)
        self.assertEqual(fully_read_of(mine, room_id), second)
        receipts = receipts_in(mine, room_id)
        self.assertIn((second, "m.read", self.bob), receipts)
        self.assertIn((first, "m.read.private", self.bob), receipts)
        self.assertEqual(
            set(receipts_in(await self.sync(self.alice_token, alice_start), room_id)),
            {(second, "m.read", self.bob)},
        )
        response = await self.client.get(
            f"{V3}/user/{quote(self.bob)}/rooms/{quote(room_id)}/account_data/m.fully_read",
            self.bob_token,
        )
        self.assertEqual(response.json, {"event_id": second})
        # The marker does not move back, through either endpoint.
        await self.read_markers(room_id, {"m.fully_read": first}, self.bob_token)
        await self.receipt(room_id, "m.fully_read", first, self.bob_token)
        self.assertEqual(fully_read_of(await self.sync(self.bob_token), room_id), second)
        # /receipt/m.fully_read moves it forward, and is not an m.receipt.
        third = await self.send(room_id, self.alice_token)
        token = (await self.sync(self.bob_token))["next_batch"]
        self.assertEqual(
            await self.receipt(room_id, "m.fully_read", third, self.bob_token), (200, "")
        )
        after = await self.sync(self.bob_token, token)
        self.assertEqual(fully_read_of(after, room_id), third)
        self.assertEqual(receipts_in(after, room_id), {})

    @async_test
    async def test_receipts_survive_a_restart(self) -> None:
        room_id = await self.shared_room()
        event_id = await self.send(room_id, self.alice_token)
        await self.receipt(room_id, "m.read", event_id, self.bob_token)
        token = (await self.sync(self.alice_token))["next_batch"]
        await self.restart()
        self.assertIn(
            (event_id, "m.read", self.bob), receipts_in(await self.sync(self.alice_token), room_id)
        )
        # The stream continues above the old token's position.
        later = await self.send(room_id, self.alice_token)
        await self.receipt(room_id, "m.read", later, self.bob_token)
        after = await self.sync(self.alice_token, token)
        self.assertEqual(set(receipts_in(after, room_id)), {(later, "m.read", self.bob)})
