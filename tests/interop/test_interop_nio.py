"""End-to-end interop: the real server process driven by a real client library, matrix-nio.

What is checked is what a nio user would see: registration and login, a room inside a space,
invites arriving through /sync, a conversation arriving in order on both sides, the space's child
link, a restart that loses and duplicates nothing for a client resuming with an old sync token,
and a long-polling sync that wakes as soon as a message is sent.

The nio helpers (and `expect`, which puts nio's schema complaints into assertion messages) are
in nio_client.py; the `server` fixture is in conftest.py.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from nio import (
    AsyncClient,
    JoinResponse,
    RoomGetStateResponse,
    RoomInviteResponse,
    RoomMessageText,
    RoomPutStateResponse,
    SyncResponse,
)

from tests.interop.nio_client import (
    create_room,
    expect,
    invite_and_join,
    registered_user,
    run,
    send_text,
    sync,
    user_id,
    wait_for_invites,
)
from tests.interop.server_process import SERVER_NAME, HomeserverProcess

# -- helpers for these scenarios ----------------------------------------------------------------


def texts(response: SyncResponse, room_id: str) -> list[tuple[str, str]]:
    """(sender, body) of the text messages in one room's timeline in this sync response."""
    room = response.rooms.join.get(room_id)
    if room is None:
        return []
    assert not room.timeline.limited, f"timeline of {room_id} has a gap: {room.timeline}"
    return [
        (event.sender, event.body)
        for event in room.timeline.events
        if isinstance(event, RoomMessageText)
    ]


async def collect_messages(
    client: AsyncClient, room_id: str, since: str | None, count: int, within_s: float = 10.0
) -> tuple[list[tuple[str, str]], str]:
    """Syncs from `since` until `count` text messages arrived in the room (bounded).

    Returns them, in the order received, with the last next_batch token. Messages may be split
    over several responses; every one is kept, so a duplicate shows up as an extra entry.
    """
    received: list[tuple[str, str]] = []
    deadline = time.monotonic() + within_s
    token = since
    while len(received) < count and time.monotonic() < deadline:
        response = await sync(client, token, timeout_ms=1000)
        received += texts(response, room_id)
        token = response.next_batch
    assert token is not None
    return received, token


# -- the scenarios ------------------------------------------------------------------------------


@pytest.mark.slow
def test_nio_chat_in_a_space_survives_a_restart(server: HomeserverProcess) -> None:
    run(_chat_in_a_space_survives_a_restart(server))


async def _chat_in_a_space_survives_a_restart(server: HomeserverProcess) -> None:
    url = server.base_url
    async with registered_user(url, "alice") as alice, registered_user(url, "bob") as bob:
        # A room inside a space, both created by Alice.
        room_id = await create_room(alice, "general")
        space_id = await create_room(alice, "Team", space=True)
        linked = await alice.room_put_state(
            space_id, "m.space.child", {"via": [SERVER_NAME]}, state_key=room_id
        )
        expect(linked, RoomPutStateResponse, "m.space.child")

        # Bob's sync shows both invites, with the room's name, before he joins.
        bob_token = (await sync(bob, None)).next_batch
        for target in (room_id, space_id):
            invited = await alice.room_invite(target, bob.user_id)
            expect(invited, RoomInviteResponse, f"invite to {target}")
        bob_token = await wait_for_invites(bob, bob_token, {room_id, space_id})
        assert bob.invited_rooms[room_id].name == "general"
        assert bob.invited_rooms[space_id].name == "Team"
        for target in (room_id, space_id):
            joined = expect(await bob.join(target), JoinResponse, f"join {target}")
            assert joined.room_id == target

        # A conversation; both see all of it, in the order it was sent.
        alice_token = (await sync(alice, None)).next_batch
        conversation = [
            ("alice", "Hi Bob, welcome to general"),
            ("bob", "Thanks Alice!"),
            ("alice", "The space has everything we need"),
            ("bob", "Found it"),
            ("alice", "Great"),
        ]
        clients = {"alice": alice, "bob": bob}
        for sender, body in conversation:
            await send_text(clients[sender], room_id, body)
        expected = [(user_id(sender), body) for sender, body in conversation]
        seen_by_bob, bob_token = await collect_messages(bob, room_id, bob_token, len(expected))
        assert seen_by_bob == expected
        seen_by_alice, alice_token = await collect_messages(
            alice, room_id, alice_token, len(expected)
        )
        assert seen_by_alice == expected

        # Bob sees the space's child link: in the room state, and in nio's own room model
        # (which nio builds from the sync responses).
        state = expect(await bob.room_get_state(space_id), RoomGetStateResponse, "space state")
        children = {
            event["state_key"]: event["content"]
            for event in state.events
            if event["type"] == "m.space.child"
        }
        assert children == {room_id: {"via": [SERVER_NAME]}}
        assert bob.rooms[space_id].room_type == "m.space"
        assert bob.rooms[space_id].children == {room_id}

        # One message Bob has not synced yet, then a restart, then more messages. Bob resumes
        # with his token from before the restart: everything unseen once, in order, nothing old.
        unseen = ["Sent before the restart"]
        await send_text(alice, room_id, unseen[0])
        await asyncio.to_thread(server.restart)
        for body in ("Back after the restart", "Still here?"):
            await send_text(alice, room_id, body)
            unseen.append(body)
        resumed, bob_token = await collect_messages(bob, room_id, bob_token, len(unseen))
        assert resumed == [(user_id("alice"), body) for body in unseen]

        # Caught up: a further sync has nothing new for the room.
        after = await sync(bob, bob_token, timeout_ms=1000)
        room = after.rooms.join.get(room_id)
        assert room is None or room.timeline.events == [], room


@pytest.mark.slow
def test_nio_long_poll_wakes_on_new_message(server: HomeserverProcess) -> None:
    run(_long_poll_wakes_on_new_message(server))


async def _long_poll_wakes_on_new_message(server: HomeserverProcess) -> None:
    url = server.base_url
    async with registered_user(url, "alice") as alice, registered_user(url, "bob") as bob:
        room_id = await create_room(alice, "general")
        await invite_and_join(alice, bob, [room_id])
        # Catch Bob up, so the long poll has nothing to return until Alice speaks.
        token = (await sync(bob, None)).next_batch
        token = (await sync(bob, token)).next_batch

        sent_at: list[float] = []

        async def alice_speaks_while_bob_waits() -> None:
            await asyncio.sleep(1.0)  # Bob's request is parked on the server by now
            sent_at.append(time.monotonic())
            await send_text(alice, room_id, "Wake up, Bob")

        started = time.monotonic()
        response, _ = await asyncio.gather(
            sync(bob, token, timeout_ms=10_000), alice_speaks_while_bob_waits()
        )
        returned = time.monotonic()

        assert texts(response, room_id) == [(user_id("alice"), "Wake up, Bob")]
        assert returned >= sent_at[0], "the long poll returned before anything was sent"
        assert returned - started < 5.0, f"long poll took {returned - started:.1f} s"
