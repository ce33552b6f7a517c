"""Device-list tracking: /sync device_lists.changed/left and /keys/changes; encrypted events
passing through untouched."""

from __future__ import annotations

from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.e2ee.e2ee_testing import E2eeTestCase, device_keys, new_key


class DeviceListTests(E2eeTestCase):
    users = ("alice", "bob", "carol")

    async def _start(self) -> None:
        await super()._start()
        self.room_id = await self.create_room(self.alice_token, preset="public_chat")
        await self.join(self.room_id, self.bob_token)

    async def new_device_keys(self, name: str, device_id: str) -> str:
        token = await self.login(name, device_id)
        user_id = getattr(self, name)
        await self.upload_keys(token, {"device_keys": device_keys(user_id, device_id, new_key())})
        return token

    def lists(self, sync: dict) -> tuple[list[str], list[str]]:
        return sync["device_lists"]["changed"], sync["device_lists"]["left"]

    async def keys_changes(self, token: str, since: str, upto: str) -> dict:
        response = await self.client.get(
            f"{V3}/keys/changes?from={quote(since)}&to={quote(upto)}", token
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json

    @async_test
    async def test_room_mates_and_the_user_see_key_changes_others_do_not(self) -> None:
        bob_start = await self.sync(self.bob_token)
        alice_start = await self.sync(self.alice_token)
        carol_start = await self.sync(self.carol_token)
        await self.new_device_keys("alice", "NEWPHONE")
        bob_next = await self.sync(self.bob_token, bob_start["next_batch"])
        self.assertEqual(self.lists(bob_next), ([self.alice], []))
        alice_next = await self.sync(self.alice_token, alice_start["next_batch"])
        self.assertEqual(self.lists(alice_next), ([self.alice], []))
        carol_next = await self.sync(self.carol_token, carol_start["next_batch"])
        self.assertEqual(self.lists(carol_next), ([], []))
        # Seen once: the next sync does not repeat it.
        self.assertEqual(
            self.lists(await self.sync(self.bob_token, bob_next["next_batch"])), ([], [])
        )
        # The same answer from /keys/changes between the two tokens, and nothing after.
        changes = await self.keys_changes(
            self.bob_token, bob_start["next_batch"], bob_next["next_batch"]
        )
        self.assertEqual(changes, {"changed": [self.alice], "left": []})
        later = await self.keys_changes(
            self.bob_token, bob_next["next_batch"], bob_next["next_batch"]
        )
        self.assertEqual(later, {"changed": [], "left": []})

    @async_test
    async def test_deleting_a_device_with_keys_is_a_change(self) -> None:
        phone = await self.new_device_keys("alice", "PHONE")
        bob_start = await self.sync(self.bob_token)
        await self.client.post(f"{V3}/logout", {}, phone)
        bob_next = await self.sync(self.bob_token, bob_start["next_batch"])
        self.assertEqual(self.lists(bob_next), ([self.alice], []))

    @async_test
    async def test_joining_is_changed_and_leaving_every_shared_room_is_left(self) -> None:
        carol_start = await self.sync(self.carol_token)
        bob_start = await self.sync(self.bob_token)
        await self.join(self.room_id, self.carol_token)
        carol_joined = await self.sync(self.carol_token, carol_start["next_batch"])
        self.assertEqual(sorted(self.lists(carol_joined)[0]), sorted([self.alice, self.bob]))
        bob_joined = await self.sync(self.bob_token, bob_start["next_batch"])
        self.assertEqual(self.lists(bob_joined), ([self.carol], []))

        # Bob shares a second room with Alice: leaving the first is not "left" for her.
        other_room = await self.create_room(self.alice_token, preset="public_chat")
        await self.join(other_room, self.bob_token)
        alice_before = await self.sync(self.alice_token)
        carol_before = await self.sync(self.carol_token, carol_joined["next_batch"])
        await self.leave(self.room_id, self.bob_token)
        alice_after = await self.sync(self.alice_token, alice_before["next_batch"])
        self.assertEqual(self.lists(alice_after), ([], []))
        carol_after = await self.sync(self.carol_token, carol_before["next_batch"])
        self.assertEqual(self.lists(carol_after), ([], [self.bob]))
        changes = await self.keys_changes(
            self.carol_token, carol_before["next_batch"], carol_after["next_batch"]
        )
        self.assertEqual(changes, {"changed": [], "left": [self.bob]})
        # And Bob's key changes no longer reach Carol, but still reach Alice.
        await self.new_device_keys("bob", "BOBPHONE")
        carol_last = await self.sync(self.carol_token, carol_after["next_batch"])
        self.assertEqual(self.lists(carol_last), ([], []))
        alice_last = await self.sync(self.alice_token, alice_after["next_batch"])
        self.assertEqual(self.lists(alice_last), ([self.bob], []))

    @async_test
    async def test_the_leaver_sees_everyone_it_no_longer_shares_a_room_with(self) -> None:
        await self.join(self.room_id, self.carol_token)
        bob_start = await self.sync(self.bob_token)
        await self.leave(self.room_id, self.bob_token)
        bob_next = await self.sync(self.bob_token, bob_start["next_batch"])
        self.assertEqual(self.lists(bob_next), ([], sorted([self.alice, self.carol])))

    @async_test
    async def test_keys_changes_needs_both_tokens(self) -> None:
        token = (await self.sync(self.bob_token))["next_batch"]
        for query in (f"from={token}", f"to={token}"):
            response = await self.client.get(f"{V3}/keys/changes?{query}", self.bob_token)
            self.assertEqual(response.code, 400)
            self.assertEqual(response.json["errcode"], "M_MISSING_PARAM")
        response = await self.client.get(
            f"{V3}/keys/changes?from=garbage&to={token}", self.bob_token
        )
        self.assertEqual(response.code, 400)
        self.assertEqual(response.json["errcode"], "M_INVALID_PARAM")

    @async_test
    async def test_encrypted_events_come_back_byte_identical(self) -> None:
        content = {
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg...",
            "device_id": "RJYKSTBOIE",
            "sender_key": "IlRMeOPX2e0MurIyfWEucYBRVOEEUMrOHqn/8mLqMjA",
            "session_id": "X3lUlvLELLYxeTx4yOVu6UDpasGEVO0Jbu+QFnm0cKQ",
            "unicode": "é ☃ \u2028",
            "nested": {"big": 9007199254740991, "list": [1, "two", {"three": None}]},
        }
        start = await self.sync(self.bob_token)
        response = await self.client.put(
            f"{V3}/rooms/{quote(self.room_id)}/send/m.room.encrypted/enc1",
            content,
            self.alice_token,
        )
        self.assertEqual(response.code, 200, response.json)
        event_id = response.json["event_id"]
        synced = await self.sync(self.bob_token, start["next_batch"])
        timeline = synced["rooms"]["join"][self.room_id]["timeline"]["events"]
        [event] = [e for e in timeline if e["event_id"] == event_id]
        self.assertEqual(event["type"], "m.room.encrypted")
        self.assertEqual(event["content"], content)
        messages = await self.client.get(
            f"{V3}/rooms/{quote(self.room_id)}/messages?dir=b&limit=5", self.bob_token
        )
        [paged] = [e for e in messages.json["chunk"] if e["event_id"] == event_id]
        self.assertEqual(paged["content"], content)
