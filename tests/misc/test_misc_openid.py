"""OpenID: a token from /user/{userId}/openid/request_token, checked through federation."""

from __future__ import annotations

from urllib.parse import quote

from client_api.site import build_router
from homeserver.accounts.auth import hash_token
from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase

USERINFO = "/_matrix/federation/v1/openid/userinfo"


class OpenIdTests(ClientTestCase):
    async def request_token(self, body: object = None) -> dict:
        response = await self.client.post(
            f"{V3}/user/{quote(self.alice)}/openid/request_token",
            {} if body is None else body,
            self.alice_token,
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json

    @async_test
    async def test_token_round_trip(self) -> None:
        token = await self.request_token()
        self.assertEqual(token["token_type"], "Bearer")
        self.assertEqual(token["matrix_server_name"], "test.local")
        self.assertEqual(token["expires_in"], 3600)
        self.assertIsInstance(token["access_token"], str)
        info = await self.client.get(f"{USERINFO}?access_token={quote(token['access_token'])}")
        self.assertEqual((info.code, info.json), (200, {"sub": self.alice}))
        # Each request gives a new token; the old one keeps working until it expires.
        second = await self.request_token()
        self.assertNotEqual(second["access_token"], token["access_token"])
        again = await self.client.get(f"{USERINFO}?access_token={quote(token['access_token'])}")
        self.assertEqual(again.json, {"sub": self.alice})

    @async_test
    async def test_openid_token_is_not_an_access_token(self) -> None:
        token = (await self.request_token())["access_token"]
        whoami = await self.client.get(f"{V3}/account/whoami", token)
        self.assertEqual((whoami.code, whoami.json["errcode"]), (401, "M_UNKNOWN_TOKEN"))
        # Nor is an access token an OpenID token.
        info = await self.client.get(f"{USERINFO}?access_token={quote(self.alice_token)}")
        self.assertEqual((info.code, info.json["errcode"]), (401, "M_UNKNOWN_TOKEN"))

    @async_test
    async def test_bad_or_missing_token(self) -> None:
        unknown = await self.client.get(f"{USERINFO}?access_token=nope")
        self.assertEqual((unknown.code, unknown.json["errcode"]), (401, "M_UNKNOWN_TOKEN"))
        missing = await self.client.get(USERINFO)
        self.assertEqual((missing.code, missing.json["errcode"]), (401, "M_MISSING_TOKEN"))

    @async_test
    async def test_expired_token_refused(self) -> None:
        token = (await self.request_token())["access_token"]
        store = self.server.hs.storage.openid
        now = self.server.hs.clock.time_msec()
        self.assertEqual(await store.get_user(hash_token(token), now), self.alice)
        # An hour later the token is worthless.
        self.assertIsNone(await store.get_user(hash_token(token), now + 3600 * 1000 + 1))

    @async_test
    async def test_only_for_yourself(self) -> None:
        response = await self.client.post(
            f"{V3}/user/{quote(self.bob)}/openid/request_token", {}, self.alice_token
        )
        self.assertEqual((response.code, response.json["errcode"]), (403, "M_FORBIDDEN"))
        anonymous = await self.client.post(f"{V3}/user/{quote(self.alice)}/openid/request_token")
        self.assertEqual((anonymous.code, anonymous.json["errcode"]), (401, "M_MISSING_TOKEN"))
        not_json = await self.client.request(
            "POST",
            f"{V3}/user/{quote(self.alice)}/openid/request_token",
            raw=b"not json",
            token=self.alice_token,
        )
        self.assertEqual((not_json.code, not_json.json["errcode"]), (400, "M_NOT_JSON"))

    @async_test
    async def test_expired_tokens_are_cleaned_up(self) -> None:
        store = self.server.hs.storage.openid
        await store.add_token("old", self.alice, 1000, 2000)
        await store.add_token("new", self.alice, 5000, 9000)
        rows = await self.server.hs.db.run(
            "t", lambda txn: txn.query("SELECT token_hash FROM openid_tokens ORDER BY token_hash")
        )
        self.assertEqual([r[0] for r in rows], ["new"])

    @async_test
    async def test_served_by_the_openid_resource_too(self) -> None:
        for names in ({"openid"}, {"federation", "openid"}, {"federation"}):
            router = build_router(self.server.hs, frozenset(names))
            route, _ = router.find("GET", USERINFO.split("/")[1:])
            self.assertEqual(route.auth, "none")
        client_only = build_router(self.server.hs, frozenset({"client"}))
        self.assertFalse(any(r.pattern == USERINFO for r in client_only.routes()))
