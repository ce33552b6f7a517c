"""Sign-up with a required, validated email address (registrations_require_3pid: [email])."""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs, urlsplit

from tests.asyncutil import async_test
from tests.email.email_testing import (
    PASSWORD,
    SENDER,
    V3,
    EmailTestCase,
    email_auth,
    sleep,
)

REGISTER = f"{V3}/register"
EMAIL_FLOWS = [{"stages": ["m.login.email.identity"]}]


class EmailRegistrationTests(EmailTestCase):
    server_config = {
        "registrations_require_3pid": ["email"],
        "enable_registration_without_verification": False,
    }

    async def start_registration(self, username: str) -> str:
        response = await self.client.post(REGISTER, {"username": username, "password": PASSWORD})
        self.assertEqual(response.code, 401, response.json)
        self.assertEqual(response.json["flows"], EMAIL_FLOWS)
        return response.json["session"]

    async def finish(self, username: str, sid: str, session: str | None = None, **creds: str):
        body = {"username": username, "password": PASSWORD}
        return await self.client.post(REGISTER, {**body, "auth": email_auth(sid, **creds, session=session)})

    async def assert_available(self, username: str) -> None:
        response = await self.client.get(f"{REGISTER}/available?username={username}")
        self.assertEqual((response.code, response.json), (200, {"available": True}))

    @async_test
    async def test_dummy_stage_is_not_enough(self) -> None:
        body = {"username": "mallory", "password": PASSWORD, "auth": {"type": "m.login.dummy"}}
        response = await self.client.post(REGISTER, body)
        self.assertEqual(response.code, 401)
        self.assertEqual(response.json["flows"], EMAIL_FLOWS)
        self.assertIn("errcode", response.json)
        await self.assert_available("mallory")

    @async_test
    async def test_sign_up_end_to_end(self) -> None:
        session = await self.start_registration("carol")
        sid = await self.sid_for("/register", "Carol@Example.org")

        [mail] = await self.sink.wait_for(1)
        self.assertEqual(mail.rcpt_tos, ["carol@example.org"])
        self.assertEqual(mail.mail_from, SENDER)
        self.assertEqual(mail.message["From"], f"Your Friendly TestApp homeserver <{SENDER}>")
        self.assertEqual(mail.message["To"], "carol@example.org")
        self.assertEqual(mail.message["Subject"], "[test.local] Validate your email")
        self.assertEqual(mail.message.get_content_type(), "multipart/alternative")
        link = mail.link
        base = self.server.config.public_baseurl
        self.assertTrue(
            link.startswith(f"{base}_matrix/client/unstable/registration/email/submit_token?")
        )
        query = parse_qs(urlsplit(link).query)
        self.assertEqual(query["sid"], [sid])
        self.assertEqual(query["client_secret"], ["s3cret"])
        self.assertGreaterEqual(len(query["token"][0]), 32)
        self.assertIn("TestApp", mail.part("text/plain"))
        html = mail.part("text/html")
        self.assertIn(f'href="{escape(link)}"', html)

        # Until the link is followed the stage fails, and the client may keep polling.
        early = await self.finish("carol", sid, session)
        self.assertEqual(early.code, 401, early.json)
        self.assertEqual(early.json["errcode"], "M_UNAUTHORIZED")
        self.assertEqual(early.json["session"], session)

        page = await self.follow(link)
        self.assertEqual(page.code, 200, page.text)
        self.assertEqual(page.content_type, "text/html; charset=utf-8")
        self.assertIn("confirmed", page.text)
        self.assertEqual(page.headers.getRawHeaders(b"X-Frame-Options"), [b"DENY"])

        done = await self.finish("carol", sid, session)
        self.assertEqual(done.code, 200, done.json)
        self.assertEqual(done.json["user_id"], "@carol:test.local")
        [threepid] = await self.threepids(done.json["access_token"])
        self.assertEqual(threepid["medium"], "email")
        self.assertEqual(threepid["address"], "carol@example.org")
        self.assertIsInstance(threepid["validated_at"], int)
        self.assertGreaterEqual(threepid["added_at"], threepid["validated_at"])

        login = await self.login(
            {"type": "m.id.thirdparty", "medium": "email", "address": "CAROL@example.org"}
        )
        self.assertEqual(login.code, 200, login.json)
        self.assertEqual(login.json["user_id"], "@carol:test.local")
        # Exactly one mail for the whole sign-up.
        self.assertEqual(len(self.sink.mails), 1)

    @async_test
    async def test_link_and_session_are_single_use(self) -> None:
        session = await self.start_registration("dave")
        sid = await self.sid_for("/register", "dave@example.org")
        [mail] = await self.sink.wait_for(1)
        self.assertEqual((await self.follow(mail.link)).code, 200)

        again = await self.follow(mail.link)
        self.assertEqual(again.code, 400)
        self.assertIn("already been used", again.text)

        done = await self.finish("dave", sid, session)
        self.assertEqual(done.code, 200, done.json)
        # The validation made one account: the same credentials make no second one.
        second = await self.client.post(REGISTER, {"username": "dave2", "password": PASSWORD})
        reuse = await self.finish("dave2", sid, second.json["session"])
        self.assertEqual(reuse.code, 401, reuse.json)
        await self.assert_available("dave2")
        after = await self.follow(mail.link)
        self.assertEqual(after.code, 400)
        self.assertIn("used already", after.text)

    @async_test
    async def test_taken_address_is_refused(self) -> None:
        await self.register("erin", "erin@example.org")
        taken = await self.request_token("/register", "ERIN@example.org", "other")
        self.assertEqual((taken.code, taken.json["errcode"]), (400, "M_THREEPID_IN_USE"))
        self.assertEqual(len(self.sink.mails), 1)

    @async_test
    async def test_same_send_attempt_sends_once(self) -> None:
        first = await self.sid_for("/register", "fay@example.org")
        repeat = await self.sid_for("/register", "fay@example.org")
        self.assertEqual(repeat, first)
        await self.server.hs.mailer.drain()
        self.assertEqual(len(self.sink.mails), 1)

        again = await self.request_token("/register", "fay@example.org", send_attempt=2)
        self.assertEqual(again.json, {"sid": first})
        old, new = await self.sink.wait_for(2)
        # Only the newest mail's link works.
        stale = await self.follow(old.link)
        self.assertEqual(stale.code, 400)
        self.assertIn("newer mail", stale.text)
        self.assertEqual((await self.follow(new.link)).code, 200)
        # Another client secret is another session.
        other = await self.sid_for("/register", "fay@example.org", client_secret="other")
        self.assertNotEqual(other, first)

    @async_test
    async def test_bad_requests(self) -> None:
        path = "/register/email/requestToken"
        cases = [
            ({"client_secret": "not allowed!", "email": "a@example.org", "send_attempt": 1},
             "M_INVALID_PARAM"),
            ({"client_secret": "x" * 256, "email": "a@example.org", "send_attempt": 1},
             "M_INVALID_PARAM"),
            ({"client_secret": "ok\n", "email": "a@example.org", "send_attempt": 1},
             "M_INVALID_PARAM"),
            ({"client_secret": "ok", "email": "not an address", "send_attempt": 1},
             "M_INVALID_PARAM"),
            ({"client_secret": "ok", "email": "a@example.org\r\nBcc: b@example.org",
              "send_attempt": 1}, "M_INVALID_PARAM"),
            ({"client_secret": "ok", "email": "a@example.org"}, "M_BAD_JSON"),
            ({"client_secret": "ok", "email": "a@example.org", "send_attempt": "1"},
             "M_BAD_JSON"),
            ({"email": "a@example.org", "send_attempt": 1}, "M_BAD_JSON"),
            ({"client_secret": "ok", "send_attempt": 1}, "M_BAD_JSON"),
        ]
        for body, errcode in cases:
            response = await self.client.post(f"{V3}{path}", body)
            self.assertEqual((response.code, response.json["errcode"]), (400, errcode), body)
        not_json = await self.client.request("POST", f"{V3}{path}", raw=b"{nope")
        self.assertEqual((not_json.code, not_json.json["errcode"]), (400, "M_NOT_JSON"))
        await self.server.hs.mailer.drain()
        self.assertEqual(self.sink.mails, [])

    @async_test
    async def test_tampered_links_fail_with_a_page(self) -> None:
        await self.sid_for("/register", "gil@example.org")
        [mail] = await self.sink.wait_for(1)
        link = mail.link
        for bad in (
            link.replace("client_secret=s3cret", "client_secret=wrong"),
            link.replace("client_secret=s3cret", "client_secret=%C3%A9"),
            link.replace("token=", "token=x"),
            link.split("?")[0],
            link.replace("registration/email", "add_threepid/email"),
        ):
            page = await self.follow(bad)
            self.assertEqual(page.code, 400, bad)
            self.assertEqual(page.content_type, "text/html; charset=utf-8")
        # None of them used the token up.
        self.assertEqual((await self.follow(link)).code, 200)


class ExpiredTokenTests(EmailTestCase):
    email_config = {"validation_token_lifetime": "300ms"}
    server_config = {
        "registrations_require_3pid": ["email"],
        "enable_registration_without_verification": False,
    }

    @async_test
    async def test_expired_link_is_refused(self) -> None:
        response = await self.client.post(REGISTER, {"username": "hal", "password": PASSWORD})
        session = response.json["session"]
        sid = await self.sid_for("/register", "hal@example.org")
        [mail] = await self.sink.wait_for(1)
        await sleep(0.5)
        page = await self.follow(mail.link)
        self.assertEqual(page.code, 400)
        self.assertIn("expired", page.text)
        body = {"username": "hal", "password": PASSWORD, "auth": email_auth(sid, session=session)}
        refused = await self.client.post(REGISTER, body)
        self.assertEqual(refused.code, 401, refused.json)
        available = await self.client.get(f"{REGISTER}/available?username=hal")
        self.assertEqual(available.json, {"available": True})


class RateLimitTests(EmailTestCase):
    server_config = {"rc_3pid_validation": {"per_second": 0.001, "burst_count": 2}}

    @async_test
    async def test_mails_per_address_are_limited(self) -> None:
        for attempt in (1, 2):
            response = await self.request_token("/register", "ida@example.org", send_attempt=attempt)
            self.assertEqual(response.code, 200, response.json)
        # A repeated send_attempt sends nothing, so it is not counted.
        repeat = await self.request_token("/register", "ida@example.org", send_attempt=2)
        self.assertEqual(repeat.code, 200)
        limited = await self.request_token("/register", "ida@example.org", send_attempt=3)
        self.assertEqual(limited.code, 429, limited.json)
        self.assertEqual(limited.json["errcode"], "M_LIMIT_EXCEEDED")
        self.assertGreater(limited.json["retry_after_ms"], 0)
        self.assertIsNotNone(limited.headers.getRawHeaders(b"Retry-After"))
        other_secret = await self.request_token("/register", "IDA@example.org", "other")
        self.assertEqual(other_secret.code, 429)
        await self.server.hs.mailer.drain()
        self.assertEqual(len(self.sink.mails), 2)
