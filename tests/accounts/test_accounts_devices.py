"""/devices, /devices/{deviceId} and /delete_devices over real HTTP."""

from __future__ import annotations

from tests.accounts.accounts_testing import PASSWORD, V3, AccountsTestCase, password_auth
from tests.asyncutil import async_test


class DeviceTests(AccountsTestCase):
    async def _start(self) -> None:
        await super()._start()
        self.alice, self.token = await self.client.register("alice")
        self.phone = await self.login_ok(
            "alice", device_id="PHONE", initial_device_display_name="Alice's phone"
        )
        self.own_device = (await self.whoami(self.token)).json["device_id"]

    def device_path(self, device_id: str) -> str:
        return f"{V3}/devices/{device_id}"

    @async_test
    async def test_list_and_get(self) -> None:
        listing = await self.client.get(f"{V3}/devices", self.token)
        self.assertEqual(listing.code, 200)
        by_id = {d["device_id"]: d for d in listing.json["devices"]}
        self.assertEqual(set(by_id), {self.own_device, "PHONE"})
        phone = by_id["PHONE"]
        self.assertEqual(phone["display_name"], "Alice's phone")
        self.assertIsInstance(phone["last_seen_ts"], int)
        # No name was given at registration: the key is absent, not null.
        self.assertNotIn("display_name", by_id[self.own_device])

        single = await self.client.get(self.device_path("PHONE"), self.token)
        self.assertEqual(single.json, phone)
        missing = await self.client.get(self.device_path("NOPE"), self.token)
        self.assertEqual(missing.code, 404)
        self.assertEqual(missing.json["errcode"], "M_NOT_FOUND")

    @async_test
    async def test_devices_of_others_are_invisible(self) -> None:
        _, bob_token = await self.client.register("bob")
        response = await self.client.get(self.device_path("PHONE"), bob_token)
        self.assertEqual(response.code, 404)

    @async_test
    async def test_rename(self) -> None:
        response = await self.client.put(
            self.device_path("PHONE"), {"display_name": "Old phone"}, self.token
        )
        self.assertEqual((response.code, response.json), (200, {}))
        device = await self.client.get(self.device_path("PHONE"), self.token)
        self.assertEqual(device.json["display_name"], "Old phone")
        unchanged = await self.client.put(self.device_path("PHONE"), {}, self.token)
        self.assertEqual(unchanged.code, 200)
        device = await self.client.get(self.device_path("PHONE"), self.token)
        self.assertEqual(device.json["display_name"], "Old phone")

    @async_test
    async def test_rename_errors(self) -> None:
        unknown = await self.client.put(self.device_path("NOPE"), {"display_name": "x"}, self.token)
        self.assertEqual(unknown.code, 404)
        self.assertEqual(unknown.json["errcode"], "M_NOT_FOUND")
        wrong_type = await self.client.put(
            self.device_path("PHONE"), {"display_name": 3}, self.token
        )
        self.assertEqual(wrong_type.json["errcode"], "M_BAD_JSON")
        too_long = await self.client.put(
            self.device_path("PHONE"), {"display_name": "x" * 101}, self.token
        )
        self.assertEqual(too_long.code, 400)
        self.assertEqual(too_long.json["errcode"], "M_TOO_LARGE")

    @async_test
    async def test_delete_needs_the_password(self) -> None:
        path = self.device_path("PHONE")
        session = await self.uia_session("DELETE", path, {}, self.token)
        wrong = await self.client.request(
            "DELETE", path, {"auth": password_auth(self.alice, "wrong", session)}, self.token
        )
        self.assertEqual(wrong.code, 401)
        self.assertEqual(wrong.json["errcode"], "M_FORBIDDEN")
        done = await self.client.request(
            "DELETE", path, {"auth": password_auth(self.alice, PASSWORD, session)}, self.token
        )
        self.assertEqual((done.code, done.json), (200, {}))
        await self.assert_token_dead(self.phone["access_token"])
        gone = await self.client.get(path, self.token)
        self.assertEqual(gone.code, 404)

    @async_test
    async def test_delete_without_a_body_gets_the_challenge(self) -> None:
        response = await self.client.request("DELETE", self.device_path("PHONE"), token=self.token)
        self.assertEqual(response.code, 401)
        self.assertEqual(response.json["flows"], [{"stages": ["m.login.password"]}])

    @async_test
    async def test_delete_unknown_device_succeeds(self) -> None:
        response = await self.with_password(
            "DELETE", self.device_path("NOPE"), {}, self.token, self.alice
        )
        self.assertEqual(response.code, 200)

    @async_test
    async def test_session_is_bound_to_the_device_path(self) -> None:
        await self.login_ok("alice", device_id="TABLET")
        session = await self.uia_session("DELETE", self.device_path("TABLET"), {}, self.token)
        response = await self.client.request(
            "DELETE",
            self.device_path("PHONE"),
            {"auth": password_auth(self.alice, PASSWORD, session)},
            self.token,
        )
        self.assertEqual(response.code, 403)
        self.assertEqual(response.json["errcode"], "M_FORBIDDEN")
        self.assertEqual((await self.whoami(self.phone["access_token"])).code, 200)

    @async_test
    async def test_bulk_delete(self) -> None:
        tablet = await self.login_ok("alice", device_id="TABLET")
        body = {"devices": ["PHONE", "TABLET", "NEVER_EXISTED"]}
        response = await self.with_password(
            "POST", f"{V3}/delete_devices", body, self.token, self.alice
        )
        self.assertEqual((response.code, response.json), (200, {}))
        await self.assert_token_dead(self.phone["access_token"])
        await self.assert_token_dead(tablet["access_token"])
        listing = await self.client.get(f"{V3}/devices", self.token)
        self.assertEqual([d["device_id"] for d in listing.json["devices"]], [self.own_device])

    @async_test
    async def test_bulk_delete_checks_the_body_first(self) -> None:
        for body in ({}, {"devices": "PHONE"}, {"devices": [1]}):
            response = await self.client.post(f"{V3}/delete_devices", body, self.token)
            self.assertEqual(response.code, 400)
            self.assertEqual(response.json["errcode"], "M_BAD_JSON")
