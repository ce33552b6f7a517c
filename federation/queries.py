"""Questions we ask other servers on behalf of local users: aliases and profiles."""

from __future__ import annotations

from typing import Any

from federation.client import FederationClient, FederationError
from homeserver.errors import Codes, MatrixError, not_found
from homeserver.identifiers import server_of


async def query_directory(client: FederationClient, alias: str) -> tuple[str, list[str]]:
    """(room ID, servers) for another server's alias, asked of that server."""
    try:
        answer = await client.get_json(
            server_of(alias), "/_matrix/federation/v1/query/directory", {"room_alias": alias}
        )
    except FederationError as e:
        if e.code == 404:
            raise not_found("Room alias not found") from None
        raise MatrixError(502, Codes.UNKNOWN, f"Could not ask {server_of(alias)}: {e}") from None
    room_id = answer.get("room_id") if isinstance(answer, dict) else None
    servers: Any = answer.get("servers") if isinstance(answer, dict) else None
    if not isinstance(room_id, str) or not isinstance(servers, list):
        raise MatrixError(502, Codes.UNKNOWN, f"{server_of(alias)} gave an invalid answer")
    return room_id, [s for s in servers if isinstance(s, str)]
