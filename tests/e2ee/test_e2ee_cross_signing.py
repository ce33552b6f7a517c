"""Cross-signing: /keys/device_signing/upload and /keys/signatures/upload, and what /keys/query
shows of the keys and signatures to whom."""

from __future__ import annotations

import copy
from typing import Any

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.e2ee.e2ee_testing import (
    PASSWORD,
    E2eeTestCase,
    cross_signing_key,
    device_keys,
    new_key,
    public_key,
    sign,
)


class CrossSigningTests(E2eeTestCase):
    async def _start(self) -> None:
        await super()._start()
        self.alice_device = await self.device_id(self.alice_token)
        self.device_key = new_key()
        self.alice_keys = device_keys(self.alice, self.alice_device, self.device_key)
        await self.upload_keys(self.alice_token, {"device_keys": self.alice_keys})
        self.master, self.ssk, self.usk = new_key(), new_key(), new_key()

    def signing_keys(self, user_id: str, master: Any, ssk: Any, usk: Any) -> dict[str, Any]:
        master_id = f"ed25519:{public_key(master)}"
        return {
            "master_key": cross_signing_key(user_id, "master", master),
            "self_signing_key": sign(
                cross_signing_key(user_id, "self_signing", ssk), user_id, master, master_id
            ),
            "user_signing_key": sign(
                cross_signing_key(user_id, "user_signing", usk), user_id, master, master_id
            ),
        }

    async def upload_signing(self, token: str, body: dict[str, Any]) -> Any:
        return await self.client.post(f"{V3}/keys/device_signing/upload", body, token)

    async def upload_signatures(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(f"{V3}/keys/signatures/upload", body, token)
        self.assertEqual(response.code, 200, response.json)
        return response.json

    @async_test
    async def test_first_upload_needs_no_auth_replacing_does(self) -> None:
        keys = self.signing_keys(self.alice, self.master, self.ssk, self.usk)
        first = await self.upload_signing(self.alice_token, keys)
        self.assertEqual((first.code, first.json), (200, {}))
        # The same keys again (a retry after a lost response) need no auth either.
        self.assertEqual((await self.upload_signing(self.alice_token, keys)).code, 200)

        new_keys = self.signing_keys(self.alice, new_key(), new_key(), new_key())
        challenge = await self.upload_signing(self.alice_token, new_keys)
        self.assertEqual(challenge.code, 401)
        self.assertEqual(challenge.json["flows"], [{"stages": ["m.login.password"]}])
        auth = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": PASSWORD,
            "session": challenge.json["session"],
        }
        replaced = await self.upload_signing(self.alice_token, {**new_keys, "auth": auth})
        self.assertEqual(replaced.code, 200, replaced.json)
        queried = await self.query_keys(self.bob_token, {self.alice: []})
        self.assertEqual(queried["master_keys"][self.alice], new_keys["master_key"])

    @async_test
    async def test_query_shows_user_signing_key_only_to_its_owner(self) -> None:
        keys = self.signing_keys(self.alice, self.master, self.ssk, self.usk)
        self.assertEqual((await self.upload_signing(self.alice_token, keys)).code, 200)
        own = await self.query_keys(self.alice_token, {self.alice: []})
        self.assertEqual(own["master_keys"][self.alice], keys["master_key"])
        self.assertEqual(own["self_signing_keys"][self.alice], keys["self_signing_key"])
        self.assertEqual(own["user_signing_keys"][self.alice], keys["user_signing_key"])
        theirs = await self.query_keys(self.bob_token, {self.alice: []})
        self.assertEqual(theirs["self_signing_keys"][self.alice], keys["self_signing_key"])
        self.assertEqual(theirs["user_signing_keys"], {})

    @async_test
    async def test_bad_cross_signing_uploads(self) -> None:
        keys = self.signing_keys(self.alice, self.master, self.ssk, self.usk)
        # Signed by some other key than the master key.
        forged = copy.deepcopy(keys)
        forged["self_signing_key"] = sign(
            cross_signing_key(self.alice, "self_signing", self.ssk),
            self.alice,
            new_key(),
            f"ed25519:{public_key(self.master)}",
        )
        cases = [
            (forged, 400, "M_INVALID_SIGNATURE"),
            ({"self_signing_key": keys["self_signing_key"]}, 400, "M_MISSING_PARAM"),
            ({"master_key": cross_signing_key(self.bob, "master", self.master)}, 400, None),
            ({"master_key": cross_signing_key(self.alice, "self_signing", self.master)}, 400, None),
            ({"master_key": {**keys["master_key"], "keys": {}}}, 400, "M_BAD_JSON"),
            (
                {"master_key": {**keys["master_key"], "keys": {"ed25519:abc": "abc"}}},
                400,
                "M_INVALID_PARAM",
            ),
        ]
        for body, status, errcode in cases:
            response = await self.upload_signing(self.alice_token, body)
            self.assertEqual(response.code, status, (body, response.json))
            if errcode is not None:
                self.assertEqual(response.json["errcode"], errcode, body)
        # A key whose public key is one of the user's device IDs is refused.
        clash = new_key()
        await self.login("alice", public_key(clash))
        response = await self.upload_signing(
            self.alice_token, {"master_key": cross_signing_key(self.alice, "master", clash)}
        )
        self.assertEqual((response.code, response.json["errcode"]), (403, "M_FORBIDDEN"))
        # Nothing was stored.
        queried = await self.query_keys(self.alice_token, {self.alice: []})
        self.assertEqual(queried["master_keys"], {})

    @async_test
    async def test_signatures_on_devices_and_master_keys(self) -> None:
        alice_keys = self.signing_keys(self.alice, self.master, self.ssk, self.usk)
        bob_master, bob_ssk, bob_usk = new_key(), new_key(), new_key()
        bob_keys = self.signing_keys(self.bob, bob_master, bob_ssk, bob_usk)
        await self.upload_signing(self.alice_token, alice_keys)
        await self.upload_signing(self.bob_token, bob_keys)
        bob_start = await self.sync(self.bob_token)
        room = await self.create_room(self.alice_token, preset="public_chat")
        await self.join(room, self.bob_token)
        bob_start = await self.sync(self.bob_token, bob_start["next_batch"])
        alice_start = await self.sync(self.alice_token)

        ssk_id = f"ed25519:{public_key(self.ssk)}"
        usk_id = f"ed25519:{public_key(self.usk)}"
        bob_master_pub = public_key(bob_master)
        alice_master_pub = public_key(self.master)
        signed_device = sign(copy.deepcopy(self.alice_keys), self.alice, self.ssk, ssk_id)
        signed_bob = sign(copy.deepcopy(bob_keys["master_key"]), self.alice, self.usk, usk_id)
        signed_master = sign(
            copy.deepcopy(alice_keys["master_key"]),
            self.alice,
            self.device_key,
            f"ed25519:{self.alice_device}",
        )
        result = await self.upload_signatures(
            self.alice_token,
            {
                self.alice: {self.alice_device: signed_device, alice_master_pub: signed_master},
                self.bob: {bob_master_pub: signed_bob},
            },
        )
        self.assertEqual(result, {"failures": {}})

        # Everyone sees the self-signing signature on Alice's device and her device's
        # signature on her master key; only Alice sees her signature on Bob's master key.
        for token in (self.alice_token, self.bob_token):
            queried = await self.query_keys(token, {self.alice: [], self.bob: []})
            device = queried["device_keys"][self.alice][self.alice_device]
            self.assertEqual(device["signatures"], signed_device["signatures"])
            self.assertEqual(
                queried["master_keys"][self.alice]["signatures"], signed_master["signatures"]
            )
            bob_signatures = queried["master_keys"][self.bob].get("signatures", {})
            self.assertEqual(self.alice in bob_signatures, token == self.alice_token)

        # Bob hears that Alice's keys changed; Alice hears that (her view of) Bob's did.
        bob_next = await self.sync(self.bob_token, bob_start["next_batch"])
        self.assertIn(self.alice, bob_next["device_lists"]["changed"])
        self.assertNotIn(self.bob, bob_next["device_lists"]["changed"])
        alice_next = await self.sync(self.alice_token, alice_start["next_batch"])
        self.assertEqual(
            sorted(alice_next["device_lists"]["changed"]), sorted([self.alice, self.bob])
        )

    @async_test
    async def test_signature_failures_are_reported_per_key(self) -> None:
        keys = self.signing_keys(self.alice, self.master, self.ssk, self.usk)
        await self.upload_signing(self.alice_token, keys)
        ssk_id = f"ed25519:{public_key(self.ssk)}"
        forged = sign(copy.deepcopy(self.alice_keys), self.alice, new_key(), ssk_id)
        altered = sign(
            {**copy.deepcopy(self.alice_keys), "algorithms": ["other"]},
            self.alice,
            self.ssk,
            ssk_id,
        )
        result = await self.upload_signatures(
            self.alice_token,
            {
                self.alice: {self.alice_device: forged, "NOSUCHDEVICE": {"x": 1}},
                self.bob: {"nokey": {"x": 1}},
            },
        )
        failures = result["failures"]
        self.assertEqual(failures[self.alice][self.alice_device]["errcode"], "M_INVALID_SIGNATURE")
        self.assertEqual(failures[self.alice]["NOSUCHDEVICE"]["errcode"], "M_NOT_FOUND")
        self.assertEqual(failures[self.bob]["nokey"]["errcode"], "M_NOT_FOUND")
        result = await self.upload_signatures(
            self.alice_token, {self.alice: {self.alice_device: altered}}
        )
        self.assertEqual(
            result["failures"][self.alice][self.alice_device]["errcode"], "M_INVALID_PARAM"
        )
        queried = await self.query_keys(self.bob_token, {self.alice: []})
        device = queried["device_keys"][self.alice][self.alice_device]
        self.assertEqual(device["signatures"], self.alice_keys["signatures"])
