"""matrix-nio helpers shared by the interop suites that drive the real server with nio.

nio validates every response against its JSON schemas and turns a response it rejects into an
error response; `expect` below puts nio's validation warning into the assertion message, so a
server response with a missing key fails with nio's own words for what it wanted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    LoginResponse,
    RegisterResponse,
    RoomCreateResponse,
    RoomInviteResponse,
    RoomSendResponse,
    SyncResponse,
)

from tests.interop.server_process import SERVER_NAME

PASSWORD = "correct horse battery staple"
SCENARIO_TIMEOUT_S = 120
# Sync with a timeline limit well above the messages sent between two syncs, so every message
# comes in the timeline itself.
SYNC_FILTER = {"room": {"timeline": {"limit": 50}}}
# nio retries connection errors and 429s forever by default; here a failure must surface.
CLIENT_CONFIG = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=3, request_timeout=30)

R = TypeVar("R")


def run(coroutine: Any) -> Any:
    """Runs one scenario on a fresh event loop, bounded so a hang fails instead of stalling."""
    return asyncio.run(asyncio.wait_for(coroutine, SCENARIO_TIMEOUT_S))


class _NioWarnings(logging.Handler):
    """Keeps nio's warnings; schema validation failures are only reported there."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_nio_warnings = _NioWarnings()
logging.getLogger("nio").addHandler(_nio_warnings)


def expect(response: Any, response_type: type[R], what: str) -> R:
    """Asserts nio parsed a successful response of the given type; otherwise says why not."""
    if not isinstance(response, response_type):
        details = {
            key: getattr(response, key, None)
            for key in ("status_code", "message", "transport_response")
        }
        recent = "\n".join(_nio_warnings.messages[-5:]) or "(none)"
        raise AssertionError(
            f"{what}: expected {response_type.__name__}, got {type(response).__name__} "
            f"{details}\nrecent nio warnings:\n{recent}"
        )
    return response


def user_id(localpart: str) -> str:
    return f"@{localpart}:{SERVER_NAME}"


@asynccontextmanager
async def registered_user(base_url: str, localpart: str) -> AsyncIterator[AsyncClient]:
    """Registers `localpart` (nio answers the UIA step with m.login.dummy), then logs in with
    the password from a fresh client, as on a second device; yields that client, closes it."""
    registering = AsyncClient(base_url, localpart, config=CLIENT_CONFIG)
    try:
        registered = expect(
            await registering.register(localpart, PASSWORD),
            RegisterResponse,
            f"register {localpart}",
        )
        assert registered.user_id == user_id(localpart)
    finally:
        await registering.close()

    client = AsyncClient(base_url, localpart, config=CLIENT_CONFIG)
    try:
        login = expect(
            await client.login(PASSWORD, device_name="nio interop"),
            LoginResponse,
            f"login {localpart}",
        )
        assert login.user_id == user_id(localpart)
        assert login.device_id != registered.device_id, "a fresh login is a new device"
        yield client
    finally:
        await client.close()


async def sync(client: AsyncClient, since: str | None, timeout_ms: int = 0) -> SyncResponse:
    response = await client.sync(timeout=timeout_ms, since=since, sync_filter=SYNC_FILTER)
    return expect(response, SyncResponse, f"sync of {client.user_id} since {since}")


async def wait_for_invites(
    client: AsyncClient, since: str, room_ids: set[str], within_s: float = 10.0
) -> str:
    """Syncs until every room in `room_ids` shows up under rooms.invite; returns the token."""
    seen: set[str] = set()
    deadline = time.monotonic() + within_s
    token = since
    while not room_ids <= seen and time.monotonic() < deadline:
        response = await sync(client, token, timeout_ms=1000)
        seen |= set(response.rooms.invite)
        token = response.next_batch
    assert room_ids <= seen, f"{client.user_id} saw invites to {seen}, expected {room_ids}"
    return token


async def send_text(client: AsyncClient, room_id: str, body: str) -> str:
    response = await client.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": body}
    )
    return expect(response, RoomSendResponse, f"send {body!r}").event_id


async def create_room(client: AsyncClient, name: str, space: bool = False) -> str:
    response = await client.room_create(name=name, space=space)
    return expect(response, RoomCreateResponse, f"create {name!r}").room_id


async def invite_and_join(inviter: AsyncClient, invitee: AsyncClient, room_ids: list[str]) -> None:
    """Invites through the inviter, waits for the invitee's sync to show them, joins each."""
    start = (await sync(invitee, None)).next_batch
    for room_id in room_ids:
        invited = await inviter.room_invite(room_id, invitee.user_id)
        expect(invited, RoomInviteResponse, f"invite to {room_id}")
    await wait_for_invites(invitee, start, set(room_ids))
    for room_id in room_ids:
        joined = expect(await invitee.join(room_id), JoinResponse, f"join {room_id}")
        assert joined.room_id == room_id
