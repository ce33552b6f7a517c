"""Discovery between two servers: A's published room directory read by B's users, and the
hierarchy of a space on A read by B over federation."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from twisted.internet import defer

from federation.client import FederationError
from tests.asyncutil import async_test
from tests.federation.federation_testing import V3, FederatingServer, TwoServersCase

FED = "/_matrix/federation/v1"


class DirectoryCase(TwoServersCase):
    """TwoServersCase with config overrides for A."""

    a_config: dict[str, Any] = {}

    def setUp(self) -> defer.Deferred:
        self.a = FederatingServer(**self.a_config)
        self.b = FederatingServer()
        return defer.ensureDeferred(self._start())

    async def create_on_a(self, **body: Any) -> str:
        created = await self.a.client.post(f"{V3}/createRoom", body, self.alice_token)
        assert created.code == 200, created.json
        return created.json["room_id"]


class SharedDirectory(DirectoryCase):
    a_config = {"allow_public_rooms_over_federation": True}

    @async_test
    async def test_bob_lists_the_public_rooms_of_a(self) -> None:
        listed = await self.create_on_a(preset="public_chat", visibility="public", name="hall")
        await self.create_on_a(preset="public_chat", name="not published")
        space = await self.create_on_a(
            preset="public_chat",
            visibility="public",
            name="the space",
            creation_content={"type": "m.space"},
        )
        remote = quote(self.a.server_name)

        got = await self.b.client.get(f"{V3}/publicRooms?server={remote}", self.bob_token)
        self.assertEqual(got.code, 200, got.json)
        rooms = {room["room_id"]: room for room in got.json["chunk"]}
        self.assertEqual(set(rooms), {listed, space})
        self.assertEqual(rooms[listed]["name"], "hall")
        self.assertEqual(rooms[listed]["num_joined_members"], 1)
        self.assertEqual(got.json["total_room_count_estimate"], 2)

        # Paged: the token of A's first page leads to its second.
        first = await self.b.client.get(f"{V3}/publicRooms?server={remote}&limit=1", self.bob_token)
        self.assertEqual(len(first.json["chunk"]), 1)
        second = await self.b.client.get(
            f"{V3}/publicRooms?server={remote}&limit=1&since={quote(first.json['next_batch'])}",
            self.bob_token,
        )
        self.assertEqual(second.code, 200, second.json)
        self.assertEqual(
            {first.json["chunk"][0]["room_id"], second.json["chunk"][0]["room_id"]},
            {listed, space},
        )

        # Filters go to A with POST.
        searched = await self.b.client.post(
            f"{V3}/publicRooms?server={remote}",
            {"filter": {"generic_search_term": "hall"}},
            self.bob_token,
        )
        self.assertEqual(searched.code, 200, searched.json)
        self.assertEqual([r["room_id"] for r in searched.json["chunk"]], [listed])
        spaces = await self.b.client.post(
            f"{V3}/publicRooms?server={remote}",
            {"filter": {"room_types": ["m.space"]}},
            self.bob_token,
        )
        self.assertEqual([r["room_id"] for r in spaces.json["chunk"]], [space])

        # Asking another server needs an access token, even where our own list does not.
        anonymous = await self.b.client.get(f"{V3}/publicRooms?server={remote}")
        self.assertEqual((anonymous.code, anonymous.json["errcode"]), (401, "M_MISSING_TOKEN"))

    @async_test
    async def test_federation_endpoints_directly(self) -> None:
        listed = await self.create_on_a(preset="public_chat", visibility="public", name="hall")
        client = self.b.hs.federation_client
        got = await client.get_json(self.a.server_name, f"{FED}/publicRooms", {"limit": "0"})
        self.assertEqual([r["room_id"] for r in got["chunk"]], [listed])
        posted = await client.post_json(
            self.a.server_name, f"{FED}/publicRooms", {"filter": {"generic_search_term": "x"}}
        )
        self.assertEqual(posted["chunk"], [])
        with self.assertRaises(FederationError) as bad:
            await client.post_json(self.a.server_name, f"{FED}/publicRooms", {"limit": "ten"})
        self.assertEqual((bad.exception.code, bad.exception.errcode), (400, "M_BAD_JSON"))
        with self.assertRaises(FederationError) as unsigned:
            await client.get_json(self.a.server_name, f"{FED}/publicRooms", signed=False)
        self.assertEqual(unsigned.exception.code, 401)


class PrivateDirectory(DirectoryCase):
    """allow_public_rooms_over_federation is off by default."""

    @async_test
    async def test_directory_is_refused_to_other_servers(self) -> None:
        await self.create_on_a(preset="public_chat", visibility="public", name="hall")
        remote = quote(self.a.server_name)
        got = await self.b.client.get(f"{V3}/publicRooms?server={remote}", self.bob_token)
        self.assertEqual((got.code, got.json["errcode"]), (403, "M_FORBIDDEN"), got.json)
        posted = await self.b.client.post(f"{V3}/publicRooms?server={remote}", {}, self.bob_token)
        self.assertEqual((posted.code, posted.json["errcode"]), (403, "M_FORBIDDEN"))
        with self.assertRaises(FederationError) as refused:
            await self.b.hs.federation_client.get_json(self.a.server_name, f"{FED}/publicRooms")
        self.assertEqual(refused.exception.code, 403)
        # A's own users still see it.
        own = await self.a.client.get(f"{V3}/publicRooms", self.alice_token)
        self.assertEqual(len(own.json["chunk"]), 1)


class Hierarchy(DirectoryCase):
    async def add_child(self, space: str, child: str, **content: Any) -> None:
        response = await self.a.client.put(
            f"{V3}/rooms/{quote(space)}/state/m.space.child/{quote(child)}",
            {"via": [self.a.server_name], **content},
            self.alice_token,
        )
        assert response.code == 200, response.json

    async def hierarchy(self, room_id: str, **query: str) -> dict[str, Any]:
        return await self.b.hs.federation_client.get_json(
            self.a.server_name, f"{FED}/hierarchy/{quote(room_id, safe='')}", query
        )

    @async_test
    async def test_space_on_a_seen_from_b(self) -> None:
        space = await self.create_on_a(
            preset="public_chat", name="guild", creation_content={"type": "m.space"}
        )
        lobby = await self.create_on_a(preset="public_chat", name="lobby", topic="hello")
        secret = await self.create_on_a(preset="private_chat", name="secret")
        sub = await self.create_on_a(
            preset="public_chat", name="sub", creation_content={"type": "m.space"}
        )
        unknown = f"!elsewhere:{self.b.server_name}"
        await self.add_child(space, lobby, order="a", suggested=True)
        await self.add_child(space, secret, order="b")
        await self.add_child(space, sub, order="c")
        await self.add_child(space, unknown, order="d")
        await self.add_child(sub, lobby)

        found = await self.hierarchy(space)
        room = found["room"]
        self.assertEqual((room["room_id"], room["name"]), (space, "guild"))
        self.assertEqual(room["room_type"], "m.space")
        self.assertEqual(
            [e["state_key"] for e in room["children_state"]], [lobby, secret, sub, unknown]
        )
        for event in room["children_state"]:
            self.assertEqual(event["type"], "m.space.child")
            self.assertEqual(event["sender"], self.alice)
            self.assertIsInstance(event["origin_server_ts"], int)
        children = {c["room_id"]: c for c in found["children"]}
        # The room A is not in is left out; the one B's server could not join is named.
        self.assertEqual(set(children), {lobby, sub})
        self.assertEqual(found["inaccessible_children"], [secret])
        self.assertEqual(children[lobby]["topic"], "hello")
        self.assertEqual(children[lobby]["join_rule"], "public")
        self.assertEqual([e["state_key"] for e in children[sub]["children_state"]], [lobby])

        suggested = await self.hierarchy(space, suggested_only="true")
        self.assertEqual([e["state_key"] for e in suggested["room"]["children_state"]], [lobby])
        self.assertEqual([c["room_id"] for c in suggested["children"]], [lobby])

        # A room that is not a space answers with itself and nothing else.
        plain = await self.hierarchy(lobby)
        self.assertEqual(
            (plain["room"]["room_id"], plain["room"]["children_state"], plain["children"]),
            (lobby, [], []),
        )

    @async_test
    async def test_private_space_is_not_found_until_bobs_server_is_invited(self) -> None:
        space = await self.create_on_a(
            preset="private_chat", name="club", creation_content={"type": "m.space"}
        )
        for room_id in (space, "!nowhere:" + self.a.server_name):
            with self.assertRaises(FederationError) as missing:
                await self.hierarchy(room_id)
            self.assertEqual(
                (missing.exception.code, missing.exception.errcode), (404, "M_NOT_FOUND")
            )
        invited = await self.a.client.post(
            f"{V3}/rooms/{quote(space)}/invite", {"user_id": self.bob}, self.alice_token
        )
        self.assertEqual(invited.code, 200, invited.json)
        found = await self.hierarchy(space)
        self.assertEqual(found["room"]["room_id"], space)

    @async_test
    async def test_bobs_client_walks_a_space_of_a(self) -> None:
        """B holds the space (bob joined it) but none of its rooms: B asks A for them."""
        space = await self.create_on_a(
            preset="public_chat", name="guild", creation_content={"type": "m.space"}
        )
        lobby = await self.create_on_a(preset="public_chat", name="lobby")
        secret = await self.create_on_a(preset="private_chat", name="secret")
        sub = await self.create_on_a(
            preset="public_chat", name="sub", creation_content={"type": "m.space"}
        )
        deep = await self.create_on_a(preset="public_chat", name="deep")
        await self.add_child(space, lobby, order="a", suggested=True)
        await self.add_child(space, secret, order="b")
        await self.add_child(space, sub, order="c")
        await self.add_child(sub, deep)
        joined = await self.b.client.post(
            f"{V3}/join/{quote(space)}?via={quote(self.a.server_name)}", {}, self.bob_token
        )
        self.assertEqual(joined.code, 200, joined.json)
        asked: list[str] = []
        remote = self.b.hs.spaces.remote
        get_hierarchy = remote.get_hierarchy

        async def counting(server_name: str, room_id: str, suggested_only: bool) -> Any:
            asked.append(room_id)
            return await get_hierarchy(server_name, room_id, suggested_only)

        remote.get_hierarchy = counting

        path = f"/_matrix/client/v1/rooms/{quote(space)}/hierarchy"
        walked = await self.b.client.get(path, self.bob_token)
        self.assertEqual(walked.code, 200, walked.json)
        rooms = walked.json["rooms"]
        self.assertEqual([r["room_id"] for r in rooms], [space, lobby, sub, deep])
        self.assertEqual([r["name"] for r in rooms], ["guild", "lobby", "sub", "deep"])
        self.assertEqual(
            [c["state_key"] for c in rooms[0]["children_state"]], [lobby, secret, sub]
        )
        self.assertEqual([c["state_key"] for c in rooms[2]["children_state"]], [deep])
        self.assertEqual(rooms[1]["children_state"], [])
        # One request per room B does not hold, but for deep: A's answer about sub told B
        # about sub's children.
        self.assertEqual(asked, [lobby, secret, sub])

        # Pages continue the remote walk; answers are cached meanwhile.
        first = await self.b.client.get(path + "?limit=2", self.bob_token)
        self.assertEqual([r["room_id"] for r in first.json["rooms"]], [space, lobby])
        rest = await self.b.client.get(
            path + f"?limit=2&from={quote(first.json['next_batch'])}", self.bob_token
        )
        self.assertEqual([r["room_id"] for r in rest.json["rooms"]], [sub, deep])
        self.assertEqual(asked, [lobby, secret, sub])

        suggested = await self.b.client.get(path + "?suggested_only=true", self.bob_token)
        self.assertEqual([r["room_id"] for r in suggested.json["rooms"]], [space, lobby])
