"""Refresh tokens, expiring access tokens and soft logout, over real HTTP."""

from __future__ import annotations

from tests.accounts.accounts_testing import V3, AccountsTestCase, sleep
from tests.asyncutil import async_test


class RefreshTests(AccountsTestCase):
    async def _start(self) -> None:
        await super()._start()
        await self.client.register("alice")

    async def refresh(self, refresh_token: str):
        return await self.client.post(f"{V3}/refresh", {"refresh_token": refresh_token})

    async def refresh_ok(self, refresh_token: str) -> dict:
        response = await self.refresh(refresh_token)
        self.assertEqual(response.code, 200, response.json)
        return response.json

    async def assert_refresh_dead(self, refresh_token: str) -> None:
        response = await self.refresh(refresh_token)
        self.assertEqual(response.code, 401, response.json)
        self.assertEqual(response.json["errcode"], "M_UNKNOWN_TOKEN")
        self.assertIs(response.json["soft_logout"], False)

    @async_test
    async def test_login_with_refresh_token_and_refresh(self) -> None:
        login = await self.login_ok("alice", refresh_token=True)
        self.assertEqual(login["expires_in_ms"], 5 * 60 * 1000)
        fresh = await self.refresh_ok(login["refresh_token"])
        self.assertEqual(set(fresh), {"access_token", "refresh_token", "expires_in_ms"})
        self.assertNotEqual(fresh["access_token"], login["access_token"])
        whoami = await self.whoami(fresh["access_token"])
        self.assertEqual(whoami.json["device_id"], login["device_id"])

    @async_test
    async def test_old_refresh_token_works_until_the_new_pair_is_used(self) -> None:
        login = await self.login_ok("alice", refresh_token=True)
        old = login["refresh_token"]
        # The client lost the first answer and refreshes again with the same token.
        lost = await self.refresh_ok(old)
        retried = await self.refresh_ok(old)
        # The pair that was never received is replaced by the retried one.
        await self.assert_token_dead(lost["access_token"])
        self.assertEqual((await self.whoami(retried["access_token"])).code, 200)
        # Using the new access token retired the old refresh token.
        await self.assert_refresh_dead(old)
        again = await self.refresh_ok(retried["refresh_token"])
        self.assertEqual((await self.whoami(again["access_token"])).code, 200)

    @async_test
    async def test_using_the_new_refresh_token_retires_the_old_one(self) -> None:
        login = await self.login_ok("alice", refresh_token=True)
        first = await self.refresh_ok(login["refresh_token"])
        await self.refresh_ok(first["refresh_token"])
        await self.assert_refresh_dead(login["refresh_token"])

    @async_test
    async def test_unknown_refresh_token(self) -> None:
        await self.assert_refresh_dead("syr_not_a_real_token")
        bad = await self.client.post(f"{V3}/refresh", {})
        self.assertEqual(bad.code, 400)
        self.assertEqual(bad.json["errcode"], "M_BAD_JSON")

    @async_test
    async def test_logout_ends_the_refresh_token(self) -> None:
        login = await self.login_ok("alice", refresh_token=True)
        await self.client.post(f"{V3}/logout", {}, login["access_token"])
        await self.assert_refresh_dead(login["refresh_token"])


class ExpiringTokenTests(AccountsTestCase):
    server_config = {
        "refreshable_access_token_lifetime": "300ms",
        "nonrefreshable_access_token_lifetime": "1h",
    }

    @async_test
    async def test_expired_access_token_is_a_soft_logout(self) -> None:
        await self.client.register("alice")
        login = await self.login_ok("alice", refresh_token=True)
        self.assertEqual(login["expires_in_ms"], 300)
        await sleep(0.4)
        await self.assert_token_dead(login["access_token"], soft_logout=True)
        fresh = await self.client.post(f"{V3}/refresh", {"refresh_token": login["refresh_token"]})
        self.assertEqual(fresh.code, 200, fresh.json)
        self.assertEqual((await self.whoami(fresh.json["access_token"])).code, 200)

    @async_test
    async def test_clients_without_refresh_get_the_nonrefreshable_lifetime(self) -> None:
        await self.client.register("alice")
        login = await self.login_ok("alice")
        self.assertEqual(login["expires_in_ms"], 3600 * 1000)
        self.assertNotIn("refresh_token", login)


class ExpiringRefreshTokenTests(AccountsTestCase):
    server_config = {"refresh_token_lifetime": "300ms"}

    @async_test
    async def test_expired_refresh_token_is_refused(self) -> None:
        await self.client.register("alice")
        login = await self.login_ok("alice", refresh_token=True)
        await sleep(0.4)
        response = await self.client.post(
            f"{V3}/refresh", {"refresh_token": login["refresh_token"]}
        )
        self.assertEqual(response.code, 401)
        self.assertEqual(response.json["errcode"], "M_UNKNOWN_TOKEN")
        self.assertIs(response.json["soft_logout"], False)
