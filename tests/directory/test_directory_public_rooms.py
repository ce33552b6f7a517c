"""The published room directory: /publicRooms, /directory/list/room, publication rules."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from homeserver.config import ConfigError
from homeserver.directory.publication import PublicationPolicy
from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.directory.directory_testing import DirectoryTestCase


class PublicRoomsTests(DirectoryTestCase):
    users = ("alice", "bob", "carol")

    async def listing(self, token: str | None = None, **params: Any) -> Any:
        query = "&".join(f"{k}={quote(str(v))}" for k, v in params.items())
        return await self.client.get(f"{V3}/publicRooms?{query}", token or self.alice_token)

    async def search(self, body: dict[str, Any], token: str | None = None) -> Any:
        return await self.client.post(f"{V3}/publicRooms", body, token or self.alice_token)

    def visibility_path(self, room_id: str) -> str:
        return f"{V3}/directory/list/room/{quote(room_id)}"

    @async_test
    async def test_created_public_room_is_listed_with_its_summary(self) -> None:
        room_id = await self.create(
            visibility="public",
            name="Town hall",
            topic="Everything",
            room_alias_name="townhall",
            initial_state=[
                {"type": "m.room.guest_access", "content": {"guest_access": "can_join"}},
                {
                    "type": "m.room.history_visibility",
                    "content": {"history_visibility": "world_readable"},
                },
                {"type": "m.room.avatar", "content": {"url": "mxc://test.local/abc"}},
            ],
        )
        await self.create(name="Unlisted", preset="public_chat")
        await self.join(room_id, self.bob_token)
        response = await self.listing()
        self.assertEqual(response.code, 200)
        self.assertEqual(
            response.json,
            {
                "chunk": [
                    {
                        "room_id": room_id,
                        "name": "Town hall",
                        "topic": "Everything",
                        "canonical_alias": "#townhall:test.local",
                        "avatar_url": "mxc://test.local/abc",
                        "num_joined_members": 2,
                        "world_readable": True,
                        "guest_can_join": True,
                        "join_rule": "public",
                    }
                ],
                "total_room_count_estimate": 1,
            },
        )
        visibility = await self.client.get(self.visibility_path(room_id))
        self.assertEqual((visibility.code, visibility.json), (200, {"visibility": "public"}))

    @async_test
    async def test_publish_and_unpublish(self) -> None:
        room_id = await self.create(preset="public_chat", name="Later")
        path = self.visibility_path(room_id)
        self.assertEqual((await self.client.get(path)).json, {"visibility": "private"})
        published = await self.client.put(path, {"visibility": "public"}, self.alice_token)
        self.assertEqual((published.code, published.json), (200, {}))
        self.assertEqual([r["room_id"] for r in (await self.listing()).json["chunk"]], [room_id])
        # Changes show at once: a rename is in the next listing.
        await self.put_state(room_id, "m.room.name", {"name": "Renamed"})
        self.assertEqual((await self.listing()).json["chunk"][0]["name"], "Renamed")
        unpublished = await self.client.put(path, {"visibility": "private"}, self.alice_token)
        self.assertEqual(unpublished.code, 200)
        self.assertEqual((await self.listing()).json["chunk"], [])
        # The body's visibility defaults to public.
        self.assertEqual((await self.client.put(path, {}, self.alice_token)).code, 200)
        self.assertEqual((await self.client.get(path)).json, {"visibility": "public"})

    @async_test
    async def test_publishing_needs_permission(self) -> None:
        room_id = await self.create(preset="public_chat")
        path = self.visibility_path(room_id)
        outsider = await self.client.put(path, {"visibility": "public"}, self.bob_token)
        self.assertEqual((outsider.code, outsider.json["errcode"]), (403, "M_FORBIDDEN"))
        await self.join(room_id, self.bob_token)
        member = await self.client.put(path, {"visibility": "public"}, self.bob_token)
        self.assertEqual((member.code, member.json["errcode"]), (403, "M_FORBIDDEN"))
        # A moderator may change the listing, but publishing is for creators and room admins.
        await self.put_state(room_id, "m.room.power_levels", await self._levels(room_id, bob=50))
        moderator = await self.client.put(path, {"visibility": "public"}, self.bob_token)
        self.assertEqual((moderator.code, moderator.json["errcode"]), (403, "M_FORBIDDEN"))
        self.assertEqual((await self.client.get(path)).json, {"visibility": "private"})
        await self.put_state(room_id, "m.room.power_levels", await self._levels(room_id, bob=100))
        admin = await self.client.put(path, {"visibility": "public"}, self.bob_token)
        self.assertEqual(admin.code, 200)
        await self.put_state(room_id, "m.room.power_levels", await self._levels(room_id, bob=50))
        unlist = await self.client.put(path, {"visibility": "private"}, self.bob_token)
        self.assertEqual(unlist.code, 200)

    async def _levels(self, room_id: str, **named: int) -> dict[str, Any]:
        levels = (await self.get_state(room_id, "m.room.power_levels")).json
        users = {getattr(self, name): level for name, level in named.items()}
        return {**levels, "users": {**levels["users"], **users}}

    @async_test
    async def test_visibility_of_unknown_rooms_and_bad_bodies(self) -> None:
        for room_id in ("!nowhere:test.local", "nowhere"):
            unknown = await self.client.get(self.visibility_path(room_id))
            self.assertEqual((unknown.code, unknown.json["errcode"]), (404, "M_NOT_FOUND"))
        nul = await self.client.get(self.visibility_path("!a\x00b:test.local"))
        self.assertEqual((nul.code, nul.json["errcode"]), (400, "M_INVALID_PARAM"))
        put_unknown = await self.client.put(
            self.visibility_path("!nowhere:test.local"), {}, self.alice_token
        )
        self.assertEqual((put_unknown.code, put_unknown.json["errcode"]), (404, "M_NOT_FOUND"))
        room_id = await self.create()
        bad = await self.client.put(
            self.visibility_path(room_id), {"visibility": "hidden"}, self.alice_token
        )
        self.assertEqual((bad.code, bad.json["errcode"]), (400, "M_BAD_JSON"))
        anonymous = await self.client.put(self.visibility_path(room_id), {})
        self.assertEqual((anonymous.code, anonymous.json["errcode"]), (401, "M_MISSING_TOKEN"))

    @async_test
    async def test_invite_only_rooms_are_not_listed_even_when_published(self) -> None:
        room_id = await self.create(visibility="public", preset="private_chat")
        self.assertEqual(
            (await self.client.get(self.visibility_path(room_id))).json["visibility"], "public"
        )
        self.assertEqual((await self.listing()).json["chunk"], [])

    @async_test
    async def test_pagination_largest_first_both_ways(self) -> None:
        rooms = [await self.create(visibility="public", name=f"room {i}") for i in range(3)]
        # Members: rooms[2] has 3, rooms[0] has 2, rooms[1] has 1.
        for token in (self.bob_token, self.carol_token):
            await self.join(rooms[2], token)
        await self.join(rooms[0], self.bob_token)
        order = [rooms[2], rooms[0], rooms[1]]
        first = await self.listing(limit=1)
        self.assertEqual([r["room_id"] for r in first.json["chunk"]], order[:1])
        self.assertNotIn("prev_batch", first.json)
        self.assertEqual(first.json["total_room_count_estimate"], 3)
        second = await self.listing(limit=1, since=first.json["next_batch"])
        self.assertEqual([r["room_id"] for r in second.json["chunk"]], order[1:2])
        third = await self.listing(limit=5, since=second.json["next_batch"])
        self.assertEqual([r["room_id"] for r in third.json["chunk"]], order[2:])
        self.assertNotIn("next_batch", third.json)
        back = await self.listing(limit=1, since=third.json["prev_batch"])
        self.assertEqual([r["room_id"] for r in back.json["chunk"]], order[1:2])
        back_again = await self.listing(limit=5, since=back.json["prev_batch"])
        self.assertEqual([r["room_id"] for r in back_again.json["chunk"]], order[:1])
        self.assertNotIn("prev_batch", back_again.json)
        self.assertIn("next_batch", back_again.json)
        posted = await self.search({"limit": 2, "since": first.json["next_batch"]})
        self.assertEqual([r["room_id"] for r in posted.json["chunk"]], order[1:])

    @async_test
    async def test_filters(self) -> None:
        lobby = await self.create(visibility="public", name="Lobby", topic="Say hello")
        await self.create(visibility="public", name="Kitchen", room_alias_name="cooking")
        space = await self.create_space(visibility="public", name="Guild")
        by_name = await self.search({"filter": {"generic_search_term": "LOBB"}})
        self.assertEqual([r["room_id"] for r in by_name.json["chunk"]], [lobby])
        self.assertEqual(by_name.json["total_room_count_estimate"], 1)
        by_topic = await self.search({"filter": {"generic_search_term": "hello"}})
        self.assertEqual([r["room_id"] for r in by_topic.json["chunk"]], [lobby])
        by_alias = await self.search({"filter": {"generic_search_term": "cook"}})
        self.assertEqual([r["name"] for r in by_alias.json["chunk"]], ["Kitchen"])
        literal = await self.search({"filter": {"generic_search_term": "%"}})
        self.assertEqual(literal.json["chunk"], [])
        spaces = await self.search({"filter": {"room_types": ["m.space"]}})
        self.assertEqual([r["room_id"] for r in spaces.json["chunk"]], [space])
        self.assertEqual(spaces.json["chunk"][0]["room_type"], "m.space")
        plain = await self.search({"filter": {"room_types": [None]}})
        self.assertEqual(len(plain.json["chunk"]), 2)
        both = await self.search({"filter": {"room_types": [None, "m.space"]}})
        self.assertEqual(len(both.json["chunk"]), 3)
        network = await self.search({"third_party_instance_id": "irc"})
        self.assertEqual(network.json["chunk"], [])
        everything = await self.search({"include_all_networks": True})
        self.assertEqual(len(everything.json["chunk"]), 3)

    @async_test
    async def test_bad_requests(self) -> None:
        for body in (
            {"limit": "ten"},
            {"limit": -1},
            {"since": 5},
            {"filter": []},
            {"filter": {"generic_search_term": 1}},
            {"filter": {"room_types": "m.space"}},
            {"filter": {"room_types": [1]}},
            {"include_all_networks": "yes"},
        ):
            response = await self.search(body)
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_BAD_JSON"), body)
        for since in ("garbage", "n_1_!a\x00b:test.local", "n_x_!a:test.local"):
            bad_token = await self.listing(since=since)
            self.assertEqual((bad_token.code, bad_token.json["errcode"]), (400, "M_INVALID_PARAM"))
        nul = await self.search({"filter": {"generic_search_term": "a\x00b"}})
        self.assertEqual((nul.code, nul.json["chunk"]), (200, []))
        bad_limit = await self.listing(limit="x")
        self.assertEqual((bad_limit.code, bad_limit.json["errcode"]), (400, "M_INVALID_PARAM"))
        not_json = await self.client.request(
            "POST", f"{V3}/publicRooms", raw=b"{", token=self.alice_token
        )
        self.assertEqual((not_json.code, not_json.json["errcode"]), (400, "M_NOT_JSON"))

    @async_test
    async def test_server_parameter(self) -> None:
        own = await self.listing(server="test.local")
        self.assertEqual(own.code, 200)
        # Another server's directory is asked over federation: this one cannot be reached
        # (an address outside what the server may connect to, so no DNS is involved).
        remote = await self.listing(server="192.0.2.1")
        self.assertEqual((remote.code, remote.json["errcode"]), (404, "M_NOT_FOUND"))
        posted = await self.client.post(
            f"{V3}/publicRooms?server=192.0.2.1", {}, self.alice_token
        )
        self.assertEqual(posted.code, 404)
        invalid = await self.listing(server="not a server")
        self.assertEqual((invalid.code, invalid.json["errcode"]), (400, "M_INVALID_PARAM"))

    @async_test
    async def test_unauthenticated_access_is_off_by_default(self) -> None:
        response = await self.client.get(f"{V3}/publicRooms")
        self.assertEqual((response.code, response.json["errcode"]), (401, "M_MISSING_TOKEN"))
        posted = await self.client.post(f"{V3}/publicRooms", {})
        self.assertEqual(posted.code, 401)

    @async_test
    async def test_listing_survives_a_restart(self) -> None:
        room_id = await self.create(visibility="public", name="Persistent")
        await self.server.restart()
        self.client = self.server.client
        response = await self.listing()
        self.assertEqual([r["room_id"] for r in response.json["chunk"]], [room_id])


class OpenDirectoryTests(DirectoryTestCase):
    config = {"allow_public_rooms_without_auth": True}

    @async_test
    async def test_unauthenticated_listing_when_allowed(self) -> None:
        room_id = await self.create(visibility="public")
        response = await self.client.get(f"{V3}/publicRooms")
        self.assertEqual(response.code, 200)
        self.assertEqual([r["room_id"] for r in response.json["chunk"]], [room_id])


class PublicationRulesTests(DirectoryTestCase):
    config = {
        "room_list_publication_rules": [
            {"alias": "#secret*", "action": "deny"},
            {"user_id": "@alice:*", "action": "allow"},
        ]
    }

    @async_test
    async def test_configured_rules_decide(self) -> None:
        refused = await self.client.post(
            f"{V3}/createRoom", {"visibility": "public", "name": "Bob's"}, self.bob_token
        )
        self.assertEqual((refused.code, refused.json["errcode"]), (403, "M_FORBIDDEN"))
        # Refused before the room was made.
        joined = await self.client.get(f"{V3}/joined_rooms", self.bob_token)
        self.assertEqual(joined.json["joined_rooms"], [])
        secret = await self.client.post(
            f"{V3}/createRoom",
            {"visibility": "public", "room_alias_name": "secret-plans"},
            self.alice_token,
        )
        self.assertEqual(secret.code, 403)
        allowed = await self.create(visibility="public")
        listed = await self.client.get(f"{V3}/publicRooms", self.alice_token)
        self.assertEqual([r["room_id"] for r in listed.json["chunk"]], [allowed])
        # Bob created his own room but no rule lets him publish it.
        own = await self.create(token=self.bob_token, preset="public_chat")
        put = await self.client.put(
            f"{V3}/directory/list/room/{quote(own)}", {"visibility": "public"}, self.bob_token
        )
        self.assertEqual((put.code, put.json["errcode"]), (403, "M_FORBIDDEN"))


class NobodyPublishesTests(DirectoryTestCase):
    config = {"room_list_publication_rules": []}

    @async_test
    async def test_empty_rules_mean_nobody(self) -> None:
        refused = await self.client.post(
            f"{V3}/createRoom", {"visibility": "public"}, self.alice_token
        )
        self.assertEqual((refused.code, refused.json["errcode"]), (403, "M_FORBIDDEN"))
        room_id = await self.create(preset="public_chat")
        put = await self.client.put(
            f"{V3}/directory/list/room/{quote(room_id)}", {"visibility": "public"}, self.alice_token
        )
        self.assertEqual(put.code, 403)


def test_rule_matching() -> None:
    policy = PublicationPolicy(
        [
            {"user_id": "@bad?:example.com", "action": "deny"},
            {"room_id": "!special:*", "alias": "#ok*", "action": "allow"},
            {"user_id": "*:example.com", "room_id": "!special:*", "action": "deny"},
            {"user_id": "*:EXAMPLE.com", "action": "allow"},
        ]
    )
    assert not policy.rules_allow("@bad1:example.com", "!r:example.com", [])
    assert policy.rules_allow("@bad12:example.com", "!r:example.com", [])
    assert policy.rules_allow("@a:example.com", "!special:x", ["#nope:x", "#ok:x"])
    assert not policy.rules_allow("@a:example.com", "!special:x", ["#nope:x"])
    # A room being created has no ID yet: rules naming room IDs do not apply to it.
    assert policy.rules_allow("@a:example.com", None, [])
    assert not policy.rules_allow("@a:other.org", "!r:example.com", [])


def test_bad_rules_are_config_errors() -> None:
    for rule in (
        {"action": "maybe"},
        {"action": "allow", "user_id": 5},
        {"action": "allow", "x": 1},
    ):
        with pytest.raises(ConfigError):
            PublicationPolicy([rule])
