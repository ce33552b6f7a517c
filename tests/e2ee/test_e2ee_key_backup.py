"""Server-side key backups: versions, keys with etag and count, and the replacement rules."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.asyncutil import async_test
from tests.client.client_testing import V3
from tests.e2ee.e2ee_testing import E2eeTestCase

ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
ROOM = "!room:test.local"


def key(
    first_message_index: int = 0, forwarded_count: int = 0, verified: bool = False, tag: str = ""
) -> dict[str, Any]:
    return {
        "first_message_index": first_message_index,
        "forwarded_count": forwarded_count,
        "is_verified": verified,
        "session_data": {"ciphertext": tag or "c", "ephemeral": "e", "mac": "m"},
    }


class KeyBackupTests(E2eeTestCase):
    async def create_version(self, auth_data: dict | None = None) -> str:
        response = await self.client.post(
            f"{V3}/room_keys/version",
            {"algorithm": ALGORITHM, "auth_data": auth_data or {"public_key": "pk"}},
            self.alice_token,
        )
        self.assertEqual(response.code, 200, response.json)
        return response.json["version"]

    async def call(self, method: str, path: str, version: str | None, body: Any = None) -> Any:
        query = f"?version={quote(version)}" if version is not None else ""
        return await self.client.request(
            method, f"{V3}/room_keys/keys{path}{query}", body, self.alice_token
        )

    async def put_session(self, version: str, session: str, data: dict) -> dict:
        response = await self.call("PUT", f"/{quote(ROOM)}/{session}", version, data)
        self.assertEqual(response.code, 200, response.json)
        return response.json

    async def stored(self, version: str, session: str) -> dict:
        response = await self.call("GET", f"/{quote(ROOM)}/{session}", version)
        self.assertEqual(response.code, 200, response.json)
        return response.json

    @async_test
    async def test_versions_lifecycle(self) -> None:
        missing = await self.client.get(f"{V3}/room_keys/version", self.alice_token)
        self.assertEqual((missing.code, missing.json["errcode"]), (404, "M_NOT_FOUND"))
        first = await self.create_version()
        second = await self.create_version({"public_key": "pk2"})
        self.assertNotEqual(first, second)
        current = await self.client.get(f"{V3}/room_keys/version", self.alice_token)
        self.assertEqual(
            current.json,
            {
                "version": second,
                "algorithm": ALGORITHM,
                "auth_data": {"public_key": "pk2"},
                "etag": current.json["etag"],
                "count": 0,
            },
        )
        self.assertIsInstance(current.json["etag"], str)
        old = await self.client.get(f"{V3}/room_keys/version/{first}", self.alice_token)
        self.assertEqual(old.json["auth_data"], {"public_key": "pk"})

        path = f"{V3}/room_keys/version/{second}"
        update = {"algorithm": ALGORITHM, "auth_data": {"public_key": "pk3"}, "version": second}
        self.assertEqual((await self.client.put(path, update, self.alice_token)).code, 200)
        self.assertEqual(
            (await self.client.get(path, self.alice_token)).json["auth_data"], {"public_key": "pk3"}
        )
        for bad in ({**update, "version": first}, {**update, "algorithm": "other.algorithm"}):
            response = await self.client.put(path, bad, self.alice_token)
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_INVALID_PARAM"))

        # Deleting twice succeeds; a version that never existed is 404. The older version
        # becomes the current one; Bob sees none of Alice's backups.
        for _ in range(2):
            deleted = await self.client.request("DELETE", path, token=self.alice_token)
            self.assertEqual(deleted.code, 200)
        self.assertEqual((await self.client.get(path, self.alice_token)).code, 404)
        never = await self.client.request(
            "DELETE", f"{V3}/room_keys/version/99", token=self.alice_token
        )
        self.assertEqual(never.code, 404)
        current = await self.client.get(f"{V3}/room_keys/version", self.alice_token)
        self.assertEqual(current.json["version"], first)
        self.assertEqual(
            (await self.client.get(f"{V3}/room_keys/version", self.bob_token)).code, 404
        )
        third = await self.create_version()
        self.assertNotIn(third, (first, second))

    @async_test
    async def test_keys_with_etag_count_and_the_three_paths(self) -> None:
        version = await self.create_version()
        info = (await self.client.get(f"{V3}/room_keys/version", self.alice_token)).json
        one = await self.put_session(version, "s1", key(tag="one"))
        self.assertEqual(one["count"], 1)
        self.assertNotEqual(one["etag"], info["etag"])
        room_put = await self.call(
            "PUT", f"/{quote(ROOM)}", version, {"sessions": {"s2": key(tag="two")}}
        )
        self.assertEqual(room_put.json["count"], 2)
        all_put = await self.call(
            "PUT", "", version, {"rooms": {"!other:test.local": {"sessions": {"s3": key()}}}}
        )
        self.assertEqual(all_put.json["count"], 3)

        everything = (await self.call("GET", "", version)).json
        self.assertEqual(sorted(everything["rooms"]), sorted([ROOM, "!other:test.local"]))
        self.assertEqual(everything["rooms"][ROOM]["sessions"]["s1"], key(tag="one"))
        room = (await self.call("GET", f"/{quote(ROOM)}", version)).json
        self.assertEqual(sorted(room["sessions"]), ["s1", "s2"])
        empty_room = await self.call("GET", "/!nothing:test.local", version)
        self.assertEqual(empty_room.json, {"sessions": {}})
        missing = await self.call("GET", f"/{quote(ROOM)}/nope", version)
        self.assertEqual((missing.code, missing.json["errcode"]), (404, "M_NOT_FOUND"))

        # A re-upload that changes nothing keeps the etag; a deletion changes it.
        same = await self.put_session(version, "s1", key(tag="one"))
        self.assertEqual(same["etag"], all_put.json["etag"])
        deleted = await self.call("DELETE", f"/{quote(ROOM)}/s1", version)
        self.assertEqual(deleted.json["count"], 2)
        self.assertNotEqual(deleted.json["etag"], same["etag"])
        deleted_room = await self.call("DELETE", f"/{quote(ROOM)}", version)
        self.assertEqual(deleted_room.json["count"], 1)
        deleted_all = await self.call("DELETE", "", version)
        self.assertEqual(deleted_all.json["count"], 0)
        self.assertEqual((await self.call("GET", "", version)).json, {"rooms": {}})

    @async_test
    async def test_replacement_rules(self) -> None:
        version = await self.create_version()
        await self.put_session(version, "s", key(first_message_index=5, forwarded_count=2))
        # Unverified, later index: kept out.
        await self.put_session(version, "s", key(first_message_index=6, tag="worse"))
        self.assertEqual((await self.stored(version, "s"))["first_message_index"], 5)
        # Lower index wins.
        await self.put_session(version, "s", key(first_message_index=3, forwarded_count=9))
        self.assertEqual((await self.stored(version, "s"))["first_message_index"], 3)
        # Same index: lower forwarded count wins; an equal one does not replace.
        await self.put_session(version, "s", key(first_message_index=3, forwarded_count=1))
        await self.put_session(version, "s", key(3, 1, tag="tie"))
        stored = await self.stored(version, "s")
        self.assertEqual(
            (stored["forwarded_count"], stored["session_data"]["ciphertext"]), (1, "c")
        )
        # Verified beats unverified, whatever the index; unverified never replaces verified.
        await self.put_session(version, "s", key(first_message_index=50, verified=True))
        await self.put_session(version, "s", key(first_message_index=0, verified=False))
        stored = await self.stored(version, "s")
        self.assertEqual((stored["is_verified"], stored["first_message_index"]), (True, 50))

    @async_test
    async def test_wrong_and_missing_versions(self) -> None:
        old = await self.create_version()
        current = await self.create_version()
        for version in (old, "42", "not-a-number"):
            response = await self.call("PUT", f"/{quote(ROOM)}/s", version, key())
            self.assertEqual(response.code, 403, response.json)
            self.assertEqual(response.json["errcode"], "M_WRONG_ROOM_KEYS_VERSION")
            self.assertEqual(response.json["current_version"], current)
        # Old versions can still be read; unknown ones cannot.
        self.assertEqual((await self.call("GET", "", old)).code, 200)
        for method in ("GET", "DELETE"):
            response = await self.call(method, "", "42")
            self.assertEqual((response.code, response.json["errcode"]), (404, "M_NOT_FOUND"))
            response = await self.call(method, "", None)
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_MISSING_PARAM"))
        response = await self.call("PUT", f"/{quote(ROOM)}/s", None, key())
        self.assertEqual((response.code, response.json["errcode"]), (400, "M_MISSING_PARAM"))
        # Without any backup at all, a PUT is 404.
        response = await self.client.request(
            "PUT", f"{V3}/room_keys/keys/{quote(ROOM)}/s?version=1", key(), self.bob_token
        )
        self.assertEqual((response.code, response.json["errcode"]), (404, "M_NOT_FOUND"))

    @async_test
    async def test_bad_bodies(self) -> None:
        version = await self.create_version()
        for body in (
            {"algorithm": ALGORITHM},
            {"auth_data": {}},
            {"algorithm": 5, "auth_data": {}},
        ):
            response = await self.client.post(f"{V3}/room_keys/version", body, self.alice_token)
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_BAD_JSON"))
        for data in (
            {**key(), "first_message_index": "1"},
            {**key(), "forwarded_count": -1},
            {**key(), "is_verified": 1},
            {**key(), "session_data": "x"},
            {k: v for k, v in key().items() if k != "session_data"},
        ):
            response = await self.call("PUT", f"/{quote(ROOM)}/s", version, data)
            self.assertEqual((response.code, response.json["errcode"]), (400, "M_BAD_JSON"))
        response = await self.call("PUT", "", version, {"rooms": {ROOM: {"sessions": []}}})
        self.assertEqual((response.code, response.json["errcode"]), (400, "M_BAD_JSON"))
        self.assertEqual((await self.call("GET", "", version)).json, {"rooms": {}})
