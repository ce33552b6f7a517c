"""Federation with a real Synapse (matrix-synapse, pinned in synapse_peer.py).

One Synapse serves the whole module (installed into a cached venv on first use, which on a
fresh machine takes minutes); each test gets a fresh one of our servers (in-process, HTTPS
federation listener, see tests/federation/federation_testing.py). What is checked is what the
users of both servers see through their client APIs: keys and profiles across servers, a room
on Synapse joined from our server, a room on our server joined from Synapse, and messages both
ways. A failure message carries the tail of Synapse's log.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from twisted.internet import defer
from twisted.trial import unittest

from federation.client import FederationError
from federation.server_keys import check_notary_signature, parse_key_document
from homeserver.events.signing import encode_verify_key_base64, read_signing_key
from homeserver.events.signing import key_id as key_id_of
from tests.asyncutil import async_test
from tests.federation.federation_testing import FederatingServer
from tests.harness import TestClient
from tests.interop.synapse_peer import (
    INSTALL_TIMEOUT_S,
    START_TIMEOUT_S,
    SynapsePeer,
    ensure_synapse,
)

# pytest-timeout counts fixture set-up: the first test may wait for Synapse to be installed.
# Each test's own body is bounded by trial (SynapseInterop.timeout).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(INSTALL_TIMEOUT_S + START_TIMEOUT_S + 120),
]

V3 = "/_matrix/client/v3"
SYNC_WAIT_S = 30.0
TIMELINE_FILTER = '{"room": {"timeline": {"limit": 50}}}'


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapsePeer]:
    python = ensure_synapse()
    with SynapsePeer(tmp_path_factory.mktemp("synapse"), python) as peer:
        yield peer


@pytest.fixture(autouse=True)
def _give_synapse_to_the_test(request: pytest.FixtureRequest, synapse: SynapsePeer) -> None:
    # trial TestCases cannot take fixtures as arguments; they find Synapse on themselves.
    request.instance.synapse = synapse


class SynapseInterop(unittest.TestCase):
    timeout = 90
    synapse: SynapsePeer

    def setUp(self) -> defer.Deferred:
        self.ours = FederatingServer()
        self.theirs = TestClient(self.synapse.client_url)
        return defer.ensureDeferred(self._start())

    async def _start(self) -> None:
        await self.ours.start()
        self.alice, self.alice_token = await self.ours.client.register("alice")
        # One Synapse serves every test: its users get names of their own.
        self.bob, self.bob_token = await self.theirs.register(f"bob{secrets.token_hex(4)}")

    def tearDown(self) -> defer.Deferred:
        async def stop() -> None:
            await self.ours.stop()

        return defer.ensureDeferred(stop())

    # -- helpers --------------------------------------------------------------------------------

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.fail(f"{message}\n{self.synapse.log_tail()}")

    async def create_public_room(self, client: TestClient, token: str) -> str:
        created = await client.post(
            f"{V3}/createRoom", {"preset": "public_chat", "name": "hall"}, token
        )
        self.check(created.code == 200, f"createRoom: {created.code} {created.json}")
        return created.json["room_id"]

    async def send(self, client: TestClient, token: str, room_id: str, body: str) -> str:
        response = await client.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{secrets.token_hex(8)}",
            {"msgtype": "m.text", "body": body},
            token,
        )
        self.check(response.code == 200, f"send {body!r}: {response.code} {response.json}")
        return response.json["event_id"]

    async def joined_members(self, client: TestClient, token: str, room_id: str) -> set[str]:
        response = await client.get(f"{V3}/rooms/{quote(room_id)}/joined_members", token)
        self.check(response.code == 200, f"joined_members: {response.code} {response.json}")
        return set(response.json["joined"])

    async def wait_for_members(
        self, client: TestClient, token: str, room_id: str, expected: set[str]
    ) -> None:
        deadline = time.monotonic() + SYNC_WAIT_S
        members: set[str] = set()
        while time.monotonic() < deadline:
            members = await self.joined_members(client, token, room_id)
            if members == expected:
                return
            await _sleep(0.25)
        self.check(False, f"members of {room_id} at {client.base_url}: {members}, "
                          f"expected {expected}")

    async def wait_for_messages(
        self, client: TestClient, token: str, room_id: str, bodies: list[str]
    ) -> dict[str, dict]:
        """Syncs (initial, then long-polls) until every one of `bodies` is in the room's
        timeline; each must arrive exactly once. Returns the events by body."""
        wanted = set(bodies)
        seen: dict[str, dict] = {}
        since = None
        deadline = time.monotonic() + SYNC_WAIT_S
        while time.monotonic() < deadline and not wanted <= set(seen):
            path = f"{V3}/sync?timeout=1000&filter={quote(TIMELINE_FILTER)}"
            path += f"&since={quote(since)}" if since else ""
            response = await client.get(path, token)
            self.check(response.code == 200, f"sync: {response.code} {response.json}")
            since = response.json["next_batch"]
            room = response.json.get("rooms", {}).get("join", {}).get(room_id, {})
            for event in room.get("timeline", {}).get("events", []):
                body = event.get("content", {}).get("body")
                if body in wanted:
                    self.check(body not in seen, f"{body!r} arrived twice at {client.base_url}")
                    seen[body] = event
        missing = sorted(wanted - set(seen))
        self.check(not missing, f"{missing} never reached {client.base_url}")
        return seen

    async def wait_for_message(
        self, client: TestClient, token: str, room_id: str, body: str
    ) -> dict:
        return (await self.wait_for_messages(client, token, room_id, [body]))[body]

    async def synced_state(self, client: TestClient, token: str, room_id: str) -> dict:
        """The room's state as a client builds it from an initial /sync: (type, state_key) to
        content, from the state section and then the timeline."""
        response = await client.get(f"{V3}/sync?filter={quote(TIMELINE_FILTER)}", token)
        self.check(response.code == 200, f"sync: {response.code} {response.json}")
        room = response.json.get("rooms", {}).get("join", {}).get(room_id)
        self.check(room is not None, f"{room_id} is not in {client.base_url}'s initial sync")
        state = {}
        for event in [*room["state"]["events"], *room["timeline"]["events"]]:
            if "state_key" in event:
                state[(event["type"], event["state_key"])] = event["content"]
        return state

    async def check_room_as_synced(self, room_id: str) -> None:
        """Both users' clients, from an initial /sync, see the same room: its name, its join
        rule and both users joined."""
        for client, token in ((self.ours.client, self.alice_token), (self.theirs, self.bob_token)):
            state = await self.synced_state(client, token, room_id)
            where = f"state synced from {client.base_url}: {sorted(state)}"
            self.assertEqual(state.get(("m.room.name", ""), {}).get("name"), "hall", where)
            self.assertEqual(state.get(("m.room.join_rules", ""), {}).get("join_rule"), "public",
                             where)
            self.assertIn(("m.room.create", ""), state, where)
            for user in (self.alice, self.bob):
                member = state.get(("m.room.member", user), {})
                self.assertEqual(member.get("membership"), "join", where)

    async def change_topic(
        self, setter: tuple[TestClient, str], watcher: tuple[TestClient, str], room_id: str
    ) -> None:
        """A state change made on one server becomes the room's state on the other."""
        topic = f"topic {secrets.token_hex(4)}"
        put = await setter[0].put(f"{V3}/rooms/{quote(room_id)}/state/m.room.topic",
                                  {"topic": topic}, setter[1])
        self.check(put.code == 200, f"set topic: {put.code} {put.json}")
        deadline = time.monotonic() + SYNC_WAIT_S
        found = None
        while time.monotonic() < deadline:
            got = await watcher[0].get(f"{V3}/rooms/{quote(room_id)}/state/m.room.topic",
                                       watcher[1])
            found = got.json.get("topic") if got.code == 200 else got.json
            if found == topic:
                return
            await _sleep(0.25)
        self.check(False, f"topic at {watcher[0].base_url}: {found!r}, expected {topic!r}")

    async def talk_at_once(self, room_id: str) -> None:
        """Both users send at the same time (the room's DAG forks), then once more each (the
        forks merge): everybody sees every message, once, from the right sender."""
        clients = {self.alice: (self.ours.client, self.alice_token),
                   self.bob: (self.theirs, self.bob_token)}
        sent: dict[str, str] = {}
        for round_ in ("at once", "after"):
            bodies = {f"{sender} {round_} {i}": sender for i in range(2) for sender in clients}
            await defer.gatherResults([
                defer.ensureDeferred(self.send(*clients[sender], room_id, body))
                for body, sender in bodies.items()
            ], consumeErrors=True)
            sent.update(bodies)
            for client, token in clients.values():
                seen = await self.wait_for_messages(client, token, room_id, list(sent))
                for body, event in seen.items():
                    self.assertEqual(event["sender"], sent[body], body)

    # -- the scenarios --------------------------------------------------------------------------

    @async_test
    async def test_keys_and_profiles_across_servers(self) -> None:
        hs = self.ours.hs
        # Our keyring fetches Synapse's /_matrix/key/v2/server and checks its self-signature:
        # the key it accepts is the one in Synapse's signing key file.
        key_id = self.synapse.signing_key()[0]
        synapse_key = read_signing_key(self.synapse.signing_key_path)
        keys = await hs.keyring.get_keys(self.synapse.server_name, [key_id],
                                         hs.clock.time_msec())
        self.check(key_id in keys, f"our keyring has no {key_id} of Synapse: {keys}")
        self.assertEqual(encode_verify_key_base64(keys[key_id]),
                         encode_verify_key_base64(synapse_key))

        # A request we sign is accepted by Synapse (which fetches and checks our key to do so).
        displayname = await self.theirs.put(
            f"{V3}/profile/{quote(self.bob)}/displayname", {"displayname": "Bob"}, self.bob_token
        )
        self.check(displayname.code == 200, f"set displayname: {displayname.json}")
        try:
            profile = await hs.federation_client.get_json(
                self.synapse.server_name, "/_matrix/federation/v1/query/profile",
                {"user_id": self.bob}, timeout=20,
            )
        except FederationError as e:
            self.check(False, f"Synapse refused our signed profile query: {e} {e.body}")
        self.assertEqual(profile.get("displayname"), "Bob")

        # Synapse asks us for our user's profile, and its users see it.
        put = await self.ours.client.put(
            f"{V3}/profile/{quote(self.alice)}/displayname", {"displayname": "Alice"},
            self.alice_token,
        )
        self.assertEqual(put.code, 200, put.json)
        seen = await self.theirs.get(f"{V3}/profile/{quote(self.alice)}", self.bob_token)
        self.check(seen.code == 200, f"Synapse's profile of {self.alice}: {seen.code} "
                                     f"{seen.json}")
        self.assertEqual(seen.json.get("displayname"), "Alice")

        # Synapse, as a notary, vouches for the key we publish (it fetched and checked it), in
        # an answer our keyring's checks accept.
        answer = await self.theirs.get(f"/_matrix/key/v2/query/{quote(hs.server_name)}")
        self.check(answer.code == 200, f"Synapse's notary answer: {answer.code} {answer.json}")
        documents = answer.json.get("server_keys", [])
        self.check(len(documents) == 1, f"Synapse's notary answer: {answer.json}")
        check_notary_signature(documents[0], self.synapse.server_name, keys)
        published = parse_key_document(documents[0], hs.server_name, hs.clock.time_msec())
        self.assertEqual(
            {(k.key_id, encode_verify_key_base64(k.verify_key)) for k in published},
            {(key_id_of(hs.signing_key), encode_verify_key_base64(hs.signing_key))},
        )

    @async_test
    async def test_our_user_joins_a_synapse_room(self) -> None:
        room_id = await self.create_public_room(self.theirs, self.bob_token)
        joined = await self.ours.client.post(
            f"{V3}/join/{quote(room_id)}?via={quote(self.synapse.server_name)}", {},
            self.alice_token,
        )
        self.check(joined.code == 200, f"our join: {joined.code} {joined.json}")
        self.assertEqual(joined.json["room_id"], room_id)

        both = {self.alice, self.bob}
        self.assertEqual(await self.joined_members(self.ours.client, self.alice_token, room_id),
                         both)
        await self.wait_for_members(self.theirs, self.bob_token, room_id, both)

        await self.send(self.theirs, self.bob_token, room_id, "hello from Synapse")
        seen = await self.wait_for_message(self.ours.client, self.alice_token, room_id,
                                           "hello from Synapse")
        self.assertEqual(seen["sender"], self.bob)

        await self.send(self.ours.client, self.alice_token, room_id, "hello from us")
        seen = await self.wait_for_message(self.theirs, self.bob_token, room_id, "hello from us")
        self.assertEqual(seen["sender"], self.alice)

        await self.check_room_as_synced(room_id)
        await self.change_topic((self.theirs, self.bob_token),
                                (self.ours.client, self.alice_token), room_id)
        await self.talk_at_once(room_id)

    @async_test
    async def test_synapse_user_joins_our_room(self) -> None:
        room_id = await self.create_public_room(self.ours.client, self.alice_token)
        joined = await self.theirs.post(
            f"{V3}/join/{quote(room_id)}?server_name={quote(self.ours.server_name)}", {},
            self.bob_token,
        )
        self.check(joined.code == 200, f"Synapse's join: {joined.code} {joined.json}")
        self.assertEqual(joined.json["room_id"], room_id)

        both = {self.alice, self.bob}
        self.assertEqual(await self.joined_members(self.theirs, self.bob_token, room_id), both)
        await self.wait_for_members(self.ours.client, self.alice_token, room_id, both)

        await self.send(self.ours.client, self.alice_token, room_id, "hello from us")
        seen = await self.wait_for_message(self.theirs, self.bob_token, room_id, "hello from us")
        self.assertEqual(seen["sender"], self.alice)

        await self.send(self.theirs, self.bob_token, room_id, "hello from Synapse")
        seen = await self.wait_for_message(self.ours.client, self.alice_token, room_id,
                                           "hello from Synapse")
        self.assertEqual(seen["sender"], self.bob)

        await self.check_room_as_synced(room_id)
        await self.change_topic((self.ours.client, self.alice_token),
                                (self.theirs, self.bob_token), room_id)
        await self.talk_at_once(room_id)


async def _sleep(seconds: float) -> None:
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await deferLater(reactor, seconds)
