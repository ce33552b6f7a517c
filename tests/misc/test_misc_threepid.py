"""Third-party IDs on a server without an email section, and endpoints this server does not
implement. (With email: tests/email.)"""

from __future__ import annotations

from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase


class ThreepidTests(ClientTestCase):
    @async_test
    async def test_list_is_empty(self) -> None:
        response = await self.client.get(f"{V3}/account/3pid", self.alice_token)
        self.assertEqual((response.code, response.json), (200, {"threepids": []}))
        anonymous = await self.client.get(f"{V3}/account/3pid")
        self.assertEqual(anonymous.code, 401)

    @async_test
    async def test_capability_says_no_changes(self) -> None:
        response = await self.client.get(f"{V3}/capabilities", self.alice_token)
        self.assertEqual(response.json["capabilities"]["m.3pid_changes"], {"enabled": False})

    @async_test
    async def test_changes_refused(self) -> None:
        creds = {
            "client_secret": "s",
            "sid": "1",
            "id_server": "id.example",
            "id_access_token": "t",
        }
        cases = [
            ("/account/3pid/add", {"client_secret": "s", "sid": "1"}, 403, "M_FORBIDDEN"),
            ("/account/3pid", {"three_pid_creds": creds}, 403, "M_FORBIDDEN"),
            ("/account/3pid/delete", {"medium": "email", "address": "a@b.c"}, 403, "M_FORBIDDEN"),
            ("/account/3pid/bind", creds, 400, "M_SERVER_NOT_TRUSTED"),
            # Malformed requests are told so first.
            ("/account/3pid/add", {"sid": "1"}, 400, "M_BAD_JSON"),
            ("/account/3pid", {}, 400, "M_BAD_JSON"),
            ("/account/3pid/delete", {"medium": "email"}, 400, "M_BAD_JSON"),
            ("/account/3pid/bind", {"sid": "1"}, 400, "M_BAD_JSON"),
            ("/account/3pid/unbind", {"address": "a@b.c"}, 400, "M_BAD_JSON"),
        ]
        for path, body, status, errcode in cases:
            response = await self.client.post(V3 + path, body, self.alice_token)
            self.assertEqual((response.code, response.json["errcode"]), (status, errcode), path)
        listed = await self.client.get(f"{V3}/account/3pid", self.alice_token)
        self.assertEqual(listed.json, {"threepids": []})

    @async_test
    async def test_unbind_says_no_support(self) -> None:
        response = await self.client.post(
            f"{V3}/account/3pid/unbind", {"medium": "email", "address": "a@b.c"}, self.alice_token
        )
        self.assertEqual(
            (response.code, response.json), (200, {"id_server_unbind_result": "no-support"})
        )

    @async_test
    async def test_request_token_medium_not_supported(self) -> None:
        email = {"client_secret": "s", "email": "a@b.c", "send_attempt": 1}
        msisdn = {
            "client_secret": "s",
            "country": "GB",
            "phone_number": "07700900001",
            "send_attempt": 1,
        }
        for path in ("/register", "/account/3pid", "/account/password"):
            for medium, body in (("email", email), ("msisdn", msisdn)):
                # No access token needed (nor given) for these.
                response = await self.client.post(f"{V3}{path}/{medium}/requestToken", body)
                self.assertEqual(
                    (response.code, response.json["errcode"]),
                    (400, "M_THREEPID_MEDIUM_NOT_SUPPORTED"),
                    f"{path}/{medium}",
                )
        not_json = await self.client.request(
            "POST", f"{V3}/account/3pid/email/requestToken", raw=b"{nope"
        )
        self.assertEqual((not_json.code, not_json.json["errcode"]), (400, "M_NOT_JSON"))


class UnrecognizedTests(ClientTestCase):
    @async_test
    async def test_unimplemented_spec_endpoints_are_unrecognized(self) -> None:
        # Real endpoints of the spec that this server does not serve: never a fake success.
        for method, path in (
            ("POST", "/_matrix/client/v1/login/get_token"),
            ("GET", f"{V3}/thirdparty/protocols"),
            ("GET", f"{V3}/thirdparty/location/irc"),
        ):
            response = await self.client.request(method, path, {}, token=self.alice_token)
            self.assertEqual(
                (response.code, response.json["errcode"]), (404, "M_UNRECOGNIZED"), path
            )

    @async_test
    async def test_wrong_method_on_known_path(self) -> None:
        response = await self.client.get(f"{V3}/account/3pid/add", self.alice_token)
        self.assertEqual((response.code, response.json["errcode"]), (405, "M_UNRECOGNIZED"))
        self.assertIn("POST", response.headers.getRawHeaders("Allow")[0])


class PasswordResetWithoutEmailTests(ClientTestCase):
    @async_test
    async def test_password_change_needs_a_token(self) -> None:
        response = await self.client.post(f"{V3}/account/password", {"new_password": "x"})
        self.assertEqual((response.code, response.json["errcode"]), (401, "M_MISSING_TOKEN"))
