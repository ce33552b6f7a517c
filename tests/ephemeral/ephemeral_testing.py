"""What the typing, receipts and presence tests share: rooms, messages, /sync and waiting."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from twisted.internet import defer, reactor, task

from tests.client.client_testing import V3, ClientTestCase
from tests.harness import Response, TestServer


async def sleep(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> bool:
    """Polls `check` until it is true or `timeout` seconds pass (for background work)."""
    waited = 0.0
    while not await check():
        if waited >= timeout:
            return False
        await sleep(0.05)
        waited += 0.05
    return True


class EphemeralTestCase(ClientTestCase):
    """A server per test (with `server_config`), users alice and bob, and helpers."""

    server_config: dict[str, Any] = {}

    def setUp(self) -> defer.Deferred:
        self.server = TestServer(**self.server_config)
        return defer.ensureDeferred(self._start())

    async def sync(
        self, token: str, since: str | None = None, timeout: int = 0, **params: Any
    ) -> dict[str, Any]:
        query = f"timeout={timeout}"
        if since:
            query += "&since=" + quote(since)
        for key, value in params.items():
            if isinstance(value, dict):
                value = json.dumps(value)
            query += f"&{key}={quote(str(value))}"
        response = await self.client.get(f"{V3}/sync?{query}", token)
        assert response.code == 200, response.json
        return response.json

    async def woken_by(
        self,
        token: str,
        since: str,
        action: Callable[[], Awaitable[object]],
        found: Callable[[dict[str, Any]], bool],
        **params: Any,
    ) -> dict[str, Any]:
        """Long-polls (10 s timeout) while `action` runs 0.2 s later; returns the response that
        `found` accepts, failing unless it came well before the timeout. A poll that other news
        (e.g. presence of the room's members) ends early is simply re-armed from its token."""
        started = time.monotonic()

        async def act() -> None:
            await sleep(0.2)
            await action()

        acting = defer.ensureDeferred(act())
        while True:
            response = await self.sync(token, since, timeout=10_000, **params)
            self.assertLess(time.monotonic() - started, 5, "the long-poll was not woken")
            if found(response):
                break
            since = response["next_batch"]
        await acting
        return response

    async def create_room(self, token: str | None = None, **body: Any) -> str:
        body.setdefault("preset", "public_chat")
        response = await self.client.post(f"{V3}/createRoom", body, token or self.alice_token)
        assert response.code == 200, response.json
        return response.json["room_id"]

    async def join(self, room_id: str, token: str) -> None:
        response = await self.client.post(f"{V3}/join/{quote(room_id)}", {}, token)
        assert response.code == 200, response.json

    async def shared_room(self) -> str:
        """A public room alice created and bob joined."""
        room_id = await self.create_room()
        await self.join(room_id, self.bob_token)
        return room_id

    async def send(self, room_id: str, token: str, content: dict[str, Any] | None = None) -> str:
        self._txn = getattr(self, "_txn", 0) + 1
        response = await self.client.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/t{self._txn}",
            content or {"msgtype": "m.text", "body": f"message {self._txn}"},
            token,
        )
        assert response.code == 200, response.json
        return response.json["event_id"]

    async def restart(self) -> None:
        await self.server.restart()
        self.client = self.server.client


def ephemeral_of(sync: dict[str, Any], room_id: str, event_type: str) -> list[dict[str, Any]]:
    """The room's ephemeral events of one type in a /sync response."""
    room = sync["rooms"]["join"].get(room_id, {})
    return [e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == event_type]


def error_of(response: Response) -> tuple[int, str]:
    return response.code, (response.json or {}).get("errcode", "")
