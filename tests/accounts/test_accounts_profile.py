"""/profile/{userId}[/{keyName}], and the member events a profile change sends."""

from __future__ import annotations

from urllib.parse import quote

from tests.accounts.accounts_testing import V3, AccountsTestCase
from tests.asyncutil import async_test


class ProfileTests(AccountsTestCase):
    async def _start(self) -> None:
        await super()._start()
        self.alice, self.token = await self.client.register("alice")
        self.bob, self.bob_token = await self.client.register("bob")

    def path(self, user_id: str, key: str | None = None) -> str:
        base = f"{V3}/profile/{quote(user_id)}"
        return f"{base}/{key}" if key else base

    async def put(self, key: str, value: object, token: str | None = None, user: str = ""):
        return await self.client.put(
            self.path(user or self.alice, key), {key: value}, token or self.token
        )

    @async_test
    async def test_new_account_profile(self) -> None:
        response = await self.client.get(self.path(self.alice))
        self.assertEqual((response.code, response.json), (200, {"displayname": "alice"}))
        avatar = await self.client.get(self.path(self.alice, "avatar_url"))
        self.assertEqual(avatar.code, 404)
        self.assertEqual(avatar.json["errcode"], "M_NOT_FOUND")

    @async_test
    async def test_unknown_and_invalid_users(self) -> None:
        for user_id in ("@nobody:test.local", "@alice:elsewhere.example"):
            response = await self.client.get(self.path(user_id))
            self.assertEqual(response.code, 404, user_id)
            self.assertEqual(response.json["errcode"], "M_NOT_FOUND")
        invalid = await self.client.get(self.path("not-a-user"))
        self.assertEqual(invalid.code, 400)

    @async_test
    async def test_set_and_get_fields(self) -> None:
        self.assertEqual((await self.put("displayname", "Alice Liddell")).code, 200)
        avatar = "mxc://test.local/abcdef"
        self.assertEqual((await self.put("avatar_url", avatar)).code, 200)
        name = await self.client.get(self.path(self.alice, "displayname"), self.bob_token)
        self.assertEqual(name.json, {"displayname": "Alice Liddell"})
        profile = await self.client.get(self.path(self.alice))
        self.assertEqual(profile.json, {"displayname": "Alice Liddell", "avatar_url": avatar})
        # An empty string removes the field, as clients do to drop an avatar.
        self.assertEqual((await self.put("avatar_url", "")).code, 200)
        cleared = await self.client.get(self.path(self.alice))
        self.assertEqual(cleared.json, {"displayname": "Alice Liddell"})

    @async_test
    async def test_delete_field(self) -> None:
        response = await self.client.request(
            "DELETE", self.path(self.alice, "displayname"), token=self.token
        )
        self.assertEqual((response.code, response.json), (200, {}))
        name = await self.client.get(self.path(self.alice, "displayname"))
        self.assertEqual(name.code, 404)

    @async_test
    async def test_only_your_own_profile(self) -> None:
        response = await self.put("displayname", "Mallory", self.bob_token)
        self.assertEqual(response.code, 403)
        self.assertEqual(response.json["errcode"], "M_FORBIDDEN")
        no_token = await self.client.put(self.path(self.alice, "displayname"), {"displayname": "x"})
        self.assertEqual(no_token.code, 401)

    @async_test
    async def test_invalid_values(self) -> None:
        cases = [
            ("displayname", 5, "M_BAD_JSON"),
            ("displayname", None, "M_BAD_JSON"),
            ("displayname", "x" * 257, "M_TOO_LARGE"),
            ("avatar_url", "https://example.org/a.png", "M_BAD_JSON"),
            ("avatar_url", {"url": "mxc://a/b"}, "M_BAD_JSON"),
        ]
        for key, value, errcode in cases:
            response = await self.put(key, value)
            self.assertEqual(response.code, 400, (key, value))
            self.assertEqual(response.json["errcode"], errcode, (key, value))
        missing = await self.client.put(self.path(self.alice, "displayname"), {}, self.token)
        self.assertEqual(missing.json["errcode"], "M_MISSING_PARAM")
        bad_key = await self.client.put(self.path(self.alice, "Bad Key"), {}, self.token)
        self.assertEqual(bad_key.json["errcode"], "M_INVALID_PARAM")
        unsupported = await self.put("m.tz", "Europe/London")
        self.assertEqual(unsupported.code, 403)

    @async_test
    async def test_change_updates_member_events_in_joined_rooms(self) -> None:
        created = await self.client.post(f"{V3}/createRoom", {"preset": "public_chat"}, self.token)
        room_id = created.json["room_id"]
        await self.client.post(f"{V3}/rooms/{quote(room_id)}/join", {}, self.bob_token)
        await self.put("displayname", "Queen Alice")
        await self.put("avatar_url", "mxc://test.local/crown")
        member = await self.client.get(
            f"{V3}/rooms/{quote(room_id)}/state/m.room.member/{quote(self.alice)}", self.bob_token
        )
        self.assertEqual(member.code, 200, member.json)
        self.assertEqual(
            member.json,
            {
                "membership": "join",
                "displayname": "Queen Alice",
                "avatar_url": "mxc://test.local/crown",
            },
        )
        # Setting the same value again sends nothing new.
        messages = f"{V3}/rooms/{quote(room_id)}/messages?dir=b&limit=50"
        before = await self.client.get(messages, self.bob_token)
        await self.put("displayname", "Queen Alice")
        after = await self.client.get(messages, self.bob_token)
        self.assertEqual(len(before.json["chunk"]), len(after.json["chunk"]))
