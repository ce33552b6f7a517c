"""Access tokens, auth modes, and how errors are rendered."""

from __future__ import annotations

import logging

from client_api.http import ApiRequest, Router
from homeserver.errors import Codes, InteractiveAuthRequired, LimitExceeded, MatrixError
from tests.http.http_testing import HttpTestCase, echo


class AuthTests(HttpTestCase):
    def setUp(self) -> None:
        super().setUp()
        router = Router()
        router.add("GET", "/required", echo)
        router.add("GET", "/optional", echo, auth="optional")
        router.add("GET", "/none", echo, auth="none")
        router.add("GET", "/guests", echo, allow_guest=True)
        self.start(router)

    async def test_missing_token(self) -> None:
        code, body = await self.json_of("GET", "/required")
        self.assertEqual(code, 401)
        self.assertEqual(body, {"errcode": "M_MISSING_TOKEN", "error": "Missing access token"})

    async def test_bearer_header(self) -> None:
        code, body = await self.json_of(
            "GET", "/required", headers={"Authorization": "Bearer alice_token"}
        )
        self.assertEqual((code, body["user_id"]), (200, "@alice:test"))
        self.assertEqual(body["access_token"], "alice_token")

    async def test_query_parameter_token_is_used_and_hidden_from_args(self) -> None:
        code, body = await self.json_of("GET", "/required?access_token=alice_token&x=1")
        self.assertEqual((code, body["user_id"]), (200, "@alice:test"))
        self.assertEqual(body["args"], {"x": ["1"]})

    async def test_unknown_token_is_the_authenticators_error(self) -> None:
        code, body = await self.json_of(
            "GET", "/required", headers={"Authorization": "Bearer nope"}
        )
        self.assertEqual((code, body["errcode"]), (401, "M_UNKNOWN_TOKEN"))

    async def test_malformed_authorization_header(self) -> None:
        for value in ("Basic abc", "Bearer", "Bearer  "):
            code, body = await self.json_of("GET", "/required", headers={"Authorization": value})
            self.assertEqual((code, body["errcode"]), (401, "M_MISSING_TOKEN"), value)

    async def test_optional_auth(self) -> None:
        code, body = await self.json_of("GET", "/optional")
        self.assertEqual((code, body["user_id"]), (200, None))
        code, body = await self.json_of("GET", "/optional?access_token=alice_token")
        self.assertEqual(body["user_id"], "@alice:test")
        code, body = await self.json_of("GET", "/optional?access_token=bad")
        self.assertEqual((code, body["errcode"]), (401, "M_UNKNOWN_TOKEN"))

    async def test_no_auth_ignores_tokens(self) -> None:
        code, body = await self.json_of("GET", "/none?access_token=bad")
        self.assertEqual((code, body["user_id"], body["access_token"]), (200, None, None))

    async def test_guests_only_where_allowed(self) -> None:
        code, body = await self.json_of("GET", "/required?access_token=guest_token")
        self.assertEqual((code, body["errcode"]), (403, "M_GUEST_ACCESS_FORBIDDEN"))
        code, body = await self.json_of("GET", "/guests?access_token=guest_token")
        self.assertEqual((code, body["user_id"]), (200, "@guest:test"))


async def raise_matrix_error(request: ApiRequest):
    raise MatrixError(
        400,
        "M_CUSTOM",
        "Custom problem",
        extra={"detail": {"a": 1}},
        headers={"X-Why": "because"},
    )


async def raise_limit(request: ApiRequest):
    raise LimitExceeded(2500)


async def raise_uia(request: ApiRequest):
    raise InteractiveAuthRequired({"flows": [{"stages": ["m.login.password"]}], "session": "s"})


async def raise_bug(request: ApiRequest):
    raise RuntimeError("secret internal detail")


async def return_unserialisable(request: ApiRequest):
    return 200, {"x": object()}


async def return_garbage(request: ApiRequest):
    return {"no": "status"}


class ErrorRenderingTests(HttpTestCase):
    def setUp(self) -> None:
        super().setUp()
        router = Router()
        for path, handler in {
            "/matrix-error": raise_matrix_error,
            "/limit": raise_limit,
            "/uia": raise_uia,
            "/bug": raise_bug,
            "/unserialisable": return_unserialisable,
            "/garbage": return_garbage,
        }.items():
            router.add("GET", path, handler, auth="none")
        self.start(router)
        self.log = self.capture_log("client_api.http")

    async def test_matrix_error_with_extra_and_headers(self) -> None:
        response = await self.request("GET", "/matrix-error")
        self.assertEqual(response.code, 400)
        self.assertEqual(
            await response.json(),
            {"errcode": "M_CUSTOM", "error": "Custom problem", "detail": {"a": 1}},
        )
        self.assertEqual(response.headers.getRawHeaders(b"X-Why"), [b"because"])
        self.assertEqual(response.headers.getRawHeaders(b"Access-Control-Allow-Origin"), [b"*"])

    async def test_limit_exceeded_has_retry_after(self) -> None:
        response = await self.request("GET", "/limit")
        self.assertEqual(response.code, 429)
        self.assertEqual(
            await response.json(),
            {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 2500},
        )
        self.assertEqual(response.headers.getRawHeaders(b"Retry-After"), [b"3"])

    async def test_interactive_auth_body(self) -> None:
        code, body = await self.json_of("GET", "/uia")
        self.assertEqual(code, 401)
        self.assertEqual(body, {"flows": [{"stages": ["m.login.password"]}], "session": "s"})

    async def test_unexpected_exception_is_500_without_traceback(self) -> None:
        response = await self.request("GET", "/bug")
        self.assertEqual(response.code, 500)
        text = await response.text()
        self.assertEqual(text, '{"errcode":"M_UNKNOWN","error":"Internal server error"}')
        self.assertNotIn("secret", text)
        errors = [r for r in self.log.records if r.levelno >= logging.ERROR]
        self.assertEqual(len(errors), 1)
        self.assertIsNotNone(errors[0].exc_info)
        self.assertIn("secret internal detail", str(errors[0].exc_info[1]))

    async def test_bad_handler_results_are_500(self) -> None:
        for path in ("/unserialisable", "/garbage"):
            code, body = await self.json_of("GET", path)
            self.assertEqual((code, body["errcode"]), (500, Codes.UNKNOWN), path)
