"""Presence: GET/PUT /presence/{userId}/status, m.presence in /sync, set_presence, the idle
and offline timers, persistence across restarts, and `presence.enabled: false`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from twisted.internet import defer

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.ephemeral.ephemeral_testing import EphemeralTestCase, error_of, eventually


def presence_in(sync: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """sender -> content of the m.presence events in a /sync response."""
    events = sync["presence"]["events"]
    for event in events:
        assert event["type"] == "m.presence", event
    return {event["sender"]: event["content"] for event in events}


class PresenceTestCase(EphemeralTestCase):
    users = ("alice", "bob", "carol")

    async def put_presence(self, user: str, token: str, body: Any) -> tuple[int, str]:
        response = await self.client.put(f"{V3}/presence/{quote(user)}/status", body, token)
        if response.code == 200:
            self.assertEqual(response.json, {})
            return 200, ""
        return error_of(response)

    async def get_presence(self, user: str, token: str) -> dict[str, Any]:
        response = await self.client.get(f"{V3}/presence/{quote(user)}/status", token)
        self.assertEqual(response.code, 200, response.json)
        return response.json


class PresenceTests(PresenceTestCase):
    @async_test
    async def test_set_and_get(self) -> None:
        before = await self.get_presence(self.alice, self.alice_token)
        self.assertEqual(before, {"presence": "offline", "currently_active": False})
        await self.shared_room()
        body = {"presence": "unavailable", "status_msg": "in a meeting"}
        self.assertEqual(await self.put_presence(self.alice, self.alice_token, body), (200, ""))
        for token in (self.alice_token, self.bob_token):
            seen = await self.get_presence(self.alice, token)
            self.assertEqual(seen["presence"], "unavailable")
            self.assertEqual(seen["status_msg"], "in a meeting")
            self.assertIs(seen["currently_active"], False)
            self.assertLess(seen["last_active_ago"], 10_000)
        await self.put_presence(self.alice, self.alice_token, {"presence": "online"})
        online = await self.get_presence(self.alice, self.bob_token)
        self.assertEqual(online["presence"], "online")
        self.assertIs(online["currently_active"], True)
        self.assertNotIn("status_msg", online)

    @async_test
    async def test_refusals(self) -> None:
        await self.shared_room()
        online = {"presence": "online"}
        self.assertEqual(
            await self.put_presence(self.carol, self.alice_token, online), (403, "M_FORBIDDEN")
        )
        for body in ({}, {"presence": "busy"}, {"presence": "online", "status_msg": 5}):
            self.assertEqual(
                await self.put_presence(self.alice, self.alice_token, body),
                (400, "M_BAD_JSON"),
                body,
            )
        # carol shares no room with alice.
        response = await self.client.get(
            f"{V3}/presence/{quote(self.alice)}/status", self.carol_token
        )
        self.assertEqual(error_of(response), (403, "M_FORBIDDEN"))
        response = await self.client.get(f"{V3}/presence/not-a-user/status", self.alice_token)
        self.assertEqual(error_of(response), (400, "M_INVALID_PARAM"))
        # Nothing above changed carol's presence or alice's message.
        carol = await self.get_presence(self.carol, self.carol_token)
        self.assertEqual(carol["presence"], "offline")
        self.assertNotIn("status_msg", await self.get_presence(self.alice, self.alice_token))

    @async_test
    async def test_presence_reaches_users_sharing_a_room_and_the_user(self) -> None:
        await self.shared_room()
        tokens = {}
        for name in ("alice", "bob", "carol"):
            token = getattr(self, f"{name}_token")
            tokens[name] = (await self.sync(token, set_presence="offline"))["next_batch"]
        body = {"presence": "online", "status_msg": "hello"}
        await self.put_presence(self.alice, self.alice_token, body)
        bob_sees = presence_in(
            await self.sync(self.bob_token, tokens["bob"], set_presence="offline")
        )
        self.assertEqual(bob_sees[self.alice]["presence"], "online")
        self.assertEqual(bob_sees[self.alice]["status_msg"], "hello")
        self.assertIs(bob_sees[self.alice]["currently_active"], True)
        self.assertIn(self.alice, presence_in(await self.sync(self.alice_token, tokens["alice"])))
        carol = await self.sync(self.carol_token, tokens["carol"], set_presence="offline")
        self.assertNotIn(self.alice, presence_in(carol))
        # Initial syncs have it too, unless the filter leaves it out.
        self.assertIn(
            self.alice, presence_in(await self.sync(self.bob_token, set_presence="offline"))
        )
        filtered = await self.sync(
            self.bob_token,
            set_presence="offline",
            filter={"presence": {"not_senders": [self.alice]}},
        )
        self.assertNotIn(self.alice, presence_in(filtered))

    @async_test
    async def test_joining_a_room_brings_the_members_presence(self) -> None:
        room_id = await self.create_room()
        await self.put_presence(self.alice, self.alice_token, {"presence": "online"})
        token = (await self.sync(self.bob_token, set_presence="offline"))["next_batch"]
        await self.join(room_id, self.bob_token)
        after = await self.sync(self.bob_token, token, set_presence="offline")
        self.assertEqual(presence_in(after)[self.alice]["presence"], "online")

    @async_test
    async def test_long_poll_is_woken_by_presence(self) -> None:
        await self.shared_room()
        token = (await self.sync(self.bob_token, set_presence="offline"))["next_batch"]
        body = {"presence": "unavailable"}
        woken = await self.woken_by(
            self.bob_token,
            token,
            lambda: self.put_presence(self.alice, self.alice_token, body),
            lambda sync: presence_in(sync).get(self.alice, {}).get("presence") == "unavailable",
            set_presence="offline",
        )
        self.assertEqual(presence_in(woken)[self.alice]["presence"], "unavailable")

    @async_test
    async def test_set_presence_on_sync(self) -> None:
        async def state() -> str:
            return (await self.get_presence(self.alice, self.alice_token))["presence"]

        # alice has done nothing yet (no events sent): offline until she syncs.
        await self.sync(self.alice_token, set_presence="offline")
        self.assertEqual(await state(), "offline")
        await self.sync(self.alice_token)
        self.assertEqual(await state(), "online")
        await self.sync(self.alice_token, set_presence="unavailable")
        self.assertEqual(await state(), "unavailable")
        # Back online when the client says so again...
        await self.sync(self.alice_token, set_presence="online")
        self.assertEqual(await state(), "online")
        # ...but a sync does not override what the user chose.
        await self.put_presence(self.alice, self.alice_token, {"presence": "unavailable"})
        await self.sync(self.alice_token)
        self.assertEqual(await state(), "unavailable")

    @async_test
    async def test_idle_then_activity_then_offline_after_the_last_sync(self) -> None:
        await self.shared_room()
        presence = self.server.hs.ephemeral.presence
        presence.idle_timeout = 0.3
        presence.sync_grace = 0.4

        async def state_is(expected: str) -> bool:
            return (await self.get_presence(self.alice, self.bob_token))["presence"] == expected

        token = (await self.sync(self.alice_token))["next_batch"]
        self.assertTrue(await state_is("online"))
        # A long-poll keeps alice connected; presence news for her must not end it early.
        no_presence = {"presence": {"types": []}, "room": {"rooms": []}}
        poll = defer.ensureDeferred(
            self.sync(self.alice_token, token, timeout=1500, filter=no_presence)
        )
        self.assertTrue(await eventually(lambda: state_is("unavailable"), timeout=1.0))
        # Sending a message is activity: online again.
        await self.send(await self.create_room(), self.alice_token)
        self.assertTrue(await eventually(lambda: state_is("online"), timeout=1.0))
        self.assertTrue(await eventually(lambda: state_is("unavailable"), timeout=1.0))
        self.assertFalse(poll.called)
        await poll
        self.assertTrue(await eventually(lambda: state_is("offline"), timeout=2.0))

    @async_test
    async def test_presence_survives_a_restart(self) -> None:
        await self.shared_room()
        body = {"presence": "unavailable", "status_msg": "back soon"}
        await self.put_presence(self.alice, self.alice_token, body)
        token = (await self.sync(self.bob_token, set_presence="offline"))["next_batch"]
        await self.restart()
        seen = await self.get_presence(self.alice, self.bob_token)
        self.assertEqual((seen["presence"], seen["status_msg"]), ("unavailable", "back soon"))
        self.assertIn(
            self.alice, presence_in(await self.sync(self.bob_token, set_presence="offline"))
        )
        # The stream continues above the old token.
        await self.put_presence(self.alice, self.alice_token, {"presence": "online"})
        after = await self.sync(self.bob_token, token, set_presence="offline")
        self.assertEqual(presence_in(after)[self.alice]["presence"], "online")


class DisabledPresenceTests(PresenceTestCase):
    server_config = {"presence": {"enabled": False}}

    @async_test
    async def test_nothing_is_tracked_or_sent(self) -> None:
        await self.shared_room()
        token = (await self.sync(self.bob_token))["next_batch"]
        body = {"presence": "online", "status_msg": "here"}
        self.assertEqual(await self.put_presence(self.alice, self.alice_token, body), (200, ""))
        await self.sync(self.alice_token, set_presence="online")
        self.assertEqual(
            await self.get_presence(self.alice, self.bob_token), {"presence": "offline"}
        )
        self.assertEqual(presence_in(await self.sync(self.bob_token, token)), {})
        self.assertEqual(presence_in(await self.sync(self.bob_token)), {})
        # Still private to those who share a room, and still only for yourself.
        response = await self.client.get(
            f"{V3}/presence/{quote(self.alice)}/status", self.carol_token
        )
        self.assertEqual(error_of(response), (403, "M_FORBIDDEN"))
        self.assertEqual(
            await self.put_presence(self.bob, self.alice_token, body), (403, "M_FORBIDDEN")
        )
