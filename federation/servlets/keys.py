"""/_matrix/key/v2: our signing keys, and other servers' keys as a notary."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from federation.server_keys import own_key_document
from homeserver.errors import Codes, MatrixError, bad_json
from homeserver.events.signing import sign_json_object
from homeserver.identifiers import is_valid_server_name

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# A notary asked for more servers than this in one request answers for the first ones only.
MAX_SERVERS_PER_QUERY = 100


def register_routes(router: Router, hs: HomeServer) -> None:
    if any(route.pattern == "/_matrix/key/v2/server" for route in router.routes()):
        return  # a listener naming both "federation" and "keys" registers these once

    def our_document() -> dict[str, Any]:
        now = hs.clock.time_msec()
        return own_key_document(
            hs.server_name,
            hs.signing_key,
            hs.config.old_signing_keys,
            now + hs.config.key_refresh_interval_ms,
        )

    async def server_keys(request: ApiRequest) -> tuple[int, Any]:
        return 200, our_document()

    async def documents(server_name: str, minimum_valid_until_ts: int) -> list[dict[str, Any]]:
        if not is_valid_server_name(server_name):
            return []
        if server_name == hs.server_name:
            return [our_document()]
        found = await hs.keyring.documents_for(server_name, minimum_valid_until_ts)
        # Countersigned by us, so that whoever trusts us as a notary can check the answer.
        return [sign_json_object(copy.deepcopy(d), hs.server_name, hs.signing_key) for d in found]

    async def query_one(request: ApiRequest) -> tuple[int, Any]:
        minimum = request.query_int("minimum_valid_until_ts", hs.clock.time_msec())
        server_name = request.path_params["serverName"]
        if not is_valid_server_name(server_name):
            raise MatrixError(400, Codes.INVALID_PARAM, "Not a valid server name")
        found = await documents(server_name, minimum)
        return 200, {"server_keys": found}

    async def query_many(request: ApiRequest) -> tuple[int, Any]:
        wanted = request.json().get("server_keys")
        if not isinstance(wanted, dict) or not all(isinstance(v, dict) for v in wanted.values()):
            raise bad_json("server_keys must be an object of server names to key criteria")
        now = hs.clock.time_msec()
        answer: list[dict[str, Any]] = []
        for server_name, criteria in list(wanted.items())[:MAX_SERVERS_PER_QUERY]:
            minimum = max(
                (c.get("minimum_valid_until_ts", now) for c in criteria.values()
                 if isinstance(c, dict) and isinstance(c.get("minimum_valid_until_ts", now), int)),
                default=now,
            )
            answer.extend(await documents(server_name, minimum))
        return 200, {"server_keys": answer}

    router.add("GET", "/_matrix/key/v2/server", server_keys, auth="none")
    # The key ID segment is deprecated; every key is returned whatever it says.
    router.add("GET", "/_matrix/key/v2/server/{keyId}", server_keys, auth="none")
    router.add("GET", "/_matrix/key/v2/query/{serverName}", query_one, auth="none")
    router.add("POST", "/_matrix/key/v2/query", query_many, auth="none")
