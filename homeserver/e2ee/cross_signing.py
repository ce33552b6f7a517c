"""Cross-signing: /keys/device_signing/upload and /keys/signatures/upload (spec: Cross-signing).

The server checks the signatures the spec makes it responsible for: self-signing and
user-signing keys signed by the master key, devices signed by the self-signing key, other users'
master keys signed by the user-signing key, and the user's master key signed by their devices.
"""

from __future__ import annotations

from typing import Any

from homeserver.e2ee.device_lists import DeviceListService
from homeserver.e2ee.remote import RemoteKeyService
from homeserver.errors import Codes, MatrixError, bad_json, forbidden
from homeserver.events.signing import SignatureError, decode_verify_key_base64, verify_json_object
from homeserver.identifiers import is_valid_user_id, server_of
from storage.device_lists import DeviceListChange
from storage.e2ee_cross_signing import CrossSigningKey, Signature
from storage.store import Storage

# Request body field -> the key type (and `usage`) it holds.
KEY_FIELDS = {
    "master_key": "master",
    "self_signing_key": "self_signing",
    "user_signing_key": "user_signing",
}


class CrossSigningService:
    def __init__(
        self,
        server_name: str,
        storage: Storage,
        device_lists: DeviceListService,
        remote: RemoteKeyService,
    ) -> None:
        self.server_name = server_name
        self.storage = storage
        self.store = storage.e2ee.cross_signing
        self.device_lists = device_lists
        self.remote = remote

    # /keys/device_signing/upload ------------------------------------------------------------------

    async def needs_auth(self, user_id: str, body: dict[str, Any]) -> bool:
        """The spec: interactive auth unless the user has no master key yet, or the request
        repeats exactly the keys already stored (a retry after a lost response)."""
        existing = await self.store.get_user_keys(user_id)
        if "master" not in existing:
            return False
        for field, key_type in KEY_FIELDS.items():
            if body.get(field) is None:
                continue
            stored = existing.get(key_type)
            if stored is None or stored.key != body[field]:
                return True
        return False

    async def upload_keys(self, user_id: str, body: dict[str, Any]) -> None:
        parsed = {
            key_type: _parse_key(body[field], user_id, key_type)
            for field, key_type in KEY_FIELDS.items()
            if body.get(field) is not None
        }
        if not parsed:
            return
        existing = await self.store.get_user_keys(user_id)
        master = parsed.get("master") or existing.get("master")
        if master is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "No master signing key is available")
        for key_type in ("self_signing", "user_signing"):
            if key_type in parsed and not _signed_by(parsed[key_type].key, user_id, master):
                raise MatrixError(
                    400,
                    Codes.INVALID_SIGNATURE,
                    f"The {key_type} key is not signed by the master key",
                )
        device_ids = {
            device.device_id for device in await self.storage.accounts.get_devices(user_id)
        }
        if any(key.public_key in device_ids for key in parsed.values()):
            # Device IDs and cross-signing public keys share one namespace of key IDs.
            raise forbidden("Key ID in use")
        changed = {
            key_type: key
            for key_type, key in parsed.items()
            if key_type not in existing or existing[key_type].key != key.key
        }
        if changed:
            await self.device_lists.notify(await self.store.set_keys(user_id, changed))

    # /keys/signatures/upload ----------------------------------------------------------------------

    async def upload_signatures(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        own = await self.store.get_user_keys(user_id)
        failures: dict[str, dict[str, Any]] = {}
        signatures: list[Signature] = []
        changes: list[DeviceListChange] = []
        for target_user, objects in body.items():
            if not isinstance(objects, dict):
                raise bad_json(f"{target_user} must map key IDs to signed objects")
            for key_id, signed in objects.items():
                try:
                    found, change = await self._check(user_id, own, target_user, key_id, signed)
                except MatrixError as error:
                    failures.setdefault(target_user, {})[key_id] = error.to_json()
                    continue
                signatures += found
                if change not in changes:
                    changes.append(change)
        await self.device_lists.notify(await self.store.add_signatures(signatures, changes))
        return {"failures": failures}

    async def _check(
        self,
        user_id: str,
        own: dict[str, CrossSigningKey],
        target_user: str,
        key_id: str,
        signed: Any,
    ) -> tuple[list[Signature], DeviceListChange]:
        if not isinstance(signed, dict):
            raise bad_json("A signed object must be an object")
        if target_user == user_id:
            master = own.get("master")
            if master is not None and key_id == master.public_key:
                return await self._device_signatures_of_master(user_id, master, signed), (
                    DeviceListChange(user_id)
                )
            return await self._self_signed_device(user_id, own, key_id, signed), (
                DeviceListChange(user_id)
            )
        # Only this user sees their user-signing signatures, so only they get the news.
        signature = await self._user_signed_master(user_id, own, target_user, key_id, signed)
        return [signature], DeviceListChange(target_user, only_for=user_id)

    async def _self_signed_device(
        self, user_id: str, own: dict[str, CrossSigningKey], device_id: str, signed: dict
    ) -> list[Signature]:
        devices = await self.storage.e2ee.keys.get_device_keys({user_id: [device_id]})
        stored = devices.get(user_id, {}).get(device_id)
        if stored is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown device or key")
        _check_same_object(signed, stored.keys)
        self_signing = own.get("self_signing")
        if self_signing is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "No self-signing key is available")
        return [_verified(signed, user_id, self_signing.key_id, self_signing.public_key, device_id)]

    async def _device_signatures_of_master(
        self, user_id: str, master: CrossSigningKey, signed: dict
    ) -> list[Signature]:
        _check_same_object(signed, master.key)
        offered = _signatures_by(signed, user_id)
        already = _signatures_by(master.key, user_id)
        new = {k: v for k, v in offered.items() if already.get(k) != v}
        devices = (await self.storage.e2ee.keys.get_device_keys({user_id: []})).get(user_id, {})
        found = []
        for signer_key_id in new:
            device_id = signer_key_id.removeprefix("ed25519:")
            device = devices.get(device_id)
            public = device.keys.get("keys", {}).get(signer_key_id) if device else None
            if not signer_key_id.startswith("ed25519:") or not isinstance(public, str):
                raise MatrixError(
                    400, Codes.INVALID_SIGNATURE, f"Unknown signing key {signer_key_id}"
                )
            found.append(_verified(signed, user_id, signer_key_id, public, master.public_key))
        if not found:
            raise MatrixError(400, Codes.INVALID_SIGNATURE, "No new signature by a device")
        return found

    async def _user_signed_master(
        self,
        user_id: str,
        own: dict[str, CrossSigningKey],
        target_user: str,
        key_id: str,
        signed: dict,
    ) -> Signature:
        if not is_valid_user_id(target_user):
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown user or key")
        if server_of(target_user) == self.server_name:
            master = (await self.store.get_user_keys(target_user)).get("master")
        else:
            # Another server's user: their master key as their server tells it; the signature
            # stays here, for the signer's eyes only.
            master = _remote_master(await self.remote.master_key(target_user))
        if master is None or master.public_key != key_id:
            # Of other users, only the master key may be signed (by the user-signing key).
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown user or key")
        _check_same_object(signed, master.key)
        user_signing = own.get("user_signing")
        if user_signing is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "No user-signing key is available")
        signature = _verified(signed, user_id, user_signing.key_id, user_signing.public_key, key_id)
        return Signature(user_id, user_signing.key_id, target_user, key_id, signature.signature)


def _remote_master(key: dict[str, Any] | None) -> CrossSigningKey | None:
    """Another server's user's master key (as their server answered), if well-formed."""
    if key is None or not isinstance(key.get("keys"), dict) or len(key["keys"]) != 1:
        return None
    [(key_id, public_key)] = key["keys"].items()
    if not isinstance(public_key, str) or key_id != f"ed25519:{public_key}":
        return None
    return CrossSigningKey(public_key, key)


def _parse_key(value: Any, user_id: str, key_type: str) -> CrossSigningKey:
    if not isinstance(value, dict):
        raise bad_json(f"The {key_type} key must be an object")
    if value.get("user_id") != user_id:
        raise MatrixError(400, Codes.INVALID_PARAM, f"The {key_type} key is for another user")
    usage = value.get("usage")
    if not isinstance(usage, list) or key_type not in usage:
        raise MatrixError(400, Codes.INVALID_PARAM, f"The {key_type} key's usage must list it")
    keys = value.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise bad_json(f"The {key_type} key must have exactly one public key")
    [(key_id, public_key)] = keys.items()
    if key_id != f"ed25519:{public_key}" or not _is_ed25519_key(public_key):
        raise MatrixError(
            400, Codes.INVALID_PARAM, f"The {key_type} key must be ed25519:<public key>"
        )
    signatures = value.get("signatures", {})
    if not isinstance(signatures, dict):
        raise bad_json(f"The {key_type} key's signatures must be an object")
    return CrossSigningKey(public_key, value)


def _is_ed25519_key(public_key: Any) -> bool:
    if not isinstance(public_key, str):
        return False
    try:
        decode_verify_key_base64(f"ed25519:{public_key}", public_key)
    except Exception:  # bad base64, or not 32 bytes: nacl raises several kinds
        return False
    return True


def _signed_by(obj: dict[str, Any], user_id: str, key: CrossSigningKey) -> bool:
    try:
        verify_key = decode_verify_key_base64(key.key_id, key.public_key)
        verify_json_object(obj, user_id, verify_key)
    except (SignatureError, ValueError, TypeError):
        return False
    return True


def _verified(
    signed: dict[str, Any], user_id: str, signer_key_id: str, public_key: str, target: str
) -> Signature:
    """The signature in `signed` by signer_key_id, after checking it; M_INVALID_SIGNATURE if
    it is missing or does not verify."""
    signature = _signatures_by(signed, user_id).get(signer_key_id)
    if not isinstance(signature, str):
        raise MatrixError(400, Codes.INVALID_SIGNATURE, f"Missing signature by {signer_key_id}")
    try:
        verify_key = decode_verify_key_base64(signer_key_id, public_key)
        verify_json_object(signed, user_id, verify_key)
    except (SignatureError, ValueError, TypeError):
        raise MatrixError(400, Codes.INVALID_SIGNATURE, "Invalid signature") from None
    return Signature(user_id, signer_key_id, user_id, target, signature)


def _signatures_by(obj: dict[str, Any], user_id: str) -> dict[str, Any]:
    signatures = obj.get("signatures")
    by_user = signatures.get(user_id) if isinstance(signatures, dict) else None
    return by_user if isinstance(by_user, dict) else {}


def _check_same_object(signed: dict[str, Any], stored: dict[str, Any]) -> None:
    """The spec: the signed object must match the stored key, `signatures` aside."""

    def bare(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}

    if bare(signed) != bare(stored):
        raise MatrixError(400, Codes.INVALID_PARAM, "The signed object does not match the key")
