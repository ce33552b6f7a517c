"""What the relations, threads, context and search tests share: rooms, sends and redactions."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

from tests.client.client_testing import V3, ClientTestCase

V1 = "/_matrix/client/v1"
_txn = itertools.count()


class RoomsTestCase(ClientTestCase):
    users = ("alice", "bob", "carol")

    async def create_room(self, token: str, **body: Any) -> str:
        response = await self.client.post(f"{V3}/createRoom", body, token)
        assert response.code == 200, response.json
        return response.json["room_id"]

    async def join(self, room_id: str, token: str) -> None:
        response = await self.client.post(f"{V3}/rooms/{quote(room_id)}/join", {}, token)
        assert response.code == 200, response.json

    async def send(
        self, room_id: str, content: dict[str, Any], token: str, event_type: str = "m.room.message"
    ) -> str:
        path = f"{V3}/rooms/{quote(room_id)}/send/{event_type}/t{next(_txn)}"
        response = await self.client.put(path, content, token)
        assert response.code == 200, response.json
        return response.json["event_id"]

    async def say(self, room_id: str, body: str, token: str, **relates_to: Any) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": body}
        if relates_to:
            content["m.relates_to"] = relates_to
        return await self.send(room_id, content, token)

    async def edit(self, room_id: str, original: str, body: str, token: str) -> str:
        content = {
            "msgtype": "m.text",
            "body": f"* {body}",
            "m.new_content": {"msgtype": "m.text", "body": body},
            "m.relates_to": {"rel_type": "m.replace", "event_id": original},
        }
        return await self.send(room_id, content, token)

    async def redact(self, room_id: str, event_id: str, token: str) -> None:
        path = f"{V3}/rooms/{quote(room_id)}/redact/{quote(event_id)}/r{next(_txn)}"
        response = await self.client.put(path, {}, token)
        assert response.code == 200, response.json

    async def get_event(self, room_id: str, event_id: str, token: str) -> dict[str, Any]:
        response = await self.client.get(
            f"{V3}/rooms/{quote(room_id)}/event/{quote(event_id)}", token
        )
        assert response.code == 200, response.json
        return response.json

    async def messages(self, room_id: str, token: str, query: str = "dir=b&limit=50") -> list:
        response = await self.client.get(f"{V3}/rooms/{quote(room_id)}/messages?{query}", token)
        assert response.code == 200, response.json
        return response.json["chunk"]

    def room_path(self, room_id: str, rest: str, version: str = V1) -> str:
        return f"{version}/rooms/{quote(room_id)}/{rest}"


def by_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["event_id"]: event for event in events}


def relations_of(event: dict[str, Any]) -> dict[str, Any]:
    return event.get("unsigned", {}).get("m.relations", {})
