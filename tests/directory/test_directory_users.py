"""POST /user_directory/search and GET /rooms/{roomId}/aliases."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from homeserver.directory.user_directory import search_terms
from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.directory.directory_testing import DirectoryTestCase


class UserDirectoryTests(DirectoryTestCase):
    users = ("alice", "bob", "carol", "dave")

    async def search_users(self, term: Any, token: str | None = None, **extra: Any) -> Any:
        body = {"search_term": term, **extra}
        return await self.client.post(
            f"{V3}/user_directory/search", body, token or self.alice_token
        )

    async def found(self, term: str, token: str | None = None) -> list[str]:
        response = await self.search_users(term, token)
        assert response.code == 200, response.json
        return [r["user_id"] for r in response.json["results"]]

    async def set_name(self, token: str, user_id: str, name: str) -> None:
        response = await self.client.put(
            f"{V3}/profile/{quote(user_id)}/displayname", {"displayname": name}, token
        )
        assert response.code == 200, response.json

    @async_test
    async def test_users_sharing_a_private_room_are_found(self) -> None:
        room_id = await self.create()
        self.assertEqual(await self.found("bob"), [])
        await self.invite(room_id, self.bob)
        # Invited is not sharing the room yet.
        self.assertEqual(await self.found("bob"), [])
        await self.join(room_id, self.bob_token)
        self.assertEqual(await self.found("bob"), [self.bob])
        self.assertEqual(await self.found("alice", self.bob_token), [self.alice])
        # Carol shares nothing with either.
        self.assertEqual(await self.found("bob", self.carol_token), [])
        await self.client.post(self.room(room_id, "leave"), {}, self.bob_token)
        self.assertEqual(await self.found("bob"), [])

    @async_test
    async def test_members_of_public_and_world_readable_rooms_are_found_by_anyone(self) -> None:
        public = await self.create(token=self.bob_token, preset="public_chat")
        self.assertEqual(await self.found("bob", self.carol_token), [self.bob])
        # A join rule change counts at once.
        await self.put_state(
            public, "m.room.join_rules", {"join_rule": "invite"}, token=self.bob_token
        )
        self.assertEqual(await self.found("bob", self.carol_token), [])
        await self.put_state(
            public,
            "m.room.history_visibility",
            {"history_visibility": "world_readable"},
            token=self.bob_token,
        )
        self.assertEqual(await self.found("bob", self.carol_token), [self.bob])

    @async_test
    async def test_display_names_and_avatars_are_searched_and_returned(self) -> None:
        await self.create(preset="public_chat", invite=[])
        room_id = await self.create(preset="public_chat")
        await self.join(room_id, self.bob_token)
        await self.set_name(self.bob_token, self.bob, "Robert Ünderwood")
        avatar = await self.client.put(
            f"{V3}/profile/{quote(self.bob)}/avatar_url",
            {"avatar_url": "mxc://test.local/bob"},
            self.bob_token,
        )
        self.assertEqual(avatar.code, 200)
        response = await self.search_users("ünder")
        self.assertEqual(
            response.json,
            {
                "results": [
                    {
                        "user_id": self.bob,
                        "display_name": "Robert Ünderwood",
                        "avatar_url": "mxc://test.local/bob",
                    }
                ],
                "limited": False,
            },
        )
        self.assertEqual(await self.found("ROBERT ÜND"), [self.bob])
        self.assertEqual(await self.found("@bob:test"), [self.bob])
        self.assertEqual(await self.found("robert smith"), [])
        # Words must start the same way: no infix matches.
        self.assertEqual(await self.found("obert"), [])
        # A renamed user is no longer found under the old name.
        await self.set_name(self.bob_token, self.bob, "Bobby")
        self.assertEqual(await self.found("robert"), [])
        self.assertEqual(await self.found("bobb"), [self.bob])

    @async_test
    async def test_ranking_limit_and_limited(self) -> None:
        room_id = await self.create(preset="public_chat")
        for name in ("bob", "carol", "dave"):
            await self.join(room_id, getattr(self, f"{name}_token"))
        await self.set_name(self.carol_token, self.carol, "Da Carol")
        await self.set_name(self.dave_token, self.dave, "Da")
        response = await self.search_users("da")
        # Dave's whole name is "da"; Carol's name merely starts with it.
        self.assertEqual([r["user_id"] for r in response.json["results"]], [self.dave, self.carol])
        limited = await self.search_users("da", limit=1)
        self.assertEqual(len(limited.json["results"]), 1)
        self.assertIs(limited.json["limited"], True)
        for blank in ("   ", "\x00"):
            empty = await self.search_users(blank)
            self.assertEqual(empty.json, {"results": [], "limited": False})
        literal = await self.search_users("%")
        self.assertEqual(literal.json["results"], [])

    @async_test
    async def test_bad_requests(self) -> None:
        for body in (
            {},
            {"search_term": 5},
            {"search_term": "a", "limit": "5"},
            {"search_term": "a", "limit": -1},
        ):
            response = await self.client.post(f"{V3}/user_directory/search", body, self.alice_token)
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_BAD_JSON"), body)
        anonymous = await self.client.post(f"{V3}/user_directory/search", {"search_term": "a"})
        self.assertEqual(anonymous.code, 401)

    @async_test
    async def test_directory_is_rebuilt_when_stale_at_start(self) -> None:
        room_id = await self.create(preset="public_chat")
        await self.join(room_id, self.bob_token)
        await self.set_name(self.bob_token, self.bob, "Builder")
        # As if the server had stopped before the directory caught up with these changes.
        await self.server.hs.directories.user_directory.refresher.flush()
        await self.server.hs.directories.room_stats.flush()

        def wipe(txn: Any) -> None:
            for table in ("user_directory", "user_directory_terms", "room_stats"):
                txn.execute(f"DELETE FROM {table}")

        await self.server.hs.db.run("wipe", wipe)
        await self.server.restart()
        self.client = self.server.client
        self.assertEqual(await self.found("builder", self.carol_token), [self.bob])


def test_search_terms() -> None:
    terms = search_terms("@jo.smith:example.org", "Dr. Jo Smith-Jones")
    assert {"@jo.smith:example.org", "jo.smith", "jo", "smith"} <= terms
    assert {"dr. jo smith-jones", "dr.", "dr", "smith-jones", "jones"} <= terms


class LocalAliasesTests(DirectoryTestCase):
    users = ("alice", "bob")

    async def aliases(self, room_id: str, token: str) -> Any:
        return await self.client.get(self.room(room_id, "aliases"), token)

    @async_test
    async def test_members_see_local_aliases(self) -> None:
        room_id = await self.create(preset="public_chat", room_alias_name="first")
        extra = await self.client.put(
            f"{V3}/directory/room/{quote('#second:test.local')}",
            {"room_id": room_id},
            self.alice_token,
        )
        self.assertEqual(extra.code, 200)
        response = await self.aliases(room_id, self.alice_token)
        self.assertEqual(
            (response.code, response.json),
            (200, {"aliases": ["#first:test.local", "#second:test.local"]}),
        )
        outsider = await self.aliases(room_id, self.bob_token)
        self.assertEqual((outsider.code, outsider.json["errcode"]), (403, "M_FORBIDDEN"))
        await self.join(room_id, self.bob_token)
        self.assertEqual((await self.aliases(room_id, self.bob_token)).code, 200)
        empty = await self.create()
        self.assertEqual((await self.aliases(empty, self.alice_token)).json, {"aliases": []})

    @async_test
    async def test_world_readable_rooms_show_aliases_to_anyone(self) -> None:
        room_id = await self.create(room_alias_name="open")
        await self.put_state(
            room_id, "m.room.history_visibility", {"history_visibility": "world_readable"}
        )
        response = await self.aliases(room_id, self.bob_token)
        self.assertEqual(response.json, {"aliases": ["#open:test.local"]})
        unknown = await self.aliases("!nowhere:test.local", self.bob_token)
        self.assertEqual((unknown.code, unknown.json["errcode"]), (403, "M_FORBIDDEN"))
        nul = await self.aliases("!a\x00b:test.local", self.bob_token)
        self.assertEqual((nul.code, nul.json["errcode"]), (400, "M_INVALID_PARAM"))
        anonymous = await self.client.get(self.room(room_id, "aliases"))
        self.assertEqual(anonymous.code, 401)
