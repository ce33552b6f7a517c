"""Missed-message mail: a pusher of kind email mails what stayed unread for a while."""

from __future__ import annotations

from urllib.parse import quote

from tests.asyncutil import async_test
from tests.email.email_testing import V3, EmailTestCase, sleep


class MissedMessageMail(EmailTestCase):
    email_config = {"notif_delay_before_mail": "500ms"}

    async def email_pusher(self, token: str, address: str) -> int:
        response = await self.client.post(f"{V3}/pushers/set", {
            "kind": "email", "app_id": "m.email", "pushkey": address,
            "app_display_name": "Email", "device_display_name": address, "lang": "en"}, token)
        return response.code

    async def group(self, creator_token: str, *tokens: str) -> str:
        created = await self.client.post(f"{V3}/createRoom",
                                         {"preset": "public_chat", "name": "Garden club"},
                                         creator_token)
        room_id = created.json["room_id"]
        for token in tokens:
            await self.client.post(f"{V3}/join/{quote(room_id)}", {}, token)
        return room_id

    async def say(self, room_id: str, token: str, body: str) -> str:
        response = await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{body.replace(' ', '-')}",
            {"msgtype": "m.text", "body": body}, token)
        return response.json["event_id"]

    @async_test
    async def test_unread_messages_are_mailed_once_after_the_delay(self) -> None:
        alice, alice_token = await self.register("alice", "alice@example.org")
        _bob, bob_token = await self.client.register("bob", "pw")
        _carol, carol_token = await self.client.register("carol", "pw")
        self.assertEqual(await self.email_pusher(alice_token, "alice@example.org"), 200)
        sign_up_mails = len(self.sink.mails)
        room_id = await self.group(alice_token, bob_token, carol_token)

        await self.say(room_id, bob_token, "the tomatoes are ripe")
        await self.say(room_id, carol_token, "bring a basket")
        [mail] = (await self.sink.wait_for(sign_up_mails + 1))[sign_up_mails:]
        self.assertEqual(mail.rcpt_tos, ["alice@example.org"])
        self.assertEqual(mail.message["Subject"], "2 unread messages in Garden club")
        text = mail.part("text/plain")
        self.assertIn("bob: the tomatoes are ripe", text)
        self.assertIn("carol: bring a basket", text)
        self.assertIn("Garden club", mail.part("text/html"))

        # Read in time: no mail.
        read = await self.say(room_id, bob_token, "and scissors")
        await self.client.post(f"{V3}/rooms/{quote(room_id)}/receipt/m.read/{quote(read)}", {},
                               alice_token)
        await sleep(1.0)
        await self.server.hs.pushers.wait_idle()
        self.assertEqual(len(self.sink.mails), sign_up_mails + 1)

    @async_test
    async def test_only_a_validated_address_of_ones_own(self) -> None:
        _alice, alice_token = await self.register("alice", "alice@example.org")
        self.assertEqual(await self.email_pusher(alice_token, "someone@example.org"), 400)
        response = await self.client.post(f"{V3}/pushers/set", {
            "kind": "email", "app_id": "org.example", "pushkey": "alice@example.org",
            "app_display_name": "Email", "device_display_name": "x", "lang": "en"}, alice_token)
        self.assertEqual((response.code, response.json["errcode"]), (400, "M_INVALID_PARAM"))
