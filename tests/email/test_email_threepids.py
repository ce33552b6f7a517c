"""Adding and removing an account's email address, optional email at sign-up, and mail
delivery itself (authentication, TLS required, a mail server that is down, templates)."""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import AuthResult
from twisted.internet import defer

from tests.accounts.accounts_testing import password_auth
from tests.asyncutil import async_test
from tests.email.email_testing import PASSWORD, V3, EmailTestCase


class AddThreepidTests(EmailTestCase):
    async def add(self, token: str, sid: str, auth: dict | None = None):
        body: dict = {"client_secret": "s3cret", "sid": sid}
        if auth is not None:
            body["auth"] = auth
        return await self.client.post(f"{V3}/account/3pid/add", body, token)

    @async_test
    async def test_capability_and_optional_email_flow(self) -> None:
        _, token = await self.register("alice")
        capabilities = await self.client.get(f"{V3}/capabilities", token)
        self.assertEqual(capabilities.json["capabilities"]["m.3pid_changes"], {"enabled": True})
        # Registration stays open without email; an address may be given and validated.
        flows = await self.client.post(f"{V3}/register", {})
        self.assertEqual(
            flows.json["flows"],
            [{"stages": ["m.login.dummy"]}, {"stages": ["m.login.email.identity"]}],
        )
        user_id, token = await self.register("bob", "bob@example.org")
        self.assertEqual([t["address"] for t in await self.threepids(token)], ["bob@example.org"])

    @async_test
    async def test_add_and_delete(self) -> None:
        alice, token = await self.register("alice")
        self.assertEqual(await self.threepids(token), [])
        sid = await self.sid_for("/account/3pid", "alice@example.org")
        [mail] = await self.sink.wait_for(1)
        self.assertEqual(mail.message["Subject"], "[test.local] Validate your email")
        self.assertIn("add_threepid/email/submit_token?", mail.link)

        # Not validated yet: the answer clients expect, before any password is asked for.
        early = await self.add(token, sid)
        self.assertEqual((early.code, early.json["errcode"]), (400, "M_THREEPID_AUTH_FAILED"))

        page = await self.follow(mail.link)
        self.assertEqual(page.code, 200, page.text)
        self.assertIn("confirmed", page.text)

        challenge = await self.add(token, sid)
        self.assertEqual(challenge.code, 401, challenge.json)
        self.assertEqual(challenge.json["flows"], [{"stages": ["m.login.password"]}])
        auth = password_auth("alice", session=challenge.json["session"])
        added = await self.add(token, sid, auth)
        self.assertEqual((added.code, added.json), (200, {}))
        [threepid] = await self.threepids(token)
        self.assertEqual((threepid["medium"], threepid["address"]), ("email", "alice@example.org"))

        identifier = {"type": "m.id.thirdparty", "medium": "email", "address": "alice@example.org"}
        self.assertEqual((await self.login(identifier)).json["user_id"], alice)
        # The deprecated top-level medium/address form too.
        legacy = await self.client.post(
            f"{V3}/login",
            {
                "type": "m.login.password",
                "medium": "email",
                "address": "alice@example.org",
                "password": PASSWORD,
            },
        )
        self.assertEqual(legacy.json["user_id"], alice)
        wrong = await self.login(identifier, "wrong password")
        self.assertEqual((wrong.code, wrong.json["errcode"]), (403, "M_FORBIDDEN"))

        # The validation was used up by the addition.
        replay = await self.add(token, sid)
        self.assertEqual(replay.json["errcode"], "M_THREEPID_AUTH_FAILED")

        deleted = await self.client.post(
            f"{V3}/account/3pid/delete",
            {"medium": "email", "address": "Alice@Example.org"},
            token,
        )
        self.assertEqual((deleted.code, deleted.json), (200, {"id_server_unbind_result": "no-support"}))
        self.assertEqual(await self.threepids(token), [])
        gone = await self.login(identifier)
        self.assertEqual((gone.code, gone.json["errcode"]), (403, "M_FORBIDDEN"))

    @async_test
    async def test_address_of_another_account_is_refused(self) -> None:
        await self.register("alice", "alice@example.org")
        _, bob_token = await self.register("bob")
        taken = await self.request_token("/account/3pid", "alice@example.org")
        self.assertEqual((taken.code, taken.json["errcode"]), (400, "M_THREEPID_IN_USE"))

    @async_test
    async def test_a_session_validated_for_sign_up_cannot_add(self) -> None:
        _, token = await self.register("alice")
        sid = await self.sid_for("/register", "alice@example.org")
        [mail] = await self.sink.wait_for(1)
        self.assertEqual((await self.follow(mail.link)).code, 200)
        refused = await self.add(token, sid)
        self.assertEqual(refused.json["errcode"], "M_THREEPID_AUTH_FAILED")

    @async_test
    async def test_bad_bodies(self) -> None:
        _, token = await self.register("alice")
        cases = [
            ("/account/3pid/add", {"sid": "1"}, "M_BAD_JSON"),
            ("/account/3pid/add", {"sid": "1", "client_secret": "bad secret"}, "M_INVALID_PARAM"),
            ("/account/3pid/delete", {"medium": "email"}, "M_BAD_JSON"),
            ("/account/3pid/delete", {"medium": "fax", "address": "1"}, "M_INVALID_PARAM"),
            ("/account/3pid", {"three_pid_creds": {}}, "M_FORBIDDEN"),
        ]
        for path, body, errcode in cases:
            response = await self.client.post(V3 + path, body, token)
            self.assertEqual(response.json["errcode"], errcode, path)
            self.assertIn(response.code, (400, 403), path)
        anonymous = await self.client.post(
            f"{V3}/account/3pid/add", {"sid": "1", "client_secret": "s"}
        )
        self.assertEqual(anonymous.code, 401)


class HiddenErrorsTests(EmailTestCase):
    server_config = {"request_token_inhibit_3pid_errors": True}

    @async_test
    async def test_taken_and_unknown_addresses_look_like_sent_mails(self) -> None:
        await self.register("alice", "alice@example.org")
        taken = await self.request_token("/register", "alice@example.org", "other")
        unknown = await self.request_token("/account/password", "nobody@example.org")
        for response in (taken, unknown):
            self.assertEqual(response.code, 200, response.json)
            self.assertIsInstance(response.json["sid"], str)
        await self.server.hs.mailer.drain()
        self.assertEqual(len(self.sink.mails), 1)  # alice's own sign-up mail only


# What the mail server was given to log in with, by SmtpAuthenticationTests' server.
_logins: list[tuple[bytes, bytes]] = []


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
    _logins.append((auth.login, auth.password))
    return AuthResult(success=auth.password == b"mail secret")


class SmtpAuthenticationTests(EmailTestCase):
    email_config = {"smtp_user": "hs", "smtp_pass": "mail secret"}
    smtp_options = {"authenticator": _authenticate, "auth_require_tls": False}

    @async_test
    async def test_logs_in_to_the_mail_server(self) -> None:
        _logins.clear()
        await self.sid_for("/register", "alice@example.org")
        [mail] = await self.sink.wait_for(1)
        self.assertEqual(mail.rcpt_tos, ["alice@example.org"])
        self.assertEqual(_logins, [(b"hs", b"mail secret")])


class DeliveryFailureTests(EmailTestCase):
    # The sink offers no STARTTLS, so nothing may be sent to it.
    email_config = {"require_transport_security": True}

    @async_test
    async def test_no_mail_without_tls_and_the_request_still_succeeds(self) -> None:
        with self.assertLogs("homeserver.mail.mailer", logging.WARNING) as logs:
            response = await self.request_token("/register", "alice@example.org")
            self.assertEqual(response.code, 200, response.json)
            await self.server.hs.mailer.drain()
        self.assertEqual(self.sink.mails, [])
        self.assertIn("Could not send mail to alice@example.org", logs.output[0])


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MailServerDownTests(EmailTestCase):
    email_config = {"smtp_port": _closed_port()}

    @async_test
    async def test_unreachable_mail_server_is_logged_not_a_500(self) -> None:
        with self.assertLogs("homeserver.mail.mailer", logging.WARNING) as logs:
            response = await self.request_token("/register", "alice@example.org")
            self.assertEqual(response.code, 200, response.json)
            await self.server.hs.mailer.drain()
        self.assertIn("Could not send mail", logs.output[0])


class TemplateOverrideTests(EmailTestCase):
    def setUp(self) -> defer.Deferred:
        custom = Path(tempfile.mkdtemp(prefix="hs-templates-"))
        self.addCleanup(shutil.rmtree, custom)
        (custom / "registration.txt").write_text(
            "Custom {{ app_name }} sign-up for {{ server_name }}: {{ link }}\n"
        )
        (custom / "registration_success.html").write_text(
            "<p>Custom page for {{ app_name }} <{{ '<b>' }}></p>"
        )
        self.email_config = {"template_dir": str(custom)}
        return super().setUp()

    @async_test
    async def test_template_dir_overrides_by_name(self) -> None:
        await self.sid_for("/register", "alice@example.org")
        [mail] = await self.sink.wait_for(1)
        self.assertTrue(mail.part("text/plain").startswith("Custom TestApp sign-up for test.local"))
        # Templates without an override are the bundled ones.
        self.assertIn("Confirm my email address", mail.part("text/html"))
        page = await self.follow(mail.link)
        self.assertEqual(page.code, 200)
        # HTML templates are autoescaped.
        self.assertIn("Custom page for TestApp <&lt;b&gt;>", page.text)


class DeactivationTests(EmailTestCase):
    @async_test
    async def test_deactivation_frees_the_address(self) -> None:
        _, token = await self.register("alice", "alice@example.org")
        challenge = await self.client.post(f"{V3}/account/deactivate", {}, token)
        auth = password_auth("alice", session=challenge.json["session"])
        done = await self.client.post(f"{V3}/account/deactivate", {"auth": auth}, token)
        self.assertEqual(done.code, 200, done.json)
        reset = await self.request_token("/account/password", "alice@example.org")
        self.assertEqual(reset.json["errcode"], "M_THREEPID_NOT_FOUND")
        user_id, _ = await self.register("alice2", "alice@example.org")
        self.assertEqual(user_id, "@alice2:test.local")



class ClosedRegistrationTests(EmailTestCase):
    server_config = {
        "enable_registration": False,
        "enable_registration_without_verification": False,
    }

    @async_test
    async def test_no_sign_up_mails_when_registration_is_closed(self) -> None:
        refused = await self.request_token("/register", "alice@example.org")
        self.assertEqual((refused.code, refused.json["errcode"]), (403, "M_FORBIDDEN"))
        # Adding an address to an existing account does not depend on registration.
        self.assertEqual((await self.request_token("/account/3pid", "alice@example.org")).code, 200)
        await self.sink.wait_for(1)
