"""Rooms over real HTTP: creation, membership, state, history, aliases, and bad input."""

from __future__ import annotations

import json
from urllib.parse import quote

from twisted.internet import defer

from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase


class RoomTests(ClientTestCase):
    users = ("alice", "bob", "carol")

    async def create(self, token: str | None = None, **body: object) -> str:
        response = await self.client.post(f"{V3}/createRoom", body, token or self.alice_token)
        assert response.code == 200, response.json
        return response.json["room_id"]

    def room(self, room_id: str, rest: str) -> str:
        return f"{V3}/rooms/{quote(room_id)}/{rest}"

    async def state(self, room_id: str, event_type: str, state_key: str = "", token=None):
        return await self.client.get(
            self.room(room_id, f"state/{event_type}/{quote(state_key)}"), token or self.alice_token
        )

    @async_test
    async def test_create_room_with_options(self) -> None:
        room_id = await self.create(
            preset="public_chat",
            name="Town hall",
            topic="Everything",
            room_alias_name="townhall",
            initial_state=[
                {"type": "m.room.guest_access", "content": {"guest_access": "can_join"}}
            ],
        )
        self.assertTrue(room_id.startswith("!"))
        name = await self.state(room_id, "m.room.name")
        self.assertEqual(name.json, {"name": "Town hall"})
        topic = await self.state(room_id, "m.room.topic")
        self.assertEqual(topic.json["topic"], "Everything")
        join_rules = await self.state(room_id, "m.room.join_rules")
        self.assertEqual(join_rules.json, {"join_rule": "public"})
        guest = await self.state(room_id, "m.room.guest_access")
        self.assertEqual(guest.json, {"guest_access": "can_join"})
        create = await self.state(room_id, "m.room.create")
        self.assertEqual(create.json["room_version"], "12")
        power = await self.state(room_id, "m.room.power_levels")
        # Room version 12: the creator's power is implicit, not listed.
        self.assertNotIn(self.alice, power.json["users"])
        alias = await self.client.get(f"{V3}/directory/room/{quote('#townhall:test.local')}")
        self.assertEqual(alias.json["room_id"], room_id)
        taken = await self.client.post(
            f"{V3}/createRoom", {"room_alias_name": "townhall"}, self.bob_token
        )
        self.assertEqual((taken.code, taken.json["errcode"]), (400, "M_ROOM_IN_USE"))

    @async_test
    async def test_space_with_child_room(self) -> None:
        space = await self.create(
            preset="public_chat", name="Guild", creation_content={"type": "m.space"}
        )
        channel = await self.create(preset="public_chat", name="general")
        child = await self.client.put(
            self.room(space, f"state/m.space.child/{quote(channel)}"),
            {"via": ["test.local"]},
            self.alice_token,
        )
        self.assertEqual(child.code, 200)
        create = await self.state(space, "m.room.create")
        self.assertEqual(create.json["type"], "m.space")
        state = await self.client.get(self.room(space, "state"), self.alice_token)
        children = [e["state_key"] for e in state.json if e["type"] == "m.space.child"]
        self.assertEqual(children, [channel])

    @async_test
    async def test_concurrent_identical_rooms_get_distinct_ids(self) -> None:
        """v12 room IDs hash the create event; identical requests must still make new rooms."""
        creations = [
            defer.ensureDeferred(self.client.post(f"{V3}/createRoom", {}, self.alice_token))
            for _ in range(8)
        ]
        responses = await defer.gatherResults(creations)
        self.assertEqual([r.code for r in responses], [200] * 8)
        self.assertEqual(len({r.json["room_id"] for r in responses}), 8)

    @async_test
    async def test_duplicate_annotation_refused_but_retry_answered(self) -> None:
        room_id = await self.create(preset="public_chat")
        sent = await self.client.put(
            self.room(room_id, "send/m.room.message/m1"), {"body": "hi"}, self.alice_token
        )
        reaction = {
            "m.relates_to": {
                "rel_type": "m.annotation",
                "event_id": sent.json["event_id"],
                "key": "👍",
            }
        }
        first = await self.client.put(
            self.room(room_id, "send/m.reaction/r1"), reaction, self.alice_token
        )
        retry = await self.client.put(
            self.room(room_id, "send/m.reaction/r1"), reaction, self.alice_token
        )
        self.assertEqual(retry.json["event_id"], first.json["event_id"])
        again = await self.client.put(
            self.room(room_id, "send/m.reaction/r2"), reaction, self.alice_token
        )
        self.assertEqual((again.code, again.json["errcode"]), (400, "M_DUPLICATE_ANNOTATION"))

    @async_test
    async def test_unsupported_room_version(self) -> None:
        response = await self.client.post(
            f"{V3}/createRoom", {"room_version": "999"}, self.alice_token
        )
        self.assertEqual(response.json["errcode"], "M_UNSUPPORTED_ROOM_VERSION")

    @async_test
    async def test_older_room_versions_work(self) -> None:
        for version in ("10", "11"):
            room_id = await self.create(room_version=version, preset="public_chat")
            self.assertTrue(room_id.endswith(":test.local"))
            joined = await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
            self.assertEqual(joined.code, 200)

    @async_test
    async def test_invite_join_leave_kick_ban_unban_forget(self) -> None:
        room_id = await self.create()  # private_chat: invite only
        refused = await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
        self.assertEqual((refused.code, refused.json["errcode"]), (403, "M_FORBIDDEN"))
        invited = await self.client.post(
            self.room(room_id, "invite"), {"user_id": self.bob}, self.alice_token
        )
        self.assertEqual(invited.code, 200)
        joined = await self.client.post(self.room(room_id, "join"), {}, self.bob_token)
        self.assertEqual(joined.json, {"room_id": room_id})
        members = await self.client.get(self.room(room_id, "joined_members"), self.bob_token)
        self.assertEqual(set(members.json["joined"]), {self.alice, self.bob})
        # Bob (power 0) may not kick Alice; Alice may kick Bob.
        denied = await self.client.post(
            self.room(room_id, "kick"), {"user_id": self.alice}, self.bob_token
        )
        self.assertEqual(denied.code, 403)
        kicked = await self.client.post(
            self.room(room_id, "kick"), {"user_id": self.bob, "reason": "bye"}, self.alice_token
        )
        self.assertEqual(kicked.code, 200)
        member = await self.state(room_id, "m.room.member", self.bob)
        self.assertEqual(member.json, {"membership": "leave", "reason": "bye"})
        banned = await self.client.post(
            self.room(room_id, "ban"), {"user_id": self.bob}, self.alice_token
        )
        self.assertEqual(banned.code, 200)
        reinvite = await self.client.post(
            self.room(room_id, "invite"), {"user_id": self.bob}, self.alice_token
        )
        self.assertEqual(reinvite.code, 403)
        unbanned = await self.client.post(
            self.room(room_id, "unban"), {"user_id": self.bob}, self.alice_token
        )
        self.assertEqual(unbanned.code, 200)
        forgot = await self.client.post(self.room(room_id, "forget"), {}, self.bob_token)
        self.assertEqual(forgot.code, 200)
        in_room = await self.client.post(self.room(room_id, "forget"), {}, self.alice_token)
        self.assertEqual((in_room.code, in_room.json["errcode"]), (400, "M_UNKNOWN"))
        left = await self.client.post(self.room(room_id, "leave"), {}, self.alice_token)
        self.assertEqual(left.code, 200)
        rooms = await self.client.get(f"{V3}/joined_rooms", self.alice_token)
        self.assertEqual(rooms.json, {"joined_rooms": []})

    @async_test
    async def test_messages_both_directions_and_filter(self) -> None:
        room_id = await self.create(preset="public_chat")
        for i in range(15):
            await self.client.put(
                self.room(room_id, f"send/m.room.message/m{i}"),
                {"msgtype": "m.text", "body": f"message {i}"},
                self.alice_token,
            )
        await self.client.put(
            self.room(room_id, "send/m.reaction/r1"), {"note": "not a message"}, self.alice_token
        )
        backwards = await self.client.get(
            self.room(room_id, "messages?dir=b&limit=5"), self.alice_token
        )
        self.assertEqual(backwards.json["chunk"][0]["type"], "m.reaction")
        only_messages = quote(json.dumps({"types": ["m.room.message"]}))
        page1 = await self.client.get(
            self.room(room_id, f"messages?dir=b&limit=5&filter={only_messages}"),
            self.alice_token,
        )
        bodies = [e["content"]["body"] for e in page1.json["chunk"]]
        self.assertEqual(bodies, [f"message {i}" for i in range(14, 9, -1)])
        page2 = await self.client.get(
            self.room(
                room_id,
                f"messages?dir=b&limit=5&filter={only_messages}&from={quote(page1.json['end'])}",
            ),
            self.alice_token,
        )
        self.assertEqual(page2.json["chunk"][0]["content"]["body"], "message 9")
        forwards = await self.client.get(
            self.room(room_id, f"messages?dir=f&limit=3&filter={only_messages}"),
            self.alice_token,
        )
        self.assertEqual(
            [e["content"]["body"] for e in forwards.json["chunk"]],
            ["message 0", "message 1", "message 2"],
        )
        everything = await self.client.get(
            self.room(room_id, "messages?dir=b&limit=100"), self.alice_token
        )
        self.assertEqual(everything.json["chunk"][-1]["type"], "m.room.create")
        self.assertNotIn("end", everything.json)
        outsider = await self.client.get(self.room(room_id, "messages?dir=b"), self.carol_token)
        self.assertEqual(outsider.code, 403)

    @async_test
    async def test_redaction_prunes_content(self) -> None:
        room_id = await self.create(preset="public_chat")
        await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
        sent = await self.client.put(
            self.room(room_id, "send/m.room.message/x1"),
            {"msgtype": "m.text", "body": "oops"},
            self.bob_token,
        )
        event_id = sent.json["event_id"]
        # Carol is not in the room; Bob may redact his own message.
        redacted = await self.client.put(
            self.room(room_id, f"redact/{quote(event_id)}/r1"), {"reason": "typo"}, self.bob_token
        )
        self.assertEqual(redacted.code, 200)
        event = await self.client.get(
            self.room(room_id, f"event/{quote(event_id)}"), self.alice_token
        )
        self.assertEqual(event.json["content"], {})
        self.assertEqual(
            event.json["unsigned"]["redacted_because"]["event_id"], redacted.json["event_id"]
        )
        # The timeline in /sync (served from the in-memory recent events) agrees.
        sync = await self.client.get(f"{V3}/sync", self.alice_token)
        timeline = sync.json["rooms"]["join"][room_id]["timeline"]["events"]
        synced = next(e for e in timeline if e["event_id"] == event_id)
        self.assertEqual(synced["content"], {})
        self.server.hs.storage.events.cache.clear()
        sync = await self.client.get(f"{V3}/sync", self.alice_token)
        timeline = sync.json["rooms"]["join"][room_id]["timeline"]["events"]
        self.assertEqual(next(e for e in timeline if e["event_id"] == event_id)["content"], {})
        others = await self.client.put(
            self.room(room_id, "send/m.room.message/x2"),
            {"msgtype": "m.text", "body": "alice says"},
            self.alice_token,
        )
        not_allowed = await self.client.put(
            self.room(room_id, f"redact/{quote(others.json['event_id'])}/r2"), {}, self.bob_token
        )
        self.assertEqual(not_allowed.code, 403)

    @async_test
    async def test_state_event_and_prev_content(self) -> None:
        room_id = await self.create(preset="public_chat", name="first")
        renamed = await self.client.put(
            self.room(room_id, "state/m.room.name"), {"name": "second"}, self.alice_token
        )
        self.assertEqual(renamed.code, 200)
        event = await self.client.get(
            self.room(room_id, f"event/{quote(renamed.json['event_id'])}"), self.alice_token
        )
        self.assertEqual(event.json["unsigned"]["prev_content"], {"name": "first"})
        missing = await self.state(room_id, "m.room.avatar")
        self.assertEqual((missing.code, missing.json["errcode"]), (404, "M_NOT_FOUND"))
        await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
        power_denied = await self.client.put(
            self.room(room_id, "state/m.room.name"), {"name": "bob's"}, self.bob_token
        )
        self.assertEqual((power_denied.code, power_denied.json["errcode"]), (403, "M_FORBIDDEN"))

    @async_test
    async def test_bad_input_gets_matrix_errors_and_changes_nothing(self) -> None:
        room_id = await self.create(preset="public_chat")
        send = self.room(room_id, "send/m.room.message/")
        cases = [
            (
                await self.client.request(
                    "PUT", send + "a", raw=b"{not json", token=self.alice_token
                ),
                400,
                "M_NOT_JSON",
            ),
            (
                await self.client.request("PUT", send + "b", raw=b"[1, 2]", token=self.alice_token),
                400,
                "M_BAD_JSON",
            ),
            (await self.client.put(send + "c", {"body": 1.5}, self.alice_token), 400, "M_BAD_JSON"),
            (
                await self.client.put(send + "d", {"body": "x" * 70000}, self.alice_token),
                413,
                "M_TOO_LARGE",
            ),
            (
                await self.client.put(send + "e", {"body": "hi"}, "not-a-token"),
                401,
                "M_UNKNOWN_TOKEN",
            ),
            (await self.client.put(send + "f", {"body": "hi"}), 401, "M_MISSING_TOKEN"),
            (
                await self.client.put(send + "g", {"body": "hi"}, self.carol_token),
                403,
                "M_FORBIDDEN",
            ),
            (
                await self.client.get(f"{V3}/no/such/endpoint", self.alice_token),
                404,
                "M_UNRECOGNIZED",
            ),
            (
                await self.client.request("DELETE", f"{V3}/createRoom", token=self.alice_token),
                405,
                "M_UNRECOGNIZED",
            ),
            (
                await self.client.get(self.room(room_id, "messages"), self.alice_token),
                400,
                "M_MISSING_PARAM",
            ),
            (
                await self.client.post(f"{V3}/createRoom", {"invite": "bob"}, self.alice_token),
                400,
                "M_BAD_JSON",
            ),
        ]
        for response, code, errcode in cases:
            self.assertEqual((response.code, response.json["errcode"]), (code, errcode))
        history = await self.client.get(
            self.room(room_id, "messages?dir=b&limit=50"), self.alice_token
        )
        self.assertFalse([e for e in history.json["chunk"] if e["type"] == "m.room.message"])

    @async_test
    async def test_aliases(self) -> None:
        room_id = await self.create(preset="public_chat")
        alias = quote("#lobby:test.local")
        created = await self.client.put(
            f"{V3}/directory/room/{alias}", {"room_id": room_id}, self.alice_token
        )
        self.assertEqual(created.code, 200)
        duplicate = await self.client.put(
            f"{V3}/directory/room/{alias}", {"room_id": room_id}, self.bob_token
        )
        self.assertEqual(duplicate.code, 409)
        joined = await self.client.post(f"{V3}/join/{alias}", {}, self.bob_token)
        self.assertEqual(joined.json["room_id"], room_id)
        not_yours = await self.client.request(
            "DELETE", f"{V3}/directory/room/{alias}", token=self.bob_token
        )
        self.assertEqual(not_yours.code, 403)
        deleted = await self.client.request(
            "DELETE", f"{V3}/directory/room/{alias}", token=self.alice_token
        )
        self.assertEqual(deleted.code, 200)
        gone = await self.client.get(f"{V3}/directory/room/{alias}")
        self.assertEqual(gone.code, 404)
