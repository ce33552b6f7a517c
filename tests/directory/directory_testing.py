"""What the directory, spaces and upgrade tests share: room helpers over real HTTP."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from twisted.internet import defer

from tests.client.client_testing import V3, ClientTestCase
from tests.harness import TestServer

V1 = "/_matrix/client/v1"


def join_rules(rule: str, *allowed: str) -> dict[str, Any]:
    """An initial_state entry for /createRoom; `allowed` rooms make m.room_membership rules."""
    content: dict[str, Any] = {"join_rule": rule}
    if allowed:
        content["allow"] = [{"type": "m.room_membership", "room_id": r} for r in allowed]
    return {"type": "m.room.join_rules", "content": content}


class DirectoryTestCase(ClientTestCase):
    """ClientTestCase with config overrides per class and short helpers for rooms."""

    config: dict[str, Any] = {}

    def setUp(self) -> defer.Deferred:
        self.server = TestServer(**self.config)
        return defer.ensureDeferred(self._start())

    def room(self, room_id: str, rest: str) -> str:
        return f"{V3}/rooms/{quote(room_id)}/{rest}"

    async def create(self, token: str | None = None, **body: Any) -> str:
        response = await self.client.post(f"{V3}/createRoom", body, token or self.alice_token)
        assert response.code == 200, response.json
        return response.json["room_id"]

    async def create_space(self, token: str | None = None, **body: Any) -> str:
        creation = {"type": "m.space", **body.pop("creation_content", {})}
        return await self.create(token, creation_content=creation, **body)

    async def put_state(
        self,
        room_id: str,
        event_type: str,
        content: dict[str, Any],
        state_key: str = "",
        token=None,
    ) -> str:
        response = await self.client.put(
            self.room(room_id, f"state/{event_type}/{quote(state_key)}"),
            content,
            token or self.alice_token,
        )
        assert response.code == 200, response.json
        return response.json["event_id"]

    async def get_state(self, room_id: str, event_type: str, state_key: str = "", token=None):
        return await self.client.get(
            self.room(room_id, f"state/{event_type}/{quote(state_key)}"), token or self.alice_token
        )

    async def add_child(self, space: str, child: str, **content: Any) -> None:
        await self.put_state(space, "m.space.child", {"via": ["test.local"], **content}, child)

    async def join(self, room_id: str, token: str) -> Any:
        return await self.client.post(f"{V3}/join/{quote(room_id)}", {}, token)

    async def invite(self, room_id: str, user_id: str, token: str | None = None) -> None:
        response = await self.client.post(
            self.room(room_id, "invite"), {"user_id": user_id}, token or self.alice_token
        )
        assert response.code == 200, response.json

    async def sync(self, token: str, since: str | None = None) -> dict[str, Any]:
        query = "timeout=0" + (f"&since={quote(since)}" if since else "")
        response = await self.client.get(f"{V3}/sync?{query}", token)
        assert response.code == 200, response.json
        return response.json
