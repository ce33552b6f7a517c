"""What the end-to-end encryption tests share: extra logins, real ed25519 keys, and syncs."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from signedjson.key import generate_signing_key
from signedjson.types import SigningKey
from unpaddedbase64 import encode_base64

from homeserver.events.canonical_json import encode_canonical_json
from tests.client.client_testing import V3, ClientTestCase

PASSWORD = "correct horse"


def public_key(key: SigningKey) -> str:
    return encode_base64(key.verify_key.encode())


def sign(obj: dict[str, Any], user_id: str, key: SigningKey, key_id: str) -> dict[str, Any]:
    """Adds user_id's signature by `key` under `key_id`, as the spec's Signing JSON says."""
    bare = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    signature = encode_base64(key.sign(encode_canonical_json(bare)).signature)
    obj.setdefault("signatures", {}).setdefault(user_id, {})[key_id] = signature
    return obj


def new_key() -> SigningKey:
    return generate_signing_key("k")


def device_keys(user_id: str, device_id: str, key: SigningKey) -> dict[str, Any]:
    """Identity keys as a device uploads them, self-signed."""
    keys = {
        "user_id": user_id,
        "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            f"curve25519:{device_id}": "curve+" + device_id,
            f"ed25519:{device_id}": public_key(key),
        },
    }
    return sign(keys, user_id, key, f"ed25519:{device_id}")


def cross_signing_key(user_id: str, usage: str, key: SigningKey) -> dict[str, Any]:
    pub = public_key(key)
    return {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{pub}": pub}}


class E2eeTestCase(ClientTestCase):
    async def login(self, name: str, device_id: str) -> str:
        """A further device of an existing user; returns its access token."""
        response = await self.client.post(
            f"{V3}/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": name},
                "password": PASSWORD,
                "device_id": device_id,
            },
        )
        assert response.code == 200, response.json
        return response.json["access_token"]

    async def device_id(self, token: str) -> str:
        response = await self.client.get(f"{V3}/account/whoami", token)
        assert response.code == 200, response.json
        return response.json["device_id"]

    async def sync(self, token: str, since: str | None = None, **params: Any) -> dict[str, Any]:
        query = "timeout=0"
        if since:
            query += "&since=" + quote(since)
        for key, value in params.items():
            query += f"&{key}={quote(json.dumps(value) if isinstance(value, dict) else str(value))}"
        response = await self.client.get(f"{V3}/sync?{query}", token)
        assert response.code == 200, response.json
        return response.json

    async def create_room(self, token: str, **body: Any) -> str:
        response = await self.client.post(f"{V3}/createRoom", body, token)
        assert response.code == 200, response.json
        return response.json["room_id"]

    async def join(self, room_id: str, token: str) -> None:
        response = await self.client.post(f"{V3}/join/{quote(room_id)}", {}, token)
        assert response.code == 200, response.json

    async def leave(self, room_id: str, token: str) -> None:
        response = await self.client.post(f"{V3}/rooms/{quote(room_id)}/leave", {}, token)
        assert response.code == 200, response.json

    async def upload_keys(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(f"{V3}/keys/upload", body, token)
        assert response.code == 200, response.json
        return response.json

    async def query_keys(self, token: str, users: dict[str, list[str]]) -> dict[str, Any]:
        response = await self.client.post(f"{V3}/keys/query", {"device_keys": users}, token)
        assert response.code == 200, response.json
        return response.json
