"""End-to-end interop, part two: the real server process driven by matrix-nio, one feature area
per test, asserting what a nio user would see:

- typing notices and read receipts from one user arriving in the other's /sync;
- a thread and an edit bundled into /messages (unsigned.m.relations);
- upload, then authenticated download (/_matrix/client/v1/media/download), byte for byte;
- device and one-time keys uploaded by one device and claimed by another user's device;
- a to-device message delivered exactly once.

nio's own methods are used wherever they work without its optional E2EE dependency (python-olm,
which is not installed): `keys_upload` and `keys_claim` refuse to run without an olm account,
so those two requests are built with nio's `Api` helpers and sent with nio's `_send`, which
parses and validates the responses exactly as the high-level methods do.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from nacl.public import PrivateKey
from nio import (
    Api,
    AsyncClient,
    KeysClaimResponse,
    KeysQueryResponse,
    KeysUploadResponse,
    MemoryDownloadResponse,
    ReceiptEvent,
    RoomMessagesResponse,
    RoomReadMarkersResponse,
    RoomSendResponse,
    RoomTypingResponse,
    SyncResponse,
    ToDeviceMessage,
    ToDeviceResponse,
    TypingNoticeEvent,
    UnknownToDeviceEvent,
    UpdateReceiptMarkerResponse,
    UploadResponse,
)
from nio.api import MATRIX_MEDIA_API_PATH
from PIL import Image
from signedjson.key import (
    decode_verify_key_bytes,
    encode_verify_key_base64,
    generate_signing_key,
    get_verify_key,
)
from signedjson.sign import sign_json, verify_signed_json
from unpaddedbase64 import decode_base64, encode_base64

from tests.interop.nio_client import (
    create_room,
    expect,
    invite_and_join,
    registered_user,
    run,
    send_text,
    sync,
)
from tests.interop.server_process import SERVER_NAME, HomeserverProcess

T = TypeVar("T")

# Every wait for something to show up in a sync is bounded by this, in long polls of 1 s.
WAIT_S = 10.0
POLL_MS = 1000


async def sync_until(
    client: AsyncClient,
    since: str | None,
    pick: Callable[[SyncResponse], list[T]],
    what: str,
    within_s: float = WAIT_S,
) -> tuple[list[T], str]:
    """Long-polls /sync from `since` until `pick` finds something in a response (bounded).

    Returns what `pick` found in that response and the response's next_batch token.
    """
    deadline = time.monotonic() + within_s
    token = since
    while time.monotonic() < deadline:
        response = await sync(client, token, timeout_ms=POLL_MS)
        token = response.next_batch
        found = pick(response)
        if found:
            return found, token
    raise AssertionError(f"{client.user_id} did not see {what} within {within_s:.0f} s")


async def caught_up(client: AsyncClient) -> str:
    """A sync token past everything the client has not seen yet."""
    token = (await sync(client, None)).next_batch
    return (await sync(client, token)).next_batch


def ephemeral(response: SyncResponse, room_id: str) -> list[Any]:
    room = response.rooms.join.get(room_id)
    return [] if room is None else list(room.ephemeral)


async def two_users_in_a_room(alice: AsyncClient, bob: AsyncClient) -> str:
    """A room Alice created and Bob joined."""
    room_id = await create_room(alice, "features")
    await invite_and_join(alice, bob, [room_id])
    return room_id


# -- 1. typing and read receipts ----------------------------------------------------------------


@pytest.mark.slow
def test_nio_typing_and_read_receipts_reach_the_other_user(server: HomeserverProcess) -> None:
    run(_typing_and_read_receipts(server))


async def _typing_and_read_receipts(server: HomeserverProcess) -> None:
    url = server.base_url
    async with registered_user(url, "alice") as alice, registered_user(url, "bob") as bob:
        room_id = await two_users_in_a_room(alice, bob)
        token = await caught_up(bob)

        # Alice starts typing: Bob's sync has an m.typing naming her.
        typing = await alice.room_typing(room_id, typing_state=True, timeout=30_000)
        expect(typing, RoomTypingResponse, "typing on")

        def typing_users(response: SyncResponse) -> list[list[str]]:
            return [
                event.users
                for event in ephemeral(response, room_id)
                if isinstance(event, TypingNoticeEvent)
            ]

        seen, token = await sync_until(bob, token, typing_users, "Alice typing")
        assert seen[-1] == [alice.user_id]
        assert bob.rooms[room_id].typing_users == [alice.user_id]

        # She stops: the next m.typing Bob gets is empty.
        typing = await alice.room_typing(room_id, typing_state=False)
        expect(typing, RoomTypingResponse, "typing off")
        seen, token = await sync_until(bob, token, typing_users, "Alice stop typing")
        assert seen[-1] == []

        # A read receipt through /receipt (nio's update_receipt_marker) ...
        first = await send_text(bob, room_id, "Did you read this?")
        marked = await alice.update_receipt_marker(room_id, first)
        expect(marked, UpdateReceiptMarkerResponse, "receipt")

        def alices_receipts(response: SyncResponse) -> list[tuple[str, str]]:
            return [
                (receipt.event_id, receipt.receipt_type)
                for event in ephemeral(response, room_id)
                if isinstance(event, ReceiptEvent)
                for receipt in event.receipts
                if receipt.user_id == alice.user_id
            ]

        receipts, token = await sync_until(bob, token, alices_receipts, "Alice's receipt")
        assert receipts == [(first, "m.read")]

        # ... and one through /read_markers, which also moves her fully-read marker.
        second = await send_text(bob, room_id, "And this?")
        markers = await alice.room_read_markers(room_id, fully_read_event=second, read_event=second)
        expect(markers, RoomReadMarkersResponse, "read markers")
        receipts, token = await sync_until(bob, token, alices_receipts, "Alice's 2nd receipt")
        assert receipts == [(second, "m.read")]


# -- 2. threads and edits in /messages ----------------------------------------------------------


@pytest.mark.slow
def test_nio_thread_and_edit_are_bundled_in_messages(server: HomeserverProcess) -> None:
    run(_thread_and_edit_bundled(server))


async def _thread_and_edit_bundled(server: HomeserverProcess) -> None:
    url = server.base_url
    async with registered_user(url, "alice") as alice, registered_user(url, "bob") as bob:
        room_id = await two_users_in_a_room(alice, bob)

        async def send(client: AsyncClient, content: dict[str, Any]) -> str:
            response = await client.room_send(room_id, "m.room.message", content)
            return expect(response, RoomSendResponse, f"send {content['body']!r}").event_id

        def in_thread(body: str) -> dict[str, Any]:
            return {
                "msgtype": "m.text",
                "body": body,
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": root,
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": root},
                },
            }

        root = await send_text(alice, room_id, "Thread root: lunch plans?")
        await send(bob, in_thread("Pizza"))
        latest = await send(alice, in_thread("Pizza it is"))
        original = await send_text(alice, room_id, "See you at 12")
        edit = await send(
            alice,
            {
                "msgtype": "m.text",
                "body": "* See you at 1",
                "m.new_content": {"msgtype": "m.text", "body": "See you at 1"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": original},
            },
        )

        # Bob pages back from the end of the room, as a client filling its timeline does.
        token = await caught_up(bob)
        page = await bob.room_messages(room_id, start=token, limit=50)
        page = expect(page, RoomMessagesResponse, "/messages")
        by_id = {event.event_id: event.source for event in page.chunk}
        assert {root, latest, original, edit} <= set(by_id), list(by_id)

        thread = by_id[root].get("unsigned", {}).get("m.relations", {}).get("m.thread")
        assert thread is not None, by_id[root]
        assert thread["count"] == 2
        assert thread["latest_event"]["event_id"] == latest
        assert thread["latest_event"]["content"]["body"] == "Pizza it is"
        assert thread["current_user_participated"] is True  # Bob replied in it

        replace = by_id[original].get("unsigned", {}).get("m.relations", {}).get("m.replace")
        assert replace is not None, by_id[original]
        assert replace["event_id"] == edit
        assert replace["content"]["m.new_content"]["body"] == "See you at 1"
        # The original keeps its own content; the client applies the edit.
        assert by_id[original]["content"]["body"] == "See you at 12"


# -- 3. media --------------------------------------------------------------------------------------


def small_png() -> bytes:
    pixels = Image.frombytes("RGB", (8, 8), os.urandom(8 * 8 * 3))
    out = io.BytesIO()
    pixels.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.slow
def test_nio_upload_then_authenticated_download(server: HomeserverProcess) -> None:
    run(_upload_then_download(server))


async def _upload_then_download(server: HomeserverProcess) -> None:
    # nio's download() asks the authenticated endpoint, with the token in the header.
    assert MATRIX_MEDIA_API_PATH == "/_matrix/client/v1/media"
    url = server.base_url
    async with registered_user(url, "alice") as alice, registered_user(url, "bob") as bob:
        files = [
            (small_png(), "image/png", "pixels.png"),
            (os.urandom(100_000), "application/octet-stream", "noise.bin"),
        ]
        for data, content_type, filename in files:
            uploaded, _ = await alice.upload(
                io.BytesIO(data), content_type=content_type, filename=filename, filesize=len(data)
            )
            mxc = expect(uploaded, UploadResponse, f"upload {filename}").content_uri
            assert mxc.startswith(f"mxc://{SERVER_NAME}/"), mxc

            for downloader in (alice, bob):
                got = await downloader.download(mxc)
                got = expect(got, MemoryDownloadResponse, f"{downloader.user_id} gets {filename}")
                assert got.body == data, f"{filename}: {len(got.body)} bytes, not {len(data)}"
                assert got.content_type.split(";")[0] == content_type
                assert got.filename == filename

            # Without the access token the same endpoint refuses.
            media_id = mxc.removeprefix(f"mxc://{SERVER_NAME}/")
            path = f"{MATRIX_MEDIA_API_PATH}/download/{SERVER_NAME}/{media_id}"
            anonymous = await bob.send("GET", path)
            try:
                assert anonymous.status == 401, anonymous.status
                assert (await anonymous.json())["errcode"] == "M_MISSING_TOKEN"
            finally:
                anonymous.release()


# -- 4. device keys and one-time keys -------------------------------------------------------------


def curve25519_public_key() -> str:
    return encode_base64(bytes(PrivateKey.generate().public_key))


@pytest.mark.slow
def test_nio_one_time_keys_are_claimed_once(server: HomeserverProcess) -> None:
    run(_one_time_keys_claimed_once(server))


async def _one_time_keys_claimed_once(server: HomeserverProcess) -> None:
    url = server.base_url
    async with registered_user(url, "alice") as alice, registered_user(url, "bob") as bob:
        device = alice.device_id
        # Real keys, signed as a client signs them, so Bob can check what he gets.
        signing_key = generate_signing_key(device)
        device_keys = sign_json(
            {
                "user_id": alice.user_id,
                "device_id": device,
                "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
                "keys": {
                    f"curve25519:{device}": curve25519_public_key(),
                    f"ed25519:{device}": encode_verify_key_base64(get_verify_key(signing_key)),
                },
            },
            alice.user_id,
            signing_key,
        )
        one_time_keys = {
            f"signed_curve25519:AAAAA{n}": sign_json(
                {"key": curve25519_public_key()}, alice.user_id, signing_key
            )
            for n in ("Q", "g")
        }

        request = Api.keys_upload(
            alice.access_token, {"device_keys": device_keys, "one_time_keys": one_time_keys}
        )
        uploaded = await alice._send(KeysUploadResponse, *request)
        uploaded = expect(uploaded, KeysUploadResponse, "keys/upload")
        assert uploaded.signed_curve25519_count == 2

        # Bob looks Alice's device up, as a client does before starting an Olm session.
        request = Api.keys_query(bob.access_token, {alice.user_id})
        queried = await bob._send(KeysQueryResponse, *request)
        queried = expect(queried, KeysQueryResponse, "keys/query")
        published = dict(queried.device_keys[alice.user_id][device])
        published.pop("unsigned", None)
        assert published == device_keys
        ed25519 = published["keys"][f"ed25519:{device}"]
        verify_key = decode_verify_key_bytes(f"ed25519:{device}", decode_base64(ed25519))

        async def claim() -> dict[str, Any]:
            request = Api.keys_claim(bob.access_token, {alice.user_id: [device]})
            response = await bob._send(KeysClaimResponse, *request)
            response = expect(response, KeysClaimResponse, "keys/claim")
            assert response.failures == {}
            return response.one_time_keys.get(alice.user_id, {}).get(device, {})

        first = await claim()
        assert len(first) == 1, first
        [(first_id, first_key)] = first.items()
        assert first_key == one_time_keys[first_id]
        verify_signed_json(first_key, alice.user_id, verify_key)  # raises if tampered with

        second = await claim()
        assert len(second) == 1, second
        [(second_id, second_key)] = second.items()
        assert second_id != first_id, "the same one-time key was handed out twice"
        assert second_key == one_time_keys[second_id]

        # Both are gone: nothing left to claim (Alice uploaded no fallback key), and Alice's
        # own sync says she has none left.
        assert await claim() == {}
        counts = (await sync(alice, None)).device_key_count
        assert counts.signed_curve25519 == 0


# -- 5. to-device messages --------------------------------------------------------------------------


@pytest.mark.slow
def test_nio_to_device_message_is_delivered_once(server: HomeserverProcess) -> None:
    run(_to_device_delivered_once(server))


async def _to_device_delivered_once(server: HomeserverProcess) -> None:
    url = server.base_url
    async with registered_user(url, "alice") as alice, registered_user(url, "bob") as bob:
        before = await caught_up(bob)
        event_type = "org.example.interop.ping"
        message = ToDeviceMessage(event_type, bob.user_id, bob.device_id, {"ping": 1})
        # Sent twice with one transaction ID, as a client retrying after a lost response does.
        for _ in range(2):
            sent = await alice.to_device(message, tx_id="ping-1")
            expect(sent, ToDeviceResponse, "sendToDevice")

        def pings(response: SyncResponse) -> list[tuple[str, str, dict[str, Any]]]:
            return [
                (event.sender, event.source["type"], event.source["content"])
                for event in response.to_device_events
                if isinstance(event, UnknownToDeviceEvent)
            ]

        delivered, after = await sync_until(bob, before, pings, "the to-device message")
        assert delivered == [(alice.user_id, event_type, {"ping": 1})]

        # A sync whose response was lost is retried with the old token: the message is still
        # there, since Bob's device never confirmed it.
        retried = await sync(bob, before)
        assert pings(retried) == delivered

        # Syncing on with the later token confirms it: it does not come again.
        again = await sync(bob, after, timeout_ms=POLL_MS)
        assert pings(again) == []
        assert (await sync(bob, again.next_batch)).to_device_events == []
