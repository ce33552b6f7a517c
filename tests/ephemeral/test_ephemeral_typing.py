"""Typing notifications: PUT /rooms/{roomId}/typing/{userId} and m.typing in /sync."""

from __future__ import annotations

from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.ephemeral.ephemeral_testing import EphemeralTestCase, ephemeral_of, error_of, sleep


class TypingTests(EphemeralTestCase):
    users = ("alice", "bob", "carol")

    async def type(self, room_id: str, token: str, user: str, body: dict) -> tuple[int, str]:
        response = await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/typing/{quote(user)}", body, token
        )
        return error_of(response) if response.code != 200 else (200, "")

    def typers(self, sync: dict, room_id: str) -> list[str] | None:
        events = ephemeral_of(sync, room_id, "m.typing")
        self.assertLessEqual(len(events), 1)
        return events[0]["content"]["user_ids"] if events else None

    @async_test
    async def test_typing_is_seen_by_the_other_member_and_expires_by_itself(self) -> None:
        room_id = await self.shared_room()
        first = await self.sync(self.bob_token)
        self.assertIsNone(self.typers(first, room_id))
        self.assertEqual(
            await self.type(
                room_id, self.alice_token, self.alice, {"typing": True, "timeout": 300}
            ),
            (200, ""),
        )
        second = await self.sync(self.bob_token, first["next_batch"])
        self.assertEqual(self.typers(second, room_id), [self.alice])
        # Nothing changed since: no new m.typing.
        third = await self.sync(self.bob_token, second["next_batch"])
        self.assertIsNone(self.typers(third, room_id))
        await sleep(0.5)
        expired = await self.sync(self.bob_token, second["next_batch"])
        self.assertEqual(self.typers(expired, room_id), [])

    @async_test
    async def test_long_poll_is_woken_by_typing_and_stopping_is_immediate(self) -> None:
        room_id = await self.shared_room()
        token = (await self.sync(self.bob_token))["next_batch"]
        woken = await self.woken_by(
            self.bob_token,
            token,
            lambda: self.type(room_id, self.alice_token, self.alice, {"typing": True}),
            lambda sync: self.typers(sync, room_id) is not None,
        )
        self.assertEqual(self.typers(woken, room_id), [self.alice])
        stopped = await self.woken_by(
            self.bob_token,
            woken["next_batch"],
            lambda: self.type(room_id, self.alice_token, self.alice, {"typing": False}),
            lambda sync: self.typers(sync, room_id) is not None,
        )
        self.assertEqual(self.typers(stopped, room_id), [])

    @async_test
    async def test_initial_sync_lists_who_is_typing_and_the_filter_can_hide_it(self) -> None:
        room_id = await self.shared_room()
        await self.type(room_id, self.alice_token, self.alice, {"typing": True, "timeout": 30_000})
        await self.type(room_id, self.bob_token, self.bob, {"typing": True})
        initial = await self.sync(self.bob_token)
        self.assertEqual(self.typers(initial, room_id), sorted([self.alice, self.bob]))
        hidden = await self.sync(
            self.bob_token, filter={"room": {"ephemeral": {"not_types": ["m.typing"]}}}
        )
        self.assertIsNone(self.typers(hidden, room_id))

    @async_test
    async def test_leaving_the_room_stops_typing(self) -> None:
        room_id = await self.shared_room()
        await self.type(room_id, self.bob_token, self.bob, {"typing": True, "timeout": 30_000})
        token = (await self.sync(self.alice_token))["next_batch"]
        response = await self.client.post(f"{V3}/rooms/{quote(room_id)}/leave", {}, self.bob_token)
        self.assertEqual(response.code, 200)
        after = await self.sync(self.alice_token, token)
        self.assertEqual(self.typers(after, room_id), [])

    @async_test
    async def test_refusals(self) -> None:
        room_id = await self.shared_room()
        typing = {"typing": True, "timeout": 1000}
        # For yourself only, and only as a member.
        self.assertEqual(
            await self.type(room_id, self.alice_token, self.bob, typing), (403, "M_FORBIDDEN")
        )
        self.assertEqual(
            await self.type(room_id, self.carol_token, self.carol, typing), (403, "M_FORBIDDEN")
        )
        missing = "!nowhere:test.local"
        self.assertEqual(
            await self.type(missing, self.alice_token, self.alice, typing), (403, "M_FORBIDDEN")
        )
        for body in (
            {},
            {"typing": "yes"},
            {"typing": True, "timeout": -1},
            {"typing": True, "timeout": 1.5},
        ):
            self.assertEqual(
                await self.type(room_id, self.alice_token, self.alice, body),
                (400, "M_BAD_JSON"),
                body,
            )
        self.assertEqual(
            await self.type("not-a-room", self.alice_token, self.alice, typing),
            (400, "M_INVALID_PARAM"),
        )
        # None of that made anyone type.
        self.assertIsNone(self.typers(await self.sync(self.bob_token), room_id))

    @async_test
    async def test_tokens_from_before_a_restart_still_see_new_typing(self) -> None:
        room_id = await self.shared_room()
        # Move the typing stream along, so the old token holds a position above zero.
        for typing in (True, False, True, False):
            await self.type(
                room_id, self.alice_token, self.alice, {"typing": typing, "timeout": 30_000}
            )
        token = (await self.sync(self.bob_token))["next_batch"]
        await self.restart()
        await self.type(room_id, self.alice_token, self.alice, {"typing": True, "timeout": 30_000})
        after = await self.sync(self.bob_token, token)
        self.assertEqual(self.typers(after, room_id), [self.alice])
