"""POST /register and GET /register/available over real HTTP."""

from __future__ import annotations

from tests.accounts.accounts_testing import PASSWORD, V3, AccountsTestCase
from tests.asyncutil import async_test

REGISTER = f"{V3}/register"
DUMMY = {"type": "m.login.dummy"}


class RegistrationTests(AccountsTestCase):
    async def register(self, body: dict, path: str = REGISTER):
        return await self.client.post(path, body)

    @async_test
    async def test_first_request_gets_the_uia_challenge_then_dummy_completes(self) -> None:
        first = await self.register({"username": "carol", "password": PASSWORD})
        self.assertEqual(first.code, 401)
        self.assertEqual(first.json["flows"], [{"stages": ["m.login.dummy"]}])
        self.assertEqual(first.json["params"], {})
        session = first.json["session"]
        self.assertIsInstance(session, str)
        self.assertNotIn("errcode", first.json)

        done = await self.register(
            {"username": "carol", "password": PASSWORD, "auth": {**DUMMY, "session": session}}
        )
        self.assertEqual(done.code, 200, done.json)
        self.assertEqual(done.json["user_id"], "@carol:test.local")
        self.assertEqual(done.json["home_server"], "test.local")
        self.assertTrue(done.json["access_token"].startswith("syt_"))
        self.assertNotIn("refresh_token", done.json)
        self.assertNotIn("expires_in_ms", done.json)
        whoami = await self.whoami(done.json["access_token"])
        self.assertEqual(whoami.json["user_id"], "@carol:test.local")
        self.assertEqual(whoami.json["device_id"], done.json["device_id"])

    @async_test
    async def test_empty_probe_gets_flows(self) -> None:
        # Clients ask for the flows with an empty body before showing a sign-up form.
        response = await self.register({})
        self.assertEqual(response.code, 401)
        self.assertEqual(response.json["flows"], [{"stages": ["m.login.dummy"]}])

    @async_test
    async def test_dummy_without_session_registers_at_once(self) -> None:
        # matrix-nio sends the dummy stage on its very first request.
        response = await self.register({"username": "dan", "password": PASSWORD, "auth": DUMMY})
        self.assertEqual(response.code, 200, response.json)
        self.assertEqual(response.json["user_id"], "@dan:test.local")

    @async_test
    async def test_session_survives_a_restart(self) -> None:
        first = await self.register({"username": "erin", "password": PASSWORD})
        await self.server.restart()
        self.client = self.server.client
        auth = {**DUMMY, "session": first.json["session"]}
        response = await self.client.post(
            REGISTER, {"username": "erin", "password": PASSWORD, "auth": auth}
        )
        self.assertEqual(response.code, 200, response.json)

    @async_test
    async def test_unknown_session_is_refused(self) -> None:
        body = {"username": "fay", "password": PASSWORD, "auth": {**DUMMY, "session": "nope"}}
        response = await self.register(body)
        self.assertEqual(response.code, 400)
        self.assertEqual(response.json["errcode"], "M_UNKNOWN")

    @async_test
    async def test_unoffered_stage_fails_with_the_flows(self) -> None:
        body = {"username": "gil", "password": PASSWORD, "auth": {"type": "m.login.password"}}
        response = await self.register(body)
        self.assertEqual(response.code, 401)
        self.assertEqual(response.json["flows"], [{"stages": ["m.login.dummy"]}])
        self.assertIn("errcode", response.json)
        self.assertIsInstance(response.json["session"], str)

    @async_test
    async def test_taken_username_is_refused_before_and_after_auth(self) -> None:
        await self.client.register("alice")
        before = await self.register({"username": "alice", "password": PASSWORD})
        self.assertEqual(before.code, 400)
        self.assertEqual(before.json["errcode"], "M_USER_IN_USE")
        after = await self.register({"username": "alice", "password": PASSWORD, "auth": DUMMY})
        self.assertEqual(after.json["errcode"], "M_USER_IN_USE")

    @async_test
    async def test_invalid_usernames(self) -> None:
        for username in ("bad name", "ünïcode", "_reserved", "12345", "@alice:test.local", ""):
            response = await self.register(
                {"username": username, "password": PASSWORD, "auth": DUMMY}
            )
            self.assertEqual(response.code, 400, username)
            self.assertEqual(response.json["errcode"], "M_INVALID_USERNAME", username)

    @async_test
    async def test_upper_case_is_mapped_to_lower_case(self) -> None:
        response = await self.register({"username": "Hank", "password": PASSWORD, "auth": DUMMY})
        self.assertEqual(response.json["user_id"], "@hank:test.local")
        login = await self.login("hank")
        self.assertEqual(login.code, 200)

    @async_test
    async def test_missing_username_generates_one(self) -> None:
        response = await self.register({"password": PASSWORD, "auth": DUMMY})
        self.assertEqual(response.code, 200, response.json)
        localpart = response.json["user_id"][1:].split(":")[0]
        self.assertTrue(localpart.isdigit())

    @async_test
    async def test_password_is_required_and_bounded(self) -> None:
        missing = await self.register({"username": "ivy", "auth": DUMMY})
        self.assertEqual(missing.code, 400)
        self.assertEqual(missing.json["errcode"], "M_BAD_JSON")
        too_long = await self.register({"username": "ivy", "password": "x" * 513, "auth": DUMMY})
        self.assertEqual(too_long.code, 400)
        self.assertEqual(too_long.json["errcode"], "M_BAD_JSON")
        wrong_type = await self.register({"username": "ivy", "password": 5, "auth": DUMMY})
        self.assertEqual(wrong_type.json["errcode"], "M_BAD_JSON")

    @async_test
    async def test_inhibit_login(self) -> None:
        body = {"username": "jo", "password": PASSWORD, "inhibit_login": True, "auth": DUMMY}
        response = await self.register(body)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.json["user_id"], "@jo:test.local")
        self.assertNotIn("access_token", response.json)
        self.assertNotIn("device_id", response.json)
        login = await self.login("jo")
        self.assertEqual(login.code, 200)

    @async_test
    async def test_device_id_and_display_name(self) -> None:
        body = {
            "username": "kim",
            "password": PASSWORD,
            "device_id": "KIMPHONE",
            "initial_device_display_name": "Kim's phone",
            "auth": DUMMY,
        }
        response = await self.register(body)
        self.assertEqual(response.json["device_id"], "KIMPHONE")
        devices = await self.client.get(f"{V3}/devices", response.json["access_token"])
        self.assertEqual(len(devices.json["devices"]), 1)
        device = devices.json["devices"][0]
        self.assertEqual(device["device_id"], "KIMPHONE")
        self.assertEqual(device["display_name"], "Kim's phone")

    @async_test
    async def test_refresh_token_requested(self) -> None:
        body = {"username": "lee", "password": PASSWORD, "refresh_token": True, "auth": DUMMY}
        response = await self.register(body)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.json["expires_in_ms"], 5 * 60 * 1000)
        self.assertTrue(response.json["refresh_token"].startswith("syr_"))

    @async_test
    async def test_guest_registration_is_off_by_default(self) -> None:
        response = await self.client.post(f"{REGISTER}?kind=guest", {})
        self.assertEqual(response.code, 403)
        self.assertEqual(response.json["errcode"], "M_GUEST_ACCESS_FORBIDDEN")

    @async_test
    async def test_unknown_kind(self) -> None:
        response = await self.client.post(f"{REGISTER}?kind=robot", {})
        self.assertEqual(response.code, 400)
        self.assertEqual(response.json["errcode"], "M_INVALID_PARAM")

    @async_test
    async def test_username_availability(self) -> None:
        await self.client.register("alice")
        free = await self.client.get(f"{REGISTER}/available?username=mallory")
        self.assertEqual((free.code, free.json), (200, {"available": True}))
        taken = await self.client.get(f"{REGISTER}/available?username=alice")
        self.assertEqual(taken.code, 400)
        self.assertEqual(taken.json["errcode"], "M_USER_IN_USE")
        taken_upper = await self.client.get(f"{REGISTER}/available?username=ALICE")
        self.assertEqual(taken_upper.json["errcode"], "M_USER_IN_USE")
        invalid = await self.client.get(f"{REGISTER}/available?username=no%20spaces")
        self.assertEqual(invalid.code, 400)
        self.assertEqual(invalid.json["errcode"], "M_INVALID_USERNAME")
        missing = await self.client.get(f"{REGISTER}/available")
        self.assertEqual(missing.json["errcode"], "M_MISSING_PARAM")


class ClosedRegistrationTests(AccountsTestCase):
    server_config = {
        "enable_registration": False,
        "enable_registration_without_verification": False,
    }

    @async_test
    async def test_registration_is_forbidden(self) -> None:
        for body in ({}, {"username": "x", "password": PASSWORD, "auth": DUMMY}):
            response = await self.client.post(REGISTER, body)
            self.assertEqual(response.code, 403)
            self.assertEqual(response.json["errcode"], "M_FORBIDDEN")
        available = await self.client.get(f"{REGISTER}/available?username=x")
        self.assertEqual(available.code, 403)


class GuestRegistrationTests(AccountsTestCase):
    server_config = {"allow_guest_access": True}

    @async_test
    async def test_guest_gets_a_numeric_account(self) -> None:
        body = {"username": "ignored", "initial_device_display_name": "Guest tab"}
        response = await self.client.post(f"{REGISTER}?kind=guest", body)
        self.assertEqual(response.code, 200, response.json)
        localpart = response.json["user_id"][1:].split(":")[0]
        self.assertTrue(localpart.isdigit())
        self.assertIn("access_token", response.json)
        self.assertIn("device_id", response.json)
        whoami = await self.whoami(response.json["access_token"])
        self.assertEqual(whoami.json["user_id"], response.json["user_id"])
        self.assertTrue(whoami.json["is_guest"])
        # Guests may read and sync but not, for instance, create rooms.
        refused = await self.client.post(f"{V3}/createRoom", {}, response.json["access_token"])
        self.assertEqual((refused.code, refused.json["errcode"]), (403, "M_GUEST_ACCESS_FORBIDDEN"))


class RegistrationRateLimitTests(AccountsTestCase):
    server_config = {"rc_registration": {"per_second": 0.001, "burst_count": 2}}

    @async_test
    async def test_registrations_per_address_are_limited(self) -> None:
        # UIA round trips do not count, only accounts made.
        for name in ("r1", "r2"):
            probe = await self.client.post(REGISTER, {"username": name, "password": PASSWORD})
            self.assertEqual(probe.code, 401)
            await self.client.register(name)
        refused = await self.client.post(
            REGISTER, {"username": "r3", "password": PASSWORD, "auth": DUMMY}
        )
        self.assertEqual(refused.code, 429)
        self.assertEqual(refused.json["errcode"], "M_LIMIT_EXCEEDED")
        self.assertGreater(refused.json["retry_after_ms"], 0)
