"""Checks the X-Matrix signature on every request another server sends us."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from federation.request_auth import AuthHeaderError, parse_authorization_header, request_json
from homeserver.errors import Codes, MatrixError
from homeserver.events.canonical_json import parse_json_object
from homeserver.events.signing import SignatureError

if TYPE_CHECKING:
    from client_api.http import ApiRequest
    from federation.keyring import Keyring


def _unauthorized(message: str) -> MatrixError:
    return MatrixError(401, Codes.UNAUTHORIZED, message)


class ServerAuthenticator:
    def __init__(
        self,
        server_name: str,
        keyring: Keyring,
        domain_whitelist: frozenset[str] | None,
        now_ms: Callable[[], int],
    ) -> None:
        self.server_name = server_name
        self.keyring = keyring
        self.domain_whitelist = domain_whitelist
        self.now_ms = now_ms

    async def __call__(self, request: ApiRequest) -> str:
        """The origin server of a validly signed request; 401 M_UNAUTHORIZED otherwise."""
        header = request.header("Authorization")
        if header is None:
            raise _unauthorized("Missing X-Matrix Authorization header")
        try:
            auth = parse_authorization_header(header)
        except AuthHeaderError as e:
            raise _unauthorized(str(e)) from None
        if auth.destination is not None and auth.destination != self.server_name:
            raise _unauthorized(f"Request is for {auth.destination}, not this server")
        if self.domain_whitelist is not None and auth.origin not in self.domain_whitelist:
            raise MatrixError(403, Codes.FORBIDDEN, "Federation with your server is not allowed")
        content = parse_json_object(request.body) if request.body else None
        signed = request_json(
            request.method, _target(request), auth.origin, self.server_name, content
        )
        signed["signatures"] = {auth.origin: {auth.key: auth.sig}}
        try:
            await self.keyring.verify_json(auth.origin, signed, self.now_ms())
        except SignatureError as e:
            raise _unauthorized(f"Invalid request signature: {e}") from None
        return auth.origin


def _target(request: ApiRequest) -> str:
    # Exactly what the sender signed: the path and query as they arrived, still encoded.
    return request.raw.uri.decode("ascii", "replace")
