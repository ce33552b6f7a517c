"""/keys/upload, /keys/query and /keys/claim, and the key counts /sync reports."""

from __future__ import annotations

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.e2ee.e2ee_testing import E2eeTestCase, device_keys, new_key


def otk(name: str) -> dict:
    return {"key": f"otk-{name}", "signatures": {}}


class KeyUploadQueryClaimTests(E2eeTestCase):
    async def _start(self) -> None:
        await super()._start()
        self.alice_device = await self.device_id(self.alice_token)
        self.alice_keys = device_keys(self.alice, self.alice_device, new_key())

    async def claim(self, token: str, algorithm: str = "signed_curve25519") -> dict:
        response = await self.client.post(
            f"{V3}/keys/claim",
            {"one_time_keys": {self.alice: {self.alice_device: algorithm}}},
            token,
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json["one_time_keys"].get(self.alice, {}).get(self.alice_device, {})

    @async_test
    async def test_uploaded_keys_are_queried_and_one_time_keys_claimed_once(self) -> None:
        uploaded = await self.upload_keys(
            self.alice_token,
            {
                "device_keys": self.alice_keys,
                "one_time_keys": {
                    "signed_curve25519:AAAA": otk("a"),
                    "signed_curve25519:AAAB": otk("b"),
                },
                "fallback_keys": {
                    "signed_curve25519:FFFF": {
                        "key": "fallback",
                        "fallback": True,
                        "signatures": {},
                    }
                },
            },
        )
        self.assertEqual(uploaded["one_time_key_counts"], {"signed_curve25519": 2})
        await self.client.put(
            f"{V3}/devices/{self.alice_device}",
            {"display_name": "Alice's laptop"},
            self.alice_token,
        )

        queried = await self.query_keys(self.bob_token, {self.alice: []})
        device = queried["device_keys"][self.alice][self.alice_device]
        self.assertEqual({k: v for k, v in device.items() if k != "unsigned"}, self.alice_keys)
        self.assertEqual(device["unsigned"], {"device_display_name": "Alice's laptop"})
        only = await self.query_keys(self.bob_token, {self.alice: ["NOSUCHDEVICE"]})
        self.assertEqual(only["device_keys"][self.alice], {})

        # Bob's device claims both one-time keys, each once, in upload order; then the
        # fallback key, as often as asked.
        first, second = await self.claim(self.bob_token), await self.claim(self.bob_token)
        self.assertEqual(
            [first, second],
            [{"signed_curve25519:AAAA": otk("a")}, {"signed_curve25519:AAAB": otk("b")}],
        )
        for _ in range(2):
            self.assertEqual(
                await self.claim(self.bob_token),
                {
                    "signed_curve25519:FFFF": {
                        "key": "fallback",
                        "fallback": True,
                        "signatures": {},
                    }
                },
            )
        self.assertEqual(await self.claim(self.bob_token, "other_algorithm"), {})

    @async_test
    async def test_sync_reports_key_counts_and_used_fallback_keys(self) -> None:
        fallback = {"signed_curve25519:F1": {"key": "f1", "fallback": True, "signatures": {}}}
        await self.upload_keys(
            self.alice_token,
            {"one_time_keys": {"signed_curve25519:K1": otk("1")}, "fallback_keys": fallback},
        )
        first = await self.sync(self.alice_token)
        self.assertEqual(first["device_one_time_keys_count"], {"signed_curve25519": 1})
        self.assertEqual(first["device_unused_fallback_key_types"], ["signed_curve25519"])

        await self.claim(self.bob_token)  # the one-time key
        await self.claim(self.bob_token)  # the fallback key, now used
        second = await self.sync(self.alice_token, first["next_batch"])
        self.assertEqual(second["device_one_time_keys_count"], {"signed_curve25519": 0})
        self.assertEqual(second["device_unused_fallback_key_types"], [])

        # Uploading the same key again does not make it unused; a new one does (and the
        # unstable name Element's older crypto uses is accepted).
        await self.upload_keys(self.alice_token, {"fallback_keys": fallback})
        self.assertEqual(
            (await self.sync(self.alice_token))["device_unused_fallback_key_types"], []
        )
        await self.upload_keys(
            self.alice_token,
            {"org.matrix.msc2732.fallback_keys": {"signed_curve25519:F2": {"key": "f2"}}},
        )
        third = await self.sync(self.alice_token)
        self.assertEqual(third["device_unused_fallback_key_types"], ["signed_curve25519"])
        # Bob's device has no keys at all.
        bobs = await self.sync(self.bob_token)
        self.assertEqual(bobs["device_one_time_keys_count"], {"signed_curve25519": 0})
        self.assertEqual(bobs["device_unused_fallback_key_types"], [])

    @async_test
    async def test_device_keys_must_be_for_the_requesting_device(self) -> None:
        for wrong in (
            device_keys(self.bob, self.alice_device, new_key()),
            device_keys(self.alice, "OTHERDEVICE", new_key()),
        ):
            response = await self.client.post(
                f"{V3}/keys/upload", {"device_keys": wrong}, self.alice_token
            )
            self.assertEqual(response.code, 400, response.json)
            self.assertEqual(response.json["errcode"], "M_INVALID_PARAM")
        for body in (
            {"device_keys": {**self.alice_keys, "keys": "not an object"}},
            {"one_time_keys": ["not", "an", "object"]},
            {"one_time_keys": {"no_colon": otk("x")}},
            {"fallback_keys": {"a:1": {"key": "x"}, "a:2": {"key": "y"}}},
        ):
            response = await self.client.post(f"{V3}/keys/upload", body, self.alice_token)
            self.assertEqual(response.code, 400, (body, response.json))
            self.assertEqual(response.json["errcode"], "M_BAD_JSON")
        # Nothing was stored by the refused uploads.
        queried = await self.query_keys(self.bob_token, {self.alice: []})
        self.assertEqual(queried["device_keys"][self.alice], {})

    @async_test
    async def test_one_time_key_id_cannot_be_reused_for_another_key(self) -> None:
        body = {"one_time_keys": {"signed_curve25519:K": otk("1")}}
        await self.upload_keys(self.alice_token, body)
        # A retry of the same upload is fine and does not duplicate the key.
        again = await self.upload_keys(self.alice_token, body)
        self.assertEqual(again["one_time_key_counts"]["signed_curve25519"], 1)
        response = await self.client.post(
            f"{V3}/keys/upload",
            {"one_time_keys": {"signed_curve25519:K": otk("2")}},
            self.alice_token,
        )
        self.assertEqual(response.code, 400)
        self.assertEqual(response.json["errcode"], "M_INVALID_PARAM")

    @async_test
    async def test_query_and_claim_bad_bodies_and_remote_users(self) -> None:
        for path, body in (
            ("query", {}),
            ("query", {"device_keys": {self.alice: "all"}}),
            ("claim", {}),
            ("claim", {"one_time_keys": {self.alice: ["DEVICE"]}}),
        ):
            response = await self.client.post(f"{V3}/keys/{path}", body, self.bob_token)
            self.assertEqual(response.code, 400, (path, body, response.json))
            self.assertEqual(response.json["errcode"], "M_BAD_JSON")
        queried = await self.query_keys(self.bob_token, {"@carol:elsewhere.example": []})
        self.assertIn("elsewhere.example", queried["failures"])
        self.assertNotIn("@carol:elsewhere.example", queried["device_keys"])
        claimed = await self.client.post(
            f"{V3}/keys/claim",
            {"one_time_keys": {"@carol:elsewhere.example": {"D": "signed_curve25519"}}},
            self.bob_token,
        )
        self.assertEqual(claimed.json["one_time_keys"], {})
        self.assertIn("elsewhere.example", claimed.json["failures"])

    @async_test
    async def test_deleting_a_device_deletes_its_keys(self) -> None:
        phone = await self.login("alice", "PHONE")
        await self.upload_keys(
            phone,
            {
                "device_keys": device_keys(self.alice, "PHONE", new_key()),
                "one_time_keys": {"signed_curve25519:P": otk("p")},
            },
        )
        queried = await self.query_keys(self.bob_token, {self.alice: []})
        self.assertIn("PHONE", queried["device_keys"][self.alice])
        logout = await self.client.post(f"{V3}/logout", {}, phone)
        self.assertEqual(logout.code, 200)
        queried = await self.query_keys(self.bob_token, {self.alice: []})
        self.assertEqual(queried["device_keys"][self.alice], {})
        response = await self.client.post(
            f"{V3}/keys/claim",
            {"one_time_keys": {self.alice: {"PHONE": "signed_curve25519"}}},
            self.bob_token,
        )
        self.assertEqual(response.json["one_time_keys"], {})
        # Logging in again with the same device ID starts with no keys.
        phone = await self.login("alice", "PHONE")
        counts = (await self.sync(phone))["device_one_time_keys_count"]
        self.assertEqual(counts, {"signed_curve25519": 0})
