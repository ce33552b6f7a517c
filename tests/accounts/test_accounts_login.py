"""GET/POST /login, /logout, /logout/all and /account/whoami over real HTTP."""

from __future__ import annotations

from tests.accounts.accounts_testing import PASSWORD, V3, AccountsTestCase
from tests.asyncutil import async_test


class LoginTests(AccountsTestCase):
    async def _start(self) -> None:
        await super()._start()
        self.alice, self.alice_token = await self.client.register("alice")

    @async_test
    async def test_login_flows(self) -> None:
        response = await self.client.get(f"{V3}/login")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.json, {"flows": [{"type": "m.login.password"}]})

    @async_test
    async def test_login_by_localpart_returns_a_full_session(self) -> None:
        result = await self.login_ok("alice")
        self.assertEqual(result["user_id"], "@alice:test.local")
        self.assertEqual(result["home_server"], "test.local")
        self.assertEqual(result["well_known"], {"m.homeserver": {"base_url": "http://127.0.0.1/"}})
        self.assertIsInstance(result["device_id"], str)
        self.assertNotIn("refresh_token", result)
        self.assertNotIn("expires_in_ms", result)
        whoami = await self.whoami(result["access_token"])
        self.assertEqual(
            whoami.json,
            {"user_id": "@alice:test.local", "device_id": result["device_id"], "is_guest": False},
        )

    @async_test
    async def test_login_by_full_user_id_and_legacy_user_field(self) -> None:
        await self.login_ok("@alice:test.local")
        legacy = await self.client.post(
            f"{V3}/login", {"type": "m.login.password", "user": "alice", "password": PASSWORD}
        )
        self.assertEqual(legacy.code, 200, legacy.json)
        self.assertEqual(legacy.json["user_id"], "@alice:test.local")

    @async_test
    async def test_user_lookup_ignores_case(self) -> None:
        result = await self.login_ok("@ALICE:test.local")
        self.assertEqual(result["user_id"], "@alice:test.local")

    @async_test
    async def test_wrong_password_and_unknown_user_look_the_same(self) -> None:
        wrong = await self.login("alice", "wrong")
        unknown = await self.login("nobody", PASSWORD)
        other_server = await self.login("@alice:elsewhere.example", PASSWORD)
        for response in (wrong, unknown, other_server):
            self.assertEqual(response.code, 403)
            self.assertEqual(response.json["errcode"], "M_FORBIDDEN")
        self.assertEqual(wrong.json["error"], unknown.json["error"])

    @async_test
    async def test_bad_login_requests(self) -> None:
        unknown_type = await self.client.post(f"{V3}/login", {"type": "m.login.magic"})
        self.assertEqual(unknown_type.code, 400)
        self.assertEqual(unknown_type.json["errcode"], "M_UNKNOWN")
        token = await self.client.post(f"{V3}/login", {"type": "m.login.token", "token": "x"})
        self.assertEqual(token.code, 400)
        no_password = await self.client.post(
            f"{V3}/login",
            {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}},
        )
        self.assertEqual(no_password.code, 400)
        self.assertEqual(no_password.json["errcode"], "M_BAD_JSON")
        not_json = await self.client.request("POST", f"{V3}/login", raw=b"{nope")
        self.assertEqual(not_json.json["errcode"], "M_NOT_JSON")

    @async_test
    async def test_third_party_identifiers_are_unknown(self) -> None:
        for identifier in (
            {"type": "m.id.thirdparty", "medium": "email", "address": "a@example.org"},
            {"type": "m.id.phone", "country": "GB", "phone": "07700900000"},
        ):
            body = {"type": "m.login.password", "identifier": identifier, "password": PASSWORD}
            response = await self.client.post(f"{V3}/login", body)
            self.assertEqual(response.code, 403)
            self.assertEqual(response.json["errcode"], "M_FORBIDDEN")

    @async_test
    async def test_reusing_a_device_id_replaces_its_session(self) -> None:
        first = await self.login_ok("alice", device_id="LAPTOP", initial_device_display_name="L")
        second = await self.login_ok("alice", device_id="LAPTOP")
        self.assertEqual(second["device_id"], "LAPTOP")
        await self.assert_token_dead(first["access_token"])
        devices = await self.client.get(f"{V3}/devices", second["access_token"])
        laptop = [d for d in devices.json["devices"] if d["device_id"] == "LAPTOP"]
        self.assertEqual(len(laptop), 1)
        # initial_device_display_name is ignored for a known device.
        self.assertEqual(laptop[0]["display_name"], "L")

    @async_test
    async def test_logout_ends_only_that_session(self) -> None:
        other = await self.login_ok("alice")
        response = await self.client.post(f"{V3}/logout", {}, other["access_token"])
        self.assertEqual((response.code, response.json), (200, {}))
        await self.assert_token_dead(other["access_token"])
        still = await self.whoami(self.alice_token)
        self.assertEqual(still.code, 200)
        devices = await self.client.get(f"{V3}/devices", self.alice_token)
        ids = [d["device_id"] for d in devices.json["devices"]]
        self.assertNotIn(other["device_id"], ids)

    @async_test
    async def test_logout_all(self) -> None:
        other = await self.login_ok("alice")
        response = await self.client.post(f"{V3}/logout/all", {}, self.alice_token)
        self.assertEqual((response.code, response.json), (200, {}))
        await self.assert_token_dead(self.alice_token)
        await self.assert_token_dead(other["access_token"])
        again = await self.login_ok("alice")
        devices = await self.client.get(f"{V3}/devices", again["access_token"])
        self.assertEqual([d["device_id"] for d in devices.json["devices"]], [again["device_id"]])

    @async_test
    async def test_whoami_needs_a_token(self) -> None:
        missing = await self.client.get(f"{V3}/account/whoami")
        self.assertEqual(missing.code, 401)
        self.assertEqual(missing.json["errcode"], "M_MISSING_TOKEN")
        await self.assert_token_dead("syt_made_up")


class LoginRateLimitTests(AccountsTestCase):
    server_config = {
        "rc_login": {
            "address": {"per_second": 0.001, "burst_count": 3},
            "account": {"per_second": 1_000_000, "burst_count": 1_000_000},
            "failed_attempts": {"per_second": 1_000_000, "burst_count": 1_000_000},
        }
    }

    @async_test
    async def test_attempts_per_address_are_limited(self) -> None:
        await self.client.register("alice")
        for password in ("wrong", PASSWORD, "wrong"):
            response = await self.login("alice", password)
            self.assertIn(response.code, (200, 403))
        refused = await self.login("alice")
        self.assertEqual(refused.code, 429)
        self.assertEqual(refused.json["errcode"], "M_LIMIT_EXCEEDED")
        self.assertGreater(refused.json["retry_after_ms"], 0)
        self.assertTrue(refused.headers.hasHeader(b"Retry-After"))


class FailedLoginRateLimitTests(AccountsTestCase):
    server_config = {
        "rc_login": {
            "address": {"per_second": 1_000_000, "burst_count": 1_000_000},
            "account": {"per_second": 1_000_000, "burst_count": 1_000_000},
            "failed_attempts": {"per_second": 0.001, "burst_count": 2},
        }
    }

    @async_test
    async def test_only_failures_count_per_account(self) -> None:
        await self.client.register("alice")
        await self.client.register("bob")
        for _ in range(3):
            await self.login_ok("alice")
        for _ in range(2):
            self.assertEqual((await self.login("alice", "wrong")).code, 403)
        refused = await self.login("alice")
        self.assertEqual(refused.code, 429)
        self.assertEqual(refused.json["errcode"], "M_LIMIT_EXCEEDED")
        # Another account is not affected.
        await self.login_ok("bob")


class AccountRateLimitTests(AccountsTestCase):
    server_config = {
        "rc_login": {
            "address": {"per_second": 1_000_000, "burst_count": 1_000_000},
            "account": {"per_second": 0.001, "burst_count": 2},
            "failed_attempts": {"per_second": 1_000_000, "burst_count": 1_000_000},
        }
    }

    @async_test
    async def test_logins_per_account_are_limited(self) -> None:
        await self.client.register("alice")
        await self.login_ok("alice")
        await self.login_ok("@alice:test.local")
        refused = await self.login("ALICE")
        self.assertEqual(refused.code, 429)
