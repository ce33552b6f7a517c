"""End-to-end encryption between two of our servers: keys queried and claimed across servers,
device-list updates (m.device_list_update, m.signing_key_update) and the /user/* routes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from federation.client import FederationError
from tests.asyncutil import async_test
from tests.e2ee.e2ee_testing import (
    PASSWORD,
    cross_signing_key,
    device_keys,
    new_key,
    public_key,
    sign,
)
from tests.federation.federation_testing import V3, FederatingServer, TwoServersCase, free_port

OTK_ALGORITHM = "signed_curve25519"


class FederatedKeys(TwoServersCase):
    async def _start(self) -> None:
        await super()._start()
        self.alice_device = await self.device_id(self.a, self.alice_token)
        self.alice_key = new_key()
        self.alice_keys = device_keys(self.alice, self.alice_device, self.alice_key)
        await self.upload(self.a, self.alice_token, {"device_keys": self.alice_keys})
        self.edus: list[tuple[str, dict[str, Any]]] = []
        handlers = self.b.hs.federation_transactions.edu_handlers
        for edu_type in ("m.device_list_update", "m.signing_key_update"):
            handlers[edu_type] = self._recording(edu_type, handlers[edu_type])

    def _recording(self, edu_type: str, handler: Any) -> Any:
        async def record(origin: str, content: dict[str, Any]) -> None:
            self.edus.append((edu_type, content))
            await handler(origin, content)

        return record

    # -- helpers ----------------------------------------------------------------------------------

    async def device_id(self, server: FederatingServer, token: str) -> str:
        response = await server.client.get(f"{V3}/account/whoami", token)
        assert response.code == 200, response.json
        return response.json["device_id"]

    async def login(self, server: FederatingServer, name: str, device_id: str) -> str:
        response = await server.client.post(
            f"{V3}/login",
            {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": name},
             "password": PASSWORD, "device_id": device_id,
             "initial_device_display_name": f"{name}'s {device_id.lower()}"},
        )
        assert response.code == 200, response.json
        return response.json["access_token"]

    async def upload(self, server: FederatingServer, token: str, body: dict) -> dict:
        response = await server.client.post(f"{V3}/keys/upload", body, token)
        assert response.code == 200, response.json
        return response.json

    async def query(self, users: dict[str, list[str]], **extra: Any) -> dict[str, Any]:
        response = await self.b.client.post(
            f"{V3}/keys/query", {"device_keys": users, **extra}, self.bob_token
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json

    async def claim(self, wanted: dict[str, dict[str, str]], **extra: Any) -> dict[str, Any]:
        response = await self.b.client.post(
            f"{V3}/keys/claim", {"one_time_keys": wanted, **extra}, self.bob_token
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json

    async def bob_since(self) -> str:
        response = await self.b.client.get(f"{V3}/sync?timeout=0", self.bob_token)
        assert response.code == 200, response.json
        return response.json["next_batch"]

    async def wait_for_alice_changed(self, since: str) -> None:
        def changed(sync: dict) -> bool:
            return self.alice in sync.get("device_lists", {}).get("changed", [])

        await self.sync_until(self.b, self.bob_token, changed, "alice's device list change",
                              since=since)

    def signing_keys(self, user_id: str) -> tuple[dict[str, Any], Any, Any, Any]:
        master, ssk, usk = new_key(), new_key(), new_key()
        master_id = f"ed25519:{public_key(master)}"
        body = {
            "master_key": cross_signing_key(user_id, "master", master),
            "self_signing_key": sign(
                cross_signing_key(user_id, "self_signing", ssk), user_id, master, master_id
            ),
            "user_signing_key": sign(
                cross_signing_key(user_id, "user_signing", usk), user_id, master, master_id
            ),
        }
        return body, master, ssk, usk

    # -- /keys/query ------------------------------------------------------------------------------

    @async_test
    async def test_bob_queries_alices_keys_across_servers(self) -> None:
        signing, _, _, _ = self.signing_keys(self.alice)
        response = await self.a.client.post(
            f"{V3}/keys/device_signing/upload", signing, self.alice_token
        )
        self.assertEqual(response.code, 200, response.json)

        queried = await self.query({self.alice: []})
        self.assertEqual(queried["failures"], {})
        device = queried["device_keys"][self.alice][self.alice_device]
        self.assertEqual({k: v for k, v in device.items() if k != "unsigned"}, self.alice_keys)
        self.assertEqual(queried["master_keys"][self.alice], signing["master_key"])
        self.assertEqual(queried["self_signing_keys"][self.alice], signing["self_signing_key"])
        # Another user's user-signing key is never shown.
        self.assertNotIn(self.alice, queried.get("user_signing_keys", {}))

        # A device list asked for by device ID; an unknown device is simply missing.
        some = await self.query({self.alice: [self.alice_device, "NOSUCHDEVICE"]})
        self.assertEqual(list(some["device_keys"][self.alice]), [self.alice_device])

    @async_test
    async def test_keys_are_cached_while_a_room_is_shared_and_refreshed_on_change(self) -> None:
        remote = self.b.hs.storage.e2ee.remote
        await self.query({self.alice: []})
        # No room shared: their server would not tell us of changes, so nothing is kept.
        self.assertEqual(await remote.get_cached([self.alice]), {})

        await self.shared_room()
        first = await self.query({self.alice: []})
        self.assertIn(self.alice, await remote.get_cached([self.alice]))
        self.assertEqual(list(first["device_keys"][self.alice]), [self.alice_device])

        since = await self.bob_since()
        phone = await self.login(self.a, "alice", "ALICEPHONE")
        phone_keys = device_keys(self.alice, "ALICEPHONE", new_key())
        await self.upload(self.a, phone, {"device_keys": phone_keys})
        await self.wait_for_alice_changed(since)

        second = await self.query({self.alice: []})
        self.assertEqual(
            sorted(second["device_keys"][self.alice]), sorted([self.alice_device, "ALICEPHONE"])
        )
        self.assertEqual(
            {k: v for k, v in second["device_keys"][self.alice]["ALICEPHONE"].items()
             if k != "unsigned"},
            phone_keys,
        )

    @async_test
    async def test_an_unreachable_server_is_listed_in_failures(self) -> None:
        nowhere = f"127.0.0.1:{free_port()}"  # nothing listens there
        carol = f"@carol:{nowhere}"
        queried = await self.query({self.alice: [], carol: []}, timeout=5000)
        self.assertEqual(list(queried["failures"]), [nowhere])
        self.assertIn("status", queried["failures"][nowhere])
        self.assertNotIn(carol, queried["device_keys"])
        # The reachable server's answer is there all the same.
        self.assertIn(self.alice_device, queried["device_keys"][self.alice])

        claimed = await self.claim({carol: {"DEVICE": OTK_ALGORITHM}}, timeout=5000)
        self.assertEqual(claimed["one_time_keys"], {})
        self.assertEqual(list(claimed["failures"]), [nowhere])

    # -- /keys/claim ------------------------------------------------------------------------------

    @async_test
    async def test_bob_claims_each_of_alices_one_time_keys_once(self) -> None:
        otks = {
            f"{OTK_ALGORITHM}:AAAA{i}": sign(
                {"key": f"otk{i}"}, self.alice, self.alice_key, f"ed25519:{self.alice_device}"
            )
            for i in range(2)
        }
        await self.upload(self.a, self.alice_token, {"one_time_keys": otks})
        wanted = {self.alice: {self.alice_device: OTK_ALGORITHM}}

        first = await self.claim(wanted)
        self.assertEqual(first["failures"], {})
        [(first_id, first_key)] = first["one_time_keys"][self.alice][self.alice_device].items()
        self.assertEqual(otks[first_id], first_key)

        second = await self.claim(wanted)
        [(second_id, second_key)] = second["one_time_keys"][self.alice][self.alice_device].items()
        self.assertNotEqual(second_id, first_id)
        self.assertEqual(otks[second_id], second_key)

        # None left and no fallback key: nothing for that device.
        third = await self.claim(wanted)
        self.assertEqual(third["one_time_keys"], {})
        self.assertEqual(third["failures"], {})

    @async_test
    async def test_fallback_key_is_claimed_across_servers_when_one_time_keys_run_out(self) -> None:
        fallback = {
            f"{OTK_ALGORITHM}:FFFF": sign(
                {"key": "fallback", "fallback": True}, self.alice, self.alice_key,
                f"ed25519:{self.alice_device}",
            )
        }
        await self.upload(self.a, self.alice_token, {"fallback_keys": fallback})
        wanted = {self.alice: {self.alice_device: OTK_ALGORITHM}}
        for _ in range(2):
            claimed = await self.claim(wanted)
            self.assertEqual(claimed["one_time_keys"][self.alice][self.alice_device], fallback)

    # -- device-list updates ----------------------------------------------------------------------

    @async_test
    async def test_new_device_keys_show_in_bobs_device_lists_changed(self) -> None:
        await self.shared_room()
        since = await self.bob_since()
        phone = await self.login(self.a, "alice", "ALICEPHONE")
        phone_keys = device_keys(self.alice, "ALICEPHONE", new_key())
        await self.upload(self.a, phone, {"device_keys": phone_keys})
        await self.wait_for_alice_changed(since)

        updates = [c for t, c in self.edus if t == "m.device_list_update"]
        self.assertEqual(updates[-1]["device_id"], "ALICEPHONE")
        self.assertEqual(updates[-1]["keys"], phone_keys)
        self.assertEqual(updates[-1]["device_display_name"], "alice's alicephone")
        self.assertFalse(updates[-1].get("deleted", False))

        changes = await self.b.client.get(
            f"{V3}/keys/changes?from={quote(since)}&to={quote(self.next_batch)}", self.bob_token
        )
        self.assertEqual(changes.code, 200, changes.json)
        self.assertIn(self.alice, changes.json["changed"])

    async def wait_for_update(self, found: Any) -> dict[str, Any]:
        """The first m.device_list_update B received for which `found(content)` is true."""
        for _ in range(100):
            for edu_type, content in self.edus:
                if edu_type == "m.device_list_update" and found(content):
                    return content
            await self.b.hs.clock.sleep(0.1)
        self.fail("the device list update never reached B")

    @async_test
    async def test_renamed_and_deleted_devices_are_announced_in_sequence(self) -> None:
        await self.shared_room()
        phone = await self.login(self.a, "alice", "ALICEPHONE")
        await self.upload(self.a, phone, {
            "device_keys": device_keys(self.alice, "ALICEPHONE", new_key())
        })
        await self.wait_for_update(lambda c: c["device_id"] == "ALICEPHONE")

        renamed = await self.a.client.put(
            f"{V3}/devices/ALICEPHONE", {"display_name": "Work phone"}, self.alice_token
        )
        self.assertEqual(renamed.code, 200, renamed.json)
        # What the rename route is to call (server wiring not there yet).
        await self.a.hs.e2ee.on_device_renamed(self.alice)
        update = await self.wait_for_update(lambda c: c.get("device_display_name") == "Work phone")
        self.assertEqual(update["device_id"], "ALICEPHONE")

        since = await self.bob_since()
        response = await self.a.client.post(f"{V3}/logout", {}, phone)
        self.assertEqual(response.code, 200, response.json)
        gone = await self.wait_for_update(lambda c: c.get("deleted"))
        self.assertEqual(gone["device_id"], "ALICEPHONE")
        self.assertNotIn("keys", gone)
        await self.wait_for_alice_changed(since)

        # Each update of alice refers to the one before it.
        updates = [c for t, c in self.edus if t == "m.device_list_update"]
        self.assertEqual(len(updates), 3)
        for before, after in zip(updates, updates[1:], strict=False):
            self.assertEqual(after["prev_id"], [before["stream_id"]])
            self.assertGreater(after["stream_id"], before["stream_id"])
        queried = await self.query({self.alice: []})
        self.assertEqual(list(queried["device_keys"][self.alice]), [self.alice_device])

    @async_test
    async def test_new_cross_signing_keys_are_announced(self) -> None:
        await self.shared_room()
        await self.query({self.alice: []})  # cached now
        since = await self.bob_since()
        signing, _, _, _ = self.signing_keys(self.alice)
        response = await self.a.client.post(
            f"{V3}/keys/device_signing/upload", signing, self.alice_token
        )
        self.assertEqual(response.code, 200, response.json)
        await self.wait_for_alice_changed(since)
        [update] = [c for t, c in self.edus if t == "m.signing_key_update"]
        self.assertEqual(update["user_id"], self.alice)
        self.assertEqual(update["master_key"], signing["master_key"])
        self.assertEqual(update["self_signing_key"], signing["self_signing_key"])
        self.assertNotIn("user_signing_key", update)
        queried = await self.query({self.alice: []})
        self.assertEqual(queried["master_keys"][self.alice], signing["master_key"])

    @async_test
    async def test_bob_signs_alices_master_key_and_only_he_sees_it(self) -> None:
        alice_signing, _, _, _ = self.signing_keys(self.alice)
        response = await self.a.client.post(
            f"{V3}/keys/device_signing/upload", alice_signing, self.alice_token
        )
        self.assertEqual(response.code, 200, response.json)
        bob_signing, _, _, bob_usk = self.signing_keys(self.bob)
        response = await self.b.client.post(
            f"{V3}/keys/device_signing/upload", bob_signing, self.bob_token
        )
        self.assertEqual(response.code, 200, response.json)

        master = dict(alice_signing["master_key"])
        usk_id = f"ed25519:{public_key(bob_usk)}"
        signed = sign(dict(master), self.bob, bob_usk, usk_id)
        alice_master_id = next(iter(master["keys"].values()))
        response = await self.b.client.post(
            f"{V3}/keys/signatures/upload", {self.alice: {alice_master_id: signed}},
            self.bob_token,
        )
        self.assertEqual(response.code, 200, response.json)
        self.assertEqual(response.json["failures"], {})
        queried = await self.query({self.alice: []})
        self.assertEqual(
            queried["master_keys"][self.alice]["signatures"][self.bob][usk_id],
            signed["signatures"][self.bob][usk_id],
        )
        # A forged signature is refused.
        forged = sign(dict(master), self.bob, new_key(), usk_id)
        response = await self.b.client.post(
            f"{V3}/keys/signatures/upload", {self.alice: {alice_master_id: forged}},
            self.bob_token,
        )
        self.assertEqual(
            response.json["failures"][self.alice][alice_master_id]["errcode"],
            "M_INVALID_SIGNATURE",
        )

    # -- the federation routes --------------------------------------------------------------------

    @async_test
    async def test_user_devices_route(self) -> None:
        signing, _, _, _ = self.signing_keys(self.alice)
        response = await self.a.client.post(
            f"{V3}/keys/device_signing/upload", signing, self.alice_token
        )
        self.assertEqual(response.code, 200, response.json)
        client = self.b.hs.federation_client
        path = f"/_matrix/federation/v1/user/devices/{quote(self.alice)}"
        answer = await client.get_json(self.a.server_name, path)
        self.assertEqual(answer["user_id"], self.alice)
        self.assertIsInstance(answer["stream_id"], int)
        [device] = answer["devices"]
        self.assertEqual(device["device_id"], self.alice_device)
        self.assertEqual(device["keys"], self.alice_keys)
        self.assertEqual(answer["master_key"], signing["master_key"])
        self.assertEqual(answer["self_signing_key"], signing["self_signing_key"])
        self.assertNotIn("user_signing_key", answer)

        # The next update refers to the stream_id the snapshot answered.
        await self.shared_room()
        phone = await self.login(self.a, "alice", "ALICEPHONE")
        await self.upload(self.a, phone, {
            "device_keys": device_keys(self.alice, "ALICEPHONE", new_key())
        })
        update = await self.wait_for_update(lambda c: c["device_id"] == "ALICEPHONE")
        self.assertEqual(update["prev_id"], [answer["stream_id"]])
        again = await client.get_json(self.a.server_name, path)
        self.assertEqual(again["stream_id"], update["stream_id"])
        self.assertEqual(len(again["devices"]), 2)

        with self.assertRaises(FederationError) as raised:
            await client.get_json(
                self.a.server_name,
                f"/_matrix/federation/v1/user/devices/{quote(self.bob)}",
            )
        self.assertEqual(raised.exception.code, 400)

    @async_test
    async def test_user_keys_routes_answer_only_for_local_users(self) -> None:
        client = self.b.hs.federation_client
        answer = await client.post_json(
            self.a.server_name,
            "/_matrix/federation/v1/user/keys/query",
            {"device_keys": {self.alice: [], self.bob: []}},
        )
        self.assertEqual(list(answer["device_keys"]), [self.alice])
        self.assertIn("unsigned", answer["device_keys"][self.alice][self.alice_device])
        claimed = await client.post_json(
            self.a.server_name,
            "/_matrix/federation/v1/user/keys/claim",
            {"one_time_keys": {self.bob: {"X": OTK_ALGORITHM}}},
        )
        self.assertEqual(claimed, {"one_time_keys": {}})
        with self.assertRaises(FederationError) as raised:
            await client.post_json(
                self.a.server_name, "/_matrix/federation/v1/user/keys/query", {}
            )
        self.assertEqual(raised.exception.code, 400)
