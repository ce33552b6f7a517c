"""Reporting content: events (members only), rooms and users."""

from __future__ import annotations

from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase


class ReportTests(ClientTestCase):
    users = ("alice", "bob", "carol")

    async def room_with_message(self, **create: object) -> tuple[str, str]:
        response = await self.client.post(f"{V3}/createRoom", create, self.alice_token)
        room_id = response.json["room_id"]
        sent = await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/t1",
            {"msgtype": "m.text", "body": "offensive"},
            self.alice_token,
        )
        self.assertEqual(sent.code, 200, sent.json)
        return room_id, sent.json["event_id"]

    def event_path(self, room_id: str, event_id: str) -> str:
        return f"{V3}/rooms/{quote(room_id)}/report/{quote(event_id)}"

    async def stored(self) -> list:
        return await self.server.hs.storage.reports.list_reports()

    @async_test
    async def test_member_reports_event(self) -> None:
        room_id, event_id = await self.room_with_message(preset="public_chat")
        await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
        response = await self.client.post(
            self.event_path(room_id, event_id), {"reason": "rude", "score": -50}, self.bob_token
        )
        self.assertEqual((response.code, response.json), (200, {}))
        # reason and score are optional (score was removed from the spec in v1.18).
        bare = await self.client.post(self.event_path(room_id, event_id), {}, self.bob_token)
        self.assertEqual(bare.code, 200, bare.json)
        reports = await self.stored()
        self.assertEqual(len(reports), 2)
        full = next(r for r in reports if r.reason == "rude")
        self.assertEqual(
            (full.reporter, full.room_id, full.event_id, full.score),
            (self.bob, room_id, event_id, -50),
        )

    @async_test
    async def test_non_members_and_unknown_events_get_404(self) -> None:
        room_id, event_id = await self.room_with_message(preset="public_chat")
        other_room, other_event = await self.room_with_message()
        # bob is not in the room; then bob joined and left.
        response = await self.client.post(self.event_path(room_id, event_id), {}, self.bob_token)
        self.assertEqual((response.code, response.json["errcode"]), (404, "M_NOT_FOUND"))
        await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
        await self.client.post(f"{V3}/rooms/{quote(room_id)}/leave", {}, self.bob_token)
        left = await self.client.post(self.event_path(room_id, event_id), {}, self.bob_token)
        self.assertEqual(left.code, 404)
        for path in (
            self.event_path(room_id, "$missing"),
            self.event_path(room_id, other_event),  # an event of another room
            self.event_path("!nowhere:test.local", event_id),
        ):
            response = await self.client.post(path, {}, self.alice_token)
            self.assertEqual((response.code, response.json["errcode"]), (404, "M_NOT_FOUND"), path)
        self.assertEqual(await self.stored(), [])
        self.assertTrue(other_room)

    @async_test
    async def test_event_from_before_joining_a_private_history_room(self) -> None:
        room_id, event_id = await self.room_with_message(
            preset="public_chat",
            initial_state=[
                {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}
            ],
        )
        await self.client.post(f"{V3}/join/{quote(room_id)}", {}, self.bob_token)
        # Bob is a member but could never see that event: it is "not found" for him.
        response = await self.client.post(self.event_path(room_id, event_id), {}, self.bob_token)
        self.assertEqual(response.code, 404)

    @async_test
    async def test_bad_event_report_bodies(self) -> None:
        room_id, event_id = await self.room_with_message()
        for body in (
            {"reason": 5},
            {"score": -101},
            {"score": 1},
            {"score": "bad"},
            {"score": True},
        ):
            response = await self.client.post(
                self.event_path(room_id, event_id), body, self.alice_token
            )
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_BAD_JSON"), body)
        not_a_room = await self.client.post(self.event_path("nope", event_id), {}, self.alice_token)
        self.assertEqual(not_a_room.code, 400)
        self.assertEqual(await self.stored(), [])

    @async_test
    async def test_room_report_needs_no_membership(self) -> None:
        room_id, _ = await self.room_with_message()
        response = await self.client.post(
            f"{V3}/rooms/{quote(room_id)}/report", {"reason": ""}, self.carol_token
        )
        self.assertEqual((response.code, response.json), (200, {}))
        [report] = await self.stored()
        self.assertEqual(
            (report.reporter, report.room_id, report.event_id), (self.carol, room_id, None)
        )
        missing = await self.client.post(
            f"{V3}/rooms/{quote('!nowhere:test.local')}/report", {"reason": "x"}, self.carol_token
        )
        self.assertEqual((missing.code, missing.json["errcode"]), (404, "M_NOT_FOUND"))
        no_reason = await self.client.post(
            f"{V3}/rooms/{quote(room_id)}/report", {}, self.carol_token
        )
        self.assertEqual((no_reason.code, no_reason.json["errcode"]), (400, "M_BAD_JSON"))

    @async_test
    async def test_user_report(self) -> None:
        response = await self.client.post(
            f"{V3}/users/{quote(self.bob)}/report", {"reason": "spam"}, self.alice_token
        )
        self.assertEqual((response.code, response.json), (200, {}))
        [report] = await self.stored()
        self.assertEqual(
            (report.reporter, report.target_user_id, report.reason), (self.alice, self.bob, "spam")
        )
        unknown = await self.client.post(
            f"{V3}/users/{quote('@ghost:test.local')}/report", {"reason": "x"}, self.alice_token
        )
        self.assertEqual((unknown.code, unknown.json["errcode"]), (404, "M_NOT_FOUND"))
        invalid = await self.client.post(
            f"{V3}/users/not-a-user/report", {"reason": "x"}, self.alice_token
        )
        self.assertEqual((invalid.code, invalid.json["errcode"]), (400, "M_INVALID_PARAM"))
        no_reason = await self.client.post(
            f"{V3}/users/{quote(self.bob)}/report", {}, self.alice_token
        )
        self.assertEqual((no_reason.code, no_reason.json["errcode"]), (400, "M_BAD_JSON"))
        anonymous = await self.client.post(f"{V3}/users/{quote(self.bob)}/report", {"reason": "x"})
        self.assertEqual(anonymous.code, 401)
