"""GET /_matrix/client/v1/rooms/{roomId}/hierarchy."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from homeserver.events.event import Event
from homeserver.rooms.spaces import child_order_key
from tests.asyncutil import async_test
from tests.directory.directory_testing import V1, DirectoryTestCase, join_rules


class HierarchyTests(DirectoryTestCase):
    users = ("alice", "bob", "carol")

    async def hierarchy(self, room_id: str, token: str, **params: Any) -> Any:
        query = urlencode(
            {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
        )
        path = f"{V1}/rooms/{quote(room_id)}/hierarchy" + (f"?{query}" if query else "")
        return await self.client.get(path, token)

    def ids(self, response: Any) -> list[str]:
        assert response.code == 200, response.json
        return [room["room_id"] for room in response.json["rooms"]]

    async def tree(self) -> dict[str, str]:
        """guild (public space) -> [general (public), secret (invite-only), sub (space) -> [deep]]"""
        rooms = {
            "guild": await self.create_space(
                preset="public_chat", name="Guild", topic="All of us", room_alias_name="guild"
            ),
            "general": await self.create(preset="public_chat", name="general"),
            "secret": await self.create(name="secret"),
            "sub": await self.create_space(preset="public_chat", name="Sub"),
            "deep": await self.create(preset="public_chat", name="deep"),
        }
        await self.add_child(rooms["guild"], rooms["general"], order="a", suggested=True)
        await self.add_child(rooms["guild"], rooms["secret"], order="b")
        await self.add_child(rooms["guild"], rooms["sub"], order="c")
        await self.add_child(rooms["sub"], rooms["deep"])
        return rooms

    @async_test
    async def test_depth_first_walk_with_the_spec_fields(self) -> None:
        rooms = await self.tree()
        response = await self.hierarchy(rooms["guild"], self.alice_token)
        expected = [rooms[k] for k in ("guild", "general", "secret", "sub", "deep")]
        self.assertEqual(self.ids(response), expected)
        self.assertNotIn("next_batch", response.json)
        guild = response.json["rooms"][0]
        self.assertEqual(guild["name"], "Guild")
        self.assertEqual(guild["topic"], "All of us")
        self.assertEqual(guild["canonical_alias"], "#guild:test.local")
        self.assertEqual(guild["room_type"], "m.space")
        self.assertEqual(guild["join_rule"], "public")
        self.assertEqual(guild["num_joined_members"], 1)
        self.assertIs(guild["world_readable"], False)
        self.assertIs(guild["guest_can_join"], False)
        children = guild["children_state"]
        self.assertEqual([c["state_key"] for c in children], expected[1:4])
        self.assertEqual(
            set(children[0]), {"type", "state_key", "content", "sender", "origin_server_ts"}
        )
        self.assertEqual(children[0]["content"]["via"], ["test.local"])
        general = response.json["rooms"][1]
        self.assertEqual(general["children_state"], [])
        self.assertNotIn("room_type", general)

    @async_test
    async def test_rooms_the_user_may_not_see_are_left_out(self) -> None:
        rooms = await self.tree()
        response = await self.hierarchy(rooms["guild"], self.bob_token)
        self.assertEqual(
            self.ids(response), [rooms[k] for k in ("guild", "general", "sub", "deep")]
        )
        # An invite makes the room visible.
        await self.invite(rooms["secret"], self.bob)
        response = await self.hierarchy(rooms["guild"], self.bob_token)
        self.assertIn(rooms["secret"], self.ids(response))

    @async_test
    async def test_knockable_and_restricted_children(self) -> None:
        space = await self.create_space(preset="public_chat")
        knockable = await self.create(initial_state=[join_rules("knock")])
        restricted = await self.create(initial_state=[join_rules("restricted", space)])
        await self.add_child(space, knockable)
        await self.add_child(space, restricted)
        self.assertEqual(self.ids(await self.hierarchy(space, self.bob_token)), [space, knockable])
        await self.join(space, self.bob_token)
        listed = await self.hierarchy(space, self.bob_token)
        self.assertEqual(self.ids(listed), [space, knockable, restricted])
        self.assertEqual(listed.json["rooms"][2]["allowed_room_ids"], [space])

    @async_test
    async def test_hierarchy_of_a_room_you_cannot_see_is_forbidden(self) -> None:
        private_space = await self.create_space()
        response = await self.hierarchy(private_space, self.bob_token)
        self.assertEqual((response.code, response.json["errcode"]), (403, "M_FORBIDDEN"))
        for room_id in ("!unknown:test.local", "not-a-room"):
            unknown = await self.hierarchy(room_id, self.bob_token)
            self.assertEqual((unknown.code, unknown.json["errcode"]), (403, "M_FORBIDDEN"))
        # NUL never reaches a handler: the HTTP layer refuses it in any path.
        nul = await self.hierarchy("!a\x00b:test.local", self.bob_token)
        self.assertEqual((nul.code, nul.json["errcode"]), (400, "M_INVALID_PARAM"))
        # A banned user may not walk even a public space.
        public_space = await self.create_space(preset="public_chat")
        await self.join(public_space, self.carol_token)
        banned = await self.client.post(
            self.room(public_space, "ban"), {"user_id": self.carol}, self.alice_token
        )
        self.assertEqual(banned.code, 200)
        response = await self.hierarchy(public_space, self.carol_token)
        self.assertEqual(response.code, 403)
        anonymous = await self.client.get(f"{V1}/rooms/{quote(public_space)}/hierarchy")
        self.assertEqual(anonymous.code, 401)

    @async_test
    async def test_suggested_only_and_max_depth(self) -> None:
        rooms = await self.tree()
        suggested = await self.hierarchy(rooms["guild"], self.alice_token, suggested_only=True)
        self.assertEqual(self.ids(suggested), [rooms["guild"], rooms["general"]])
        self.assertEqual(
            [c["state_key"] for c in suggested.json["rooms"][0]["children_state"]],
            [rooms["general"]],
        )
        root_only = await self.hierarchy(rooms["guild"], self.alice_token, max_depth=0)
        self.assertEqual(self.ids(root_only), [rooms["guild"]])
        one_level = await self.hierarchy(rooms["guild"], self.alice_token, max_depth=1)
        self.assertEqual(
            self.ids(one_level), [rooms[k] for k in ("guild", "general", "secret", "sub")]
        )

    @async_test
    async def test_pagination_continues_where_it_stopped(self) -> None:
        rooms = await self.tree()
        seen: list[str] = []
        first = await self.hierarchy(rooms["guild"], self.alice_token, limit=2)
        seen += self.ids(first)
        token = first.json["next_batch"]
        # The space changes between pages; the walk goes on as it was.
        late = await self.create(preset="public_chat")
        await self.add_child(rooms["guild"], late, order="0")
        while token:
            page = await self.hierarchy(
                rooms["guild"], self.alice_token, limit=2, **{"from": token}
            )
            seen += self.ids(page)
            token = page.json.get("next_batch")
        self.assertEqual(seen, [rooms[k] for k in ("guild", "general", "secret", "sub", "deep")])
        # The same token may be used again (a client retrying).
        again = await self.hierarchy(
            rooms["guild"], self.alice_token, limit=2, **{"from": first.json["next_batch"]}
        )
        self.assertEqual(self.ids(again), [rooms["secret"], rooms["sub"]])

    @async_test
    async def test_bad_parameters(self) -> None:
        rooms = await self.tree()
        first = await self.hierarchy(rooms["guild"], self.alice_token, limit=1, max_depth=3)
        token = first.json["next_batch"]
        changed = await self.hierarchy(
            rooms["guild"], self.alice_token, limit=1, max_depth=2, **{"from": token}
        )
        self.assertEqual((changed.code, changed.json["errcode"]), (400, "M_INVALID_PARAM"))
        changed = await self.hierarchy(
            rooms["guild"], self.alice_token, max_depth=3, suggested_only=True, **{"from": token}
        )
        self.assertEqual((changed.code, changed.json["errcode"]), (400, "M_INVALID_PARAM"))
        other_user = await self.hierarchy(
            rooms["guild"], self.bob_token, max_depth=3, **{"from": token}
        )
        self.assertEqual((other_user.code, other_user.json["errcode"]), (400, "M_INVALID_PARAM"))
        for bad_token in ("nonsense", "a\x00b", "é"):
            unknown = await self.hierarchy(rooms["guild"], self.alice_token, **{"from": bad_token})
            self.assertEqual((unknown.code, unknown.json["errcode"]), (400, "M_INVALID_PARAM"))
        for params in ({"limit": 0}, {"limit": "x"}, {"max_depth": -1}, {"suggested_only": "yes"}):
            response = await self.hierarchy(rooms["guild"], self.alice_token, **params)
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_INVALID_PARAM"))

    @async_test
    async def test_loops_end_and_children_without_via_are_ignored(self) -> None:
        a = await self.create_space(preset="public_chat")
        b = await self.create_space(preset="public_chat")
        gone = await self.create(preset="public_chat")
        await self.add_child(a, b)
        await self.add_child(b, a)
        await self.put_state(a, "m.space.child", {}, gone)
        await self.put_state(
            a, "m.space.child", {"via": ["192.0.2.1"]}, "!remote:elsewhere.example"
        )
        response = await self.hierarchy(a, self.alice_token)
        self.assertEqual(self.ids(response), [a, b])
        children = [c["state_key"] for c in response.json["rooms"][0]["children_state"]]
        # Unknown rooms are listed as children (the state says so) but not walked into.
        self.assertEqual(sorted(children), sorted([b, "!remote:elsewhere.example"]))


def child(state_key: str, ts: int, order: Any = None) -> Event:
    from homeserver.events.room_versions import get_room_version

    content: dict[str, Any] = {"via": ["example.org"]}
    if order is not None:
        content["order"] = order
    pdu = {
        "type": "m.space.child",
        "state_key": state_key,
        "sender": "@a:example.org",
        "room_id": "!space:example.org",
        "content": content,
        "origin_server_ts": ts,
        "event_id": f"$${state_key}",
    }
    return Event(pdu, get_room_version("1"))  # type: ignore[arg-type]


def test_children_follow_the_spec_example_order() -> None:
    """The example of "Ordering of children within a space"."""
    events = [
        child("!b:example.org", 1640341000000, " "),
        child("!a:example.org", 1640141000000, "aaaa"),
        child("!c:example.org", 1640841000000, "first"),
        child("!e:example.org", 1640641000000),
        child("!d:example.org", 1640741000000),
        # Invalid orders count as none.
        child("!f:example.org", 1640941000000, "x" * 51),
        child("!g:example.org", 1640941000000, "\u00e9"),
        child("!h:example.org", 1640941000000, 5),
    ]
    ordered = [e.state_key for e in sorted(events, key=child_order_key)]
    assert ordered == [
        "!b:example.org",
        "!a:example.org",
        "!c:example.org",
        "!e:example.org",
        "!d:example.org",
        "!f:example.org",
        "!g:example.org",
        "!h:example.org",
    ]
