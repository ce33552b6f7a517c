"""POST /account/password and /account/deactivate (with user-interactive auth)."""

from __future__ import annotations

from urllib.parse import quote

from tests.accounts.accounts_testing import PASSWORD, V3, AccountsTestCase, password_auth
from tests.asyncutil import async_test

PASSWORD_PATH = f"{V3}/account/password"
DEACTIVATE = f"{V3}/account/deactivate"


class PasswordChangeTests(AccountsTestCase):
    async def _start(self) -> None:
        await super()._start()
        self.alice, self.token = await self.client.register("alice")
        self.other = (await self.login_ok("alice"))["access_token"]

    @async_test
    async def test_change_password_logs_out_other_devices(self) -> None:
        response = await self.with_password(
            "POST", PASSWORD_PATH, {"new_password": "new secret"}, self.token, self.alice
        )
        self.assertEqual((response.code, response.json), (200, {}))
        self.assertEqual((await self.whoami(self.token)).code, 200)
        await self.assert_token_dead(self.other)
        old = await self.login("alice", PASSWORD)
        self.assertEqual(old.code, 403)
        await self.login_ok("alice", "new secret")

    @async_test
    async def test_logout_devices_false_keeps_them(self) -> None:
        body = {"new_password": "new secret", "logout_devices": False}
        response = await self.with_password("POST", PASSWORD_PATH, body, self.token, "alice")
        self.assertEqual(response.code, 200)
        self.assertEqual((await self.whoami(self.other)).code, 200)

    @async_test
    async def test_wrong_password_fails_the_stage_and_can_be_retried(self) -> None:
        body = {"new_password": "new secret"}
        session = await self.uia_session("POST", PASSWORD_PATH, body, self.token)
        wrong = await self.client.post(
            PASSWORD_PATH, {**body, "auth": password_auth(self.alice, "wrong", session)}, self.token
        )
        self.assertEqual(wrong.code, 401)
        self.assertEqual(wrong.json["errcode"], "M_FORBIDDEN")
        self.assertEqual(wrong.json["session"], session)
        self.assertEqual(wrong.json["flows"], [{"stages": ["m.login.password"]}])
        self.assertNotIn("completed", wrong.json)
        right = await self.client.post(
            PASSWORD_PATH,
            {**body, "auth": password_auth(self.alice, PASSWORD, session)},
            self.token,
        )
        self.assertEqual(right.code, 200, right.json)

    @async_test
    async def test_password_stage_must_name_the_requester(self) -> None:
        await self.client.register("bob")
        body = {"new_password": "new secret"}
        session = await self.uia_session("POST", PASSWORD_PATH, body, self.token)
        response = await self.client.post(
            PASSWORD_PATH, {**body, "auth": password_auth("bob", PASSWORD, session)}, self.token
        )
        self.assertEqual(response.code, 401)
        self.assertEqual(response.json["errcode"], "M_FORBIDDEN")

    @async_test
    async def test_session_of_another_user_is_refused(self) -> None:
        _, bob_token = await self.client.register("bob")
        body = {"new_password": "new secret"}
        session = await self.uia_session("POST", PASSWORD_PATH, body, bob_token)
        response = await self.client.post(
            PASSWORD_PATH, {**body, "auth": password_auth("alice", PASSWORD, session)}, self.token
        )
        self.assertEqual(response.code, 403)
        self.assertEqual(response.json["errcode"], "M_FORBIDDEN")

    @async_test
    async def test_completed_session_cannot_be_replayed(self) -> None:
        body = {"new_password": "new secret"}
        session = await self.uia_session("POST", PASSWORD_PATH, body, self.token)
        auth = password_auth(self.alice, PASSWORD, session)
        first = await self.client.post(PASSWORD_PATH, {**body, "auth": auth}, self.token)
        self.assertEqual(first.code, 200)
        replay = await self.client.post(
            PASSWORD_PATH, {"new_password": "evil", "auth": {"session": session}}, self.token
        )
        self.assertEqual(replay.code, 400)
        self.assertEqual(replay.json["errcode"], "M_UNKNOWN")

    @async_test
    async def test_bad_requests(self) -> None:
        no_token = await self.client.post(PASSWORD_PATH, {"new_password": "x"})
        self.assertEqual(no_token.code, 401)
        self.assertEqual(no_token.json["errcode"], "M_MISSING_TOKEN")
        too_long = await self.client.post(PASSWORD_PATH, {"new_password": "x" * 600}, self.token)
        self.assertEqual(too_long.json["errcode"], "M_BAD_JSON")
        missing = await self.with_password("POST", PASSWORD_PATH, {}, self.token, "alice")
        self.assertEqual(missing.code, 400)
        self.assertEqual(missing.json["errcode"], "M_BAD_JSON")


class DeactivationTests(AccountsTestCase):
    async def _start(self) -> None:
        await super()._start()
        self.alice, self.token = await self.client.register("alice")
        self.bob, self.bob_token = await self.client.register("bob")

    async def create_room(self) -> str:
        response = await self.client.post(
            f"{V3}/createRoom", {"preset": "public_chat"}, self.bob_token
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json["room_id"]

    async def membership(self, room_id: str, user_id: str) -> str | None:
        response = await self.client.get(f"{V3}/rooms/{quote(room_id)}/members", self.bob_token)
        self.assertEqual(response.code, 200, response.json)
        for event in response.json["chunk"]:
            if event["state_key"] == user_id:
                return event["content"]["membership"]
        return None

    @async_test
    async def test_deactivate_leaves_rooms_and_locks_the_account(self) -> None:
        joined = await self.create_room()
        invited = await self.create_room()
        join = await self.client.post(f"{V3}/rooms/{quote(joined)}/join", {}, self.token)
        self.assertEqual(join.code, 200, join.json)
        invite = await self.client.post(
            f"{V3}/rooms/{quote(invited)}/invite", {"user_id": self.alice}, self.bob_token
        )
        self.assertEqual(invite.code, 200, invite.json)
        other = (await self.login_ok("alice"))["access_token"]

        response = await self.with_password("POST", DEACTIVATE, {}, self.token, self.alice)
        self.assertEqual(response.code, 200, response.json)
        self.assertEqual(response.json, {"id_server_unbind_result": "success"})

        self.assertEqual(await self.membership(joined, self.alice), "leave")
        self.assertEqual(await self.membership(invited, self.alice), "leave")
        await self.assert_token_dead(self.token)
        await self.assert_token_dead(other)
        login = await self.login("alice")
        self.assertEqual(login.code, 403)
        self.assertEqual(login.json["errcode"], "M_USER_DEACTIVATED")
        profile = await self.client.get(f"{V3}/profile/{quote(self.alice)}")
        self.assertEqual((profile.code, profile.json), (200, {}))
        # The user ID stays taken: it must never name someone else.
        again = await self.client.post(
            f"{V3}/register",
            {"username": "alice", "password": PASSWORD, "auth": {"type": "m.login.dummy"}},
        )
        self.assertEqual(again.json["errcode"], "M_USER_IN_USE")

    @async_test
    async def test_deactivate_needs_the_password(self) -> None:
        session = await self.uia_session("POST", DEACTIVATE, {}, self.token)
        wrong = await self.client.post(
            DEACTIVATE, {"auth": password_auth(self.alice, "wrong", session)}, self.token
        )
        self.assertEqual(wrong.code, 401)
        self.assertEqual(wrong.json["errcode"], "M_FORBIDDEN")
        self.assertEqual((await self.whoami(self.token)).code, 200)

    @async_test
    async def test_session_is_bound_to_its_endpoint(self) -> None:
        # A password entered to change the password does not authorise deactivation.
        session = await self.uia_session("POST", PASSWORD_PATH, {"new_password": "x"}, self.token)
        response = await self.client.post(
            DEACTIVATE, {"auth": password_auth(self.alice, PASSWORD, session)}, self.token
        )
        self.assertEqual(response.code, 403)
        self.assertEqual(response.json["errcode"], "M_FORBIDDEN")
        self.assertEqual((await self.whoami(self.token)).code, 200)
