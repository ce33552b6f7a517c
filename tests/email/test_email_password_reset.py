"""Password reset by email: requestToken, the confirmation page, POST /account/password
without an access token, then logging in with the new password."""

from __future__ import annotations

from tests.asyncutil import async_test
from tests.email.email_testing import PASSWORD, V3, EmailTestCase, email_auth

PASSWORD_PATH = f"{V3}/account/password"
NEW_PASSWORD = "battery staple"
ALICE_EMAIL = {"type": "m.id.thirdparty", "medium": "email", "address": "alice@example.org"}


class PasswordResetTests(EmailTestCase):
    async def alice_with_email(self) -> str:
        """Registers alice with alice@example.org; returns her access token."""
        _, token = await self.register("alice", "alice@example.org")
        self.mails_before = len(self.sink.mails)
        return token

    async def reset_mail_link(self, client_secret: str = "s3cret") -> tuple[str, str]:
        """(sid, link) of a new reset mail."""
        sid = await self.sid_for("/account/password", "alice@example.org", client_secret)
        mail = (await self.sink.wait_for(self.mails_before + 1))[-1]
        self.mails_before += 1
        self.assertEqual(mail.rcpt_tos, ["alice@example.org"])
        self.assertEqual(mail.message["Subject"], "[test.local] Password reset")
        base = self.server.config.public_baseurl
        self.assertTrue(
            mail.link.startswith(f"{base}_synapse/client/password_reset/email/submit_token?")
        )
        return sid, mail.link

    async def confirm(self, link: str) -> None:
        """Opens the link and presses the confirmation page's button."""
        page = await self.follow(link)
        self.assertEqual(page.code, 200, page.text)
        self.assertIn('<form method="post">', page.text)
        form = {
            name: link.split(f"{name}=")[1].split("&")[0]
            for name in ("sid", "client_secret", "token")
        }
        confirmed = await self.follow(link, "POST", form)
        self.assertEqual(confirmed.code, 200, confirmed.text)
        self.assertIn("Password reset confirmed", confirmed.text)

    async def reset(self, sid: str, session: str | None = None, **extra: object):
        body = {"new_password": NEW_PASSWORD, "auth": email_auth(sid, session=session), **extra}
        return await self.client.post(PASSWORD_PATH, body)

    @async_test
    async def test_reset_then_log_in_with_the_new_password(self) -> None:
        token = await self.alice_with_email()
        challenge = await self.client.post(PASSWORD_PATH, {"new_password": NEW_PASSWORD})
        self.assertEqual(challenge.code, 401, challenge.json)
        self.assertEqual(challenge.json["flows"], [{"stages": ["m.login.email.identity"]}])
        session = challenge.json["session"]

        sid, link = await self.reset_mail_link()
        # Opening the link only asks for confirmation: nothing is validated yet.
        self.assertEqual((await self.follow(link)).code, 200)
        early = await self.reset(sid, session)
        self.assertEqual((early.code, early.json["errcode"]), (401, "M_UNAUTHORIZED"))

        await self.confirm(link)
        done = await self.reset(sid, session)
        self.assertEqual((done.code, done.json), (200, {}))

        # Every device was logged out, the old password is gone, the new one works.
        whoami = await self.client.get(f"{V3}/account/whoami", token)
        self.assertEqual(whoami.json["errcode"], "M_UNKNOWN_TOKEN")
        old = await self.login(ALICE_EMAIL)
        self.assertEqual((old.code, old.json["errcode"]), (403, "M_FORBIDDEN"))
        new = await self.login({"type": "m.id.user", "user": "alice"}, NEW_PASSWORD)
        self.assertEqual((new.code, new.json["user_id"]), (200, "@alice:test.local"))
        by_email = await self.login(ALICE_EMAIL, NEW_PASSWORD)
        self.assertEqual(by_email.code, 200)

        # The validation reset one password: the same credentials reset nothing more.
        again = await self.client.post(
            PASSWORD_PATH, {"new_password": "third", "auth": email_auth(sid)}
        )
        self.assertEqual(again.code, 401, again.json)
        reused_page = await self.follow(link, "POST", {})
        self.assertEqual(reused_page.code, 400)

    @async_test
    async def test_logout_devices_false_keeps_sessions(self) -> None:
        token = await self.alice_with_email()
        sid, link = await self.reset_mail_link()
        await self.confirm(link)
        done = await self.reset(sid, logout_devices=False)
        self.assertEqual(done.code, 200, done.json)
        whoami = await self.client.get(f"{V3}/account/whoami", token)
        self.assertEqual(whoami.code, 200)

    @async_test
    async def test_unknown_address_and_wrong_purpose(self) -> None:
        await self.alice_with_email()
        unknown = await self.request_token("/account/password", "nobody@example.org")
        self.assertEqual((unknown.code, unknown.json["errcode"]), (400, "M_THREEPID_NOT_FOUND"))
        # A session validated for something else is no proof for a reset.
        sid = await self.sid_for("/account/3pid", "fresh@example.org")
        mail = (await self.sink.wait_for(self.mails_before + 1))[-1]
        self.assertEqual((await self.follow(mail.link)).code, 200)
        refused = await self.reset(sid)
        self.assertEqual(refused.code, 401, refused.json)

    @async_test
    async def test_bad_confirmation_links(self) -> None:
        await self.alice_with_email()
        _, link = await self.reset_mail_link()
        wrong = link.replace("client_secret=s3cret", "client_secret=nope")
        for method, form in (("GET", None), ("POST", {})):
            page = await self.follow(wrong, method, form)
            self.assertEqual(page.code, 400, method)
            self.assertIn("could not be reset", page.text)
        incomplete = await self.follow(link.split("?")[0])
        self.assertEqual(incomplete.code, 400)
        self.assertIn("incomplete", incomplete.text)

    @async_test
    async def test_changing_the_password_with_a_token_still_asks_for_it(self) -> None:
        token = await self.alice_with_email()
        response = await self.client.post(PASSWORD_PATH, {"new_password": NEW_PASSWORD}, token)
        self.assertEqual(response.code, 401)
        self.assertEqual(response.json["flows"], [{"stages": ["m.login.password"]}])
        self.assertNotEqual(PASSWORD, NEW_PASSWORD)
