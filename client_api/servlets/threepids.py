"""Third-party IDs (email addresses): the requestToken endpoints, the pages the links in the
mails open, and /account/3pid.

Only email is validated, and only when the config has an `email` section; otherwise
requestToken says the medium is not supported and /capabilities has m.3pid_changes disabled.
Phone numbers are never supported. Identity servers are not used: bind and unbind say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Response, Router
from client_api.servlets.accounts import password_uia
from homeserver.accounts.threepids import (
    ADD_THREEPID,
    LINK_PATHS,
    PASSWORD_RESET,
    REGISTRATION,
    TokenRequest,
    check_client_secret,
    medium_not_supported,
)
from homeserver.errors import Codes, MatrixError, bad_json, forbidden

if TYPE_CHECKING:
    from homeserver.server import HomeServer

SERVER_NOT_TRUSTED = "M_SERVER_NOT_TRUSTED"
# JSON's safe integers: send_attempt is stored as a 64-bit integer.
_MAX_SEND_ATTEMPT = 2**53
# The pages carry the token and client secret in their URL: they must not leak through a
# Referer, be framed by another site (the reset confirmation is one click), or be cached.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}
_INCOMPLETE_LINK = "This link is incomplete: copy the whole link from the mail."
# The paths of the links in mails: people open them in a browser, so they answer with HTML
# pages, failures included (a JSON error would mean nothing to them).
HTML_PAGE_PATHS = frozenset(f"/{path}" for path in LINK_PATHS.values())


def _user(request: ApiRequest) -> str:
    assert request.requester is not None
    return request.requester.user_id


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise bad_json(f"{key} is required and must be a string")
    return value


def _no_3pid_changes() -> MatrixError:
    return forbidden("Third-party identifiers cannot be changed on this server")


# -- requestToken ------------------------------------------------------------------------------


def _token_request(body: dict[str, Any], purpose: str) -> TokenRequest:
    client_secret = _required_str(body, "client_secret")
    email = _required_str(body, "email")
    send_attempt = body.get("send_attempt")
    if (
        isinstance(send_attempt, bool)
        or not isinstance(send_attempt, int)
        or abs(send_attempt) > _MAX_SEND_ATTEMPT
    ):
        raise bad_json("send_attempt is required and must be an integer")
    # next_link is accepted but not followed: redirecting wherever a requester asked, from a
    # page reached through a mail, would make this server an open redirect.
    next_link = body.get("next_link")
    if next_link is not None and not isinstance(next_link, str):
        raise bad_json("next_link must be a string")
    return TokenRequest(purpose, client_secret, email, send_attempt)


def _register_request_token(router: Router, hs: HomeServer) -> None:
    async def request_token(request: ApiRequest, purpose: str) -> tuple[int, Any]:
        token_request = _token_request(request.json(), purpose)
        sid = await hs.threepids.request_email_token(token_request, request.client_ip)
        # No submit_url: the mail holds a link, so the client has nothing to submit.
        return 200, {"sid": sid}

    async def for_registration(request: ApiRequest) -> tuple[int, Any]:
        hs.accounts.registration_flows()  # 403 when registration is closed
        return await request_token(request, REGISTRATION)

    async def for_adding(request: ApiRequest) -> tuple[int, Any]:
        return await request_token(request, ADD_THREEPID)

    async def for_password_reset(request: ApiRequest) -> tuple[int, Any]:
        return await request_token(request, PASSWORD_RESET)

    async def msisdn(request: ApiRequest) -> tuple[int, Any]:
        request.json()
        raise medium_not_supported()

    # No access token in the spec for any of them: they come before the account has the
    # address, or before its owner can log in.
    for path, handler in (
        ("/register", for_registration),
        ("/account/3pid", for_adding),
        ("/account/password", for_password_reset),
    ):
        router.add_client("POST", f"{path}/email/requestToken", handler, auth="none")
        router.add_client("POST", f"{path}/msisdn/requestToken", msisdn, auth="none")


# -- the links in the mails --------------------------------------------------------------------


def _page(hs: HomeServer, template: str, status: int, **variables: Any) -> Response:
    html = hs.templates.render(template, **variables)
    return Response(status, html.encode("utf-8"), "text/html; charset=utf-8", dict(_PAGE_HEADERS))


def _link_params(request: ApiRequest) -> tuple[str, str, str] | None:
    """(sid, client_secret, token) from the query (or a form post), or None if incomplete."""
    values = tuple(request.query_str(name) for name in ("sid", "client_secret", "token"))
    if any(not value for value in values):
        return None
    return values  # type: ignore[return-value]


def _register_links(router: Router, hs: HomeServer) -> None:
    def failure(purpose: str, reason: str) -> Response:
        return _page(hs, f"{purpose}_failure.html", 400, failure_reason=reason)

    async def validate(request: ApiRequest, purpose: str) -> Response:
        params = _link_params(request)
        if params is None:
            return failure(purpose, _INCOMPLETE_LINK)
        problem = await hs.threepids.validate_link(purpose, *params)
        if problem is not None:
            return failure(purpose, problem)
        return _page(hs, f"{purpose}_success.html", 200)

    async def registration(request: ApiRequest) -> Response:
        return await validate(request, REGISTRATION)

    async def adding(request: ApiRequest) -> Response:
        return await validate(request, ADD_THREEPID)

    async def confirm_reset(request: ApiRequest) -> Response:
        # Opening the link only asks for confirmation: a mail scanner that fetches every
        # link must not validate a reset that someone else requested for this address.
        params = _link_params(request)
        if params is None:
            return failure(PASSWORD_RESET, _INCOMPLETE_LINK)
        problem = await hs.threepids.link_problem(PASSWORD_RESET, *params)
        if problem is not None:
            return failure(PASSWORD_RESET, problem)
        sid, client_secret, token = params
        return _page(
            hs,
            "password_reset_confirmation.html",
            200,
            sid=sid,
            client_secret=client_secret,
            token=token,
        )

    async def confirmed_reset(request: ApiRequest) -> Response:
        return await validate(request, PASSWORD_RESET)

    for purpose, handler in ((REGISTRATION, registration), (ADD_THREEPID, adding)):
        router.add("GET", f"/{LINK_PATHS[purpose]}", handler, auth="none")
    router.add("GET", f"/{LINK_PATHS[PASSWORD_RESET]}", confirm_reset, auth="none")
    router.add("POST", f"/{LINK_PATHS[PASSWORD_RESET]}", confirmed_reset, auth="none")


# -- /account/3pid -----------------------------------------------------------------------------


def _register_account_threepids(router: Router, hs: HomeServer) -> None:
    async def list_threepids(request: ApiRequest) -> tuple[int, Any]:
        threepids = await hs.threepids.list_threepids(_user(request))
        return 200, {
            "threepids": [
                {
                    "medium": t.medium,
                    "address": t.address,
                    "validated_at": t.validated_at,
                    "added_at": t.added_at,
                }
                for t in threepids
            ]
        }

    async def add_deprecated(request: ApiRequest) -> tuple[int, Any]:
        # The spec made this the same as /bind: adding through an identity server.
        if not isinstance(request.json().get("three_pid_creds"), dict):
            raise bad_json("three_pid_creds is required and must be an object")
        raise forbidden("Use /account/3pid/add: this server does not use identity servers")

    async def add(request: ApiRequest) -> tuple[int, Any]:
        body = request.json()
        client_secret = _required_str(body, "client_secret")
        sid = _required_str(body, "sid")
        if not hs.threepids.enabled:
            raise _no_3pid_changes()
        check_client_secret(client_secret)
        # Before asking for the password: clients call this to find out whether the link
        # was followed yet, and this is the answer they expect when it was not.
        try:
            threepid = await hs.threepids.validated(ADD_THREEPID, sid, client_secret)
        except MatrixError as error:
            raise MatrixError(400, Codes.THREEPID_AUTH_FAILED, error.message) from None
        await password_uia(hs, request, body)
        await hs.threepids.add(_user(request), threepid)
        return 200, {}

    async def delete(request: ApiRequest) -> tuple[int, Any]:
        body = request.json()
        medium = _required_str(body, "medium")
        address = _required_str(body, "address")
        if body.get("id_server") is not None and not isinstance(body["id_server"], str):
            raise bad_json("id_server must be a string")
        if medium not in ("email", "msisdn"):
            raise MatrixError(400, Codes.INVALID_PARAM, "medium must be 'email' or 'msisdn'")
        if not hs.threepids.enabled:
            raise _no_3pid_changes()
        await hs.threepids.remove(_user(request), medium, address)
        # Nothing was bound to an identity server through us, so there is nothing to unbind.
        return 200, {"id_server_unbind_result": "no-support"}

    async def bind(request: ApiRequest) -> tuple[int, Any]:
        body = request.json()
        for key in ("client_secret", "id_server", "id_access_token", "sid"):
            _required_str(body, key)
        raise MatrixError(
            400, SERVER_NOT_TRUSTED, "This server does not work with identity servers"
        )

    async def unbind(request: ApiRequest) -> tuple[int, Any]:
        body = request.json()
        _required_str(body, "medium")
        _required_str(body, "address")
        # The spec's own answer when the homeserver cannot unbind: nothing was done.
        return 200, {"id_server_unbind_result": "no-support"}

    router.add_client("GET", "/account/3pid", list_threepids)
    router.add_client("POST", "/account/3pid", add_deprecated)
    router.add_client("POST", "/account/3pid/add", add)
    router.add_client("POST", "/account/3pid/delete", delete)
    router.add_client("POST", "/account/3pid/bind", bind)
    router.add_client("POST", "/account/3pid/unbind", unbind)


def register_routes(router: Router, hs: HomeServer) -> None:
    _register_request_token(router, hs)
    _register_links(router, hs)
    _register_account_threepids(router, hs)
