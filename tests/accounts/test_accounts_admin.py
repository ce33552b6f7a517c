"""Shared-secret registration (/_synapse/admin/v1/register) and `register-user`."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

from twisted.internet import threads

from homeserver import admin_client
from homeserver.admin_client import register_user_command
from tests.accounts.accounts_testing import V3, AccountsTestCase
from tests.asyncutil import async_test

ADMIN_REGISTER = "/_synapse/admin/v1/register"
SECRET = "test-shared-secret"  # what tests/harness.py configures


def synapse_mac(nonce: str, user: str, password: str, admin: bool, user_type: str = "") -> str:
    """Written out as Synapse's register_new_matrix_user documents it, independently of ours."""
    message = b"\x00".join(
        [nonce.encode(), user.encode(), password.encode(), b"admin" if admin else b"notadmin"]
    )
    if user_type:
        message += b"\x00" + user_type.encode()
    return hmac.new(SECRET.encode(), message, hashlib.sha1).hexdigest()


class SharedSecretRegistrationTests(AccountsTestCase):
    async def nonce(self) -> str:
        response = await self.client.get(ADMIN_REGISTER)
        self.assertEqual(response.code, 200, response.json)
        return response.json["nonce"]

    async def post(self, nonce: str, user: str, password: str, admin: bool = False, **extra):
        body = {
            "nonce": nonce,
            "username": user,
            "password": password,
            "admin": admin,
            "mac": synapse_mac(nonce, user, password, admin, extra.get("user_type") or ""),
            **extra,
        }
        return await self.client.post(ADMIN_REGISTER, body)

    @async_test
    async def test_register_admin_with_correct_mac(self) -> None:
        nonce = await self.nonce()
        response = await self.post(nonce, "root", "s3cret", admin=True, displayname="Root")
        self.assertEqual(response.code, 200, response.json)
        self.assertEqual(response.json["user_id"], "@root:test.local")
        self.assertEqual(response.json["home_server"], "test.local")
        self.assertIn("device_id", response.json)
        whoami = await self.whoami(response.json["access_token"])
        self.assertEqual(whoami.json["user_id"], "@root:test.local")
        user = await self.server.hs.storage.accounts.get_user("@root:test.local")
        self.assertTrue(user[1])  # is_admin
        profile = await self.client.get(f"{V3}/profile/@root:test.local")
        self.assertEqual(profile.json, {"displayname": "Root"})
        await self.login_ok("root", "s3cret")

    @async_test
    async def test_user_type_is_covered_by_the_mac(self) -> None:
        # Synapse's script sends user_type (null unless given) and displayname (maybe null).
        nonce = await self.nonce()
        response = await self.post(nonce, "bot", "pw", user_type="bot", displayname=None)
        self.assertEqual(response.code, 200, response.json)
        nonce = await self.nonce()
        body = {
            "nonce": nonce,
            "username": "bot2",
            "password": "pw",
            "admin": False,
            "user_type": "support",
            "mac": synapse_mac(nonce, "bot2", "pw", False),
        }
        tampered = await self.client.post(ADMIN_REGISTER, body)
        self.assertEqual(tampered.code, 403)

    @async_test
    async def test_wrong_mac_is_forbidden_and_uses_up_the_nonce(self) -> None:
        nonce = await self.nonce()
        body = {
            "nonce": nonce,
            "username": "eve",
            "password": "pw",
            "admin": True,
            # A mac for a non-admin account: flipping the flag must not pass.
            "mac": synapse_mac(nonce, "eve", "pw", False),
        }
        wrong = await self.client.post(ADMIN_REGISTER, body)
        self.assertEqual(wrong.code, 403)
        self.assertEqual(wrong.json["errcode"], "M_FORBIDDEN")
        retry = await self.post(nonce, "eve", "pw", admin=True)
        self.assertEqual(retry.code, 400)
        self.assertEqual(retry.json["errcode"], "M_UNKNOWN")
        garbage = await self.client.post(
            ADMIN_REGISTER, {**body, "nonce": await self.nonce(), "mac": "é"}
        )
        self.assertEqual(garbage.code, 403)

    @async_test
    async def test_nonce_is_single_use(self) -> None:
        nonce = await self.nonce()
        self.assertEqual((await self.post(nonce, "once", "pw")).code, 200)
        again = await self.post(nonce, "twice", "pw")
        self.assertEqual(again.code, 400)
        self.assertEqual(again.json["errcode"], "M_UNKNOWN")
        unknown = await self.post("made-up", "thrice", "pw")
        self.assertEqual(unknown.code, 400)

    @async_test
    async def test_taken_and_invalid_usernames(self) -> None:
        await self.client.register("alice")
        taken = await self.post(await self.nonce(), "alice", "pw")
        self.assertEqual(taken.code, 400)
        self.assertEqual(taken.json["errcode"], "M_USER_IN_USE")
        invalid = await self.post(await self.nonce(), "not valid", "pw")
        self.assertEqual(invalid.json["errcode"], "M_INVALID_USERNAME")
        missing = await self.client.post(ADMIN_REGISTER, {"nonce": await self.nonce()})
        self.assertEqual(missing.json["errcode"], "M_BAD_JSON")

    @async_test
    async def test_works_while_registration_is_closed(self) -> None:
        server = await self.other_server(
            enable_registration=False, enable_registration_without_verification=False
        )
        nonce = (await server.client.get(ADMIN_REGISTER)).json["nonce"]
        body = {
            "nonce": nonce,
            "username": "staff",
            "password": "pw",
            "admin": False,
            "mac": synapse_mac(nonce, "staff", "pw", False),
        }
        response = await server.client.post(ADMIN_REGISTER, body)
        self.assertEqual(response.code, 200, response.json)


class SharedSecretDisabledTests(AccountsTestCase):
    server_config = {"registration_shared_secret": ""}

    @async_test
    async def test_not_enabled(self) -> None:
        for response in (
            await self.client.get(ADMIN_REGISTER),
            await self.client.post(ADMIN_REGISTER, {"nonce": "x"}),
        ):
            self.assertEqual(response.code, 400)
            self.assertEqual(response.json["errcode"], "M_UNKNOWN")
            self.assertEqual(response.json["error"], "Shared secret registration is not enabled")


class RegisterUserCommandTests(AccountsTestCase):
    def config_with_real_port(self):
        """The server's config with the port it really listens on (the harness binds port 0)."""
        port = int(self.server.base_url.rsplit(":", 1)[1])
        listener = replace(self.server.config.listeners[0], port=port)
        return replace(self.server.config, listeners=(listener,))

    @async_test
    async def test_registers_through_the_running_server(self) -> None:
        config = self.config_with_real_port()
        # In a thread: the command blocks on HTTP while the reactor serves it.
        code = await threads.deferToThread(
            register_user_command, config, "cli", "cli password", True, None
        )
        self.assertEqual(code, 0)
        login = await self.login_ok("cli", "cli password")
        self.assertEqual(login["user_id"], "@cli:test.local")
        user = await self.server.hs.storage.accounts.get_user("@cli:test.local")
        self.assertTrue(user[1])

    @async_test
    async def test_full_user_id_and_explicit_url(self) -> None:
        code = await threads.deferToThread(
            register_user_command,
            self.server.config,
            "@cli2:test.local",
            "pw",
            False,
            self.server.base_url,
        )
        self.assertEqual(code, 0)
        await self.login_ok("cli2", "pw")

    @async_test
    async def test_prompts_for_the_password(self) -> None:
        answers = iter(["typed secret", "typed secret"])
        self.patch(admin_client.getpass, "getpass", lambda prompt: next(answers))
        code = await threads.deferToThread(
            register_user_command, self.config_with_real_port(), "prompted", None, False, None
        )
        self.assertEqual(code, 0)
        await self.login_ok("prompted", "typed secret")

    @async_test
    async def test_failures_exit_non_zero(self) -> None:
        await self.client.register("alice")
        config = self.config_with_real_port()
        for user in ("alice", "@bob:elsewhere.example", "Not Valid"):
            code = await threads.deferToThread(
                register_user_command, config, user, "pw", False, None
            )
            self.assertEqual(code, 1, user)
        unreachable = await threads.deferToThread(
            register_user_command, config, "carol", "pw", False, "http://127.0.0.1:1"
        )
        self.assertEqual(unreachable, 1)
        no_secret = replace(config, registration_shared_secret=None)
        self.assertEqual(register_user_command(no_secret, "dave", "pw", False, None), 1)
