"""Device keys, one-time keys and fallback keys: /keys/upload, /keys/query, /keys/claim, and
the key counts every /sync carries for the syncing device.

The server relays public keys; it does not check the devices' self-signatures (the clients that
use a key verify it, and must, since they cannot trust the server either). Other servers' users
are answered by their servers (homeserver/e2ee/remote.py); `query_local` and `claim_local` are
what other servers get from us.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.e2ee.device_lists import DeviceListService
from homeserver.e2ee.remote import RemoteKeyService, request_timeout_ms
from homeserver.errors import Codes, MatrixError, bad_json
from homeserver.identifiers import is_valid_user_id, server_of
from storage.e2ee_cross_signing import CrossSigningKey, Signature
from storage.e2ee_keys import KeyCounts, KeyUpload, OneTimeKeyConflict, StoredDeviceKeys
from storage.lru import LruCache
from storage.store import Storage

logger = logging.getLogger(__name__)

# Reported even when zero: clients read its presence as "the server counts keys".
OLM_ONE_TIME_KEY_ALGORITHM = "signed_curve25519"
# Element's crypto before fallback keys were stable (MSC2732) uploads them under this name.
UNSTABLE_FALLBACK_KEYS = "org.matrix.msc2732.fallback_keys"

Keys = list[tuple[str, str, Any]]


class KeyService:
    def __init__(
        self,
        server_name: str,
        storage: Storage,
        device_lists: DeviceListService,
        remote: RemoteKeyService,
    ) -> None:
        self.server_name = server_name
        self.remote = remote
        self.store = storage.e2ee.keys
        self.cross_signing = storage.e2ee.cross_signing
        self.device_lists = device_lists
        # (user, device) -> counts for /sync, dropped whenever the device's keys change.
        self._counts: LruCache[tuple[str, str], KeyCounts] = LruCache(10_000)
        # Bumped by every invalidation: a read that raced with one does not cache what it read.
        self._invalidations = 0

    # /keys/upload -------------------------------------------------------------------------------

    async def upload(
        self, user_id: str, device_id: str | None, body: dict[str, Any], now_ms: int
    ) -> dict[str, Any]:
        if device_id is None:
            raise MatrixError(400, Codes.INVALID_PARAM, "This access token has no device")
        fallback = body.get("fallback_keys", body.get(UNSTABLE_FALLBACK_KEYS))
        upload = KeyUpload(
            user_id,
            device_id,
            _device_keys(body.get("device_keys"), user_id, device_id),
            _key_map(body.get("one_time_keys"), "one_time_keys"),
            _fallback_keys(fallback),
            now_ms,
        )
        try:
            changes = await self.store.upload(upload)
        except OneTimeKeyConflict as conflict:
            raise MatrixError(
                400,
                Codes.INVALID_PARAM,
                f"One-time key {conflict.key_id} already exists with a different value",
            ) from None
        finally:
            self._forget(user_id, device_id)
        await self.device_lists.notify(changes)
        counts = await self.counts(user_id, device_id)
        return {"one_time_key_counts": _with_olm_count(counts.one_time)}

    # /sync ---------------------------------------------------------------------------------------

    async def counts(self, user_id: str, device_id: str) -> KeyCounts:
        counts = self._counts.get((user_id, device_id))
        if counts is None:
            invalidations = self._invalidations
            counts = await self.store.get_counts(user_id, device_id)
            if invalidations == self._invalidations:
                self._counts.set((user_id, device_id), counts)
        return counts

    async def sync_fields(self, user_id: str, device_id: str) -> dict[str, Any]:
        counts = await self.counts(user_id, device_id)
        return {
            "device_one_time_keys_count": _with_olm_count(counts.one_time),
            "device_unused_fallback_key_types": list(counts.unused_fallback),
        }

    def forget_counts(self, user_id: str) -> None:
        """A device of the user went away: its counts must not outlive it (deletions are
        rare, so dropping every entry is simplest)."""
        self._invalidations += 1
        self._counts.clear()

    def _forget(self, user_id: str, device_id: str) -> None:
        self._invalidations += 1
        self._counts.pop((user_id, device_id))

    # /keys/query --------------------------------------------------------------------------------

    async def query(self, requester: str, body: dict[str, Any]) -> dict[str, Any]:
        wanted = body.get("device_keys")
        if not isinstance(wanted, dict):
            raise bad_json("device_keys must be an object of user IDs to device ID lists")
        local: dict[str, list[str]] = {}
        remote: dict[str, list[str]] = {}
        for user_id, device_ids in wanted.items():
            if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
                raise bad_json(f"device_keys[{user_id}] must be a list of device IDs")
            if not is_valid_user_id(user_id):
                continue
            if server_of(user_id) == self.server_name:
                local[user_id] = device_ids
            else:
                remote[user_id] = device_ids
        result = await self.query_local(local, requester)
        result["failures"] = {}
        if remote:
            found = await self.remote.query(remote, request_timeout_ms(body))
            result["failures"] = found.failures
            result["device_keys"].update(found.device_keys)
            result["self_signing_keys"].update(found.self_signing_keys)
            # Our requester's own signatures of remote users' master keys (made with their
            # user-signing key) are stored here, and only they see them.
            signatures = await self.cross_signing.get_signatures(found.master_keys, requester)
            for user_id, master in found.master_keys.items():
                result["master_keys"][user_id] = _with_signatures(
                    master, signatures.get((user_id, _public_key(master)), [])
                )
        return result

    async def query_local(
        self, wanted: dict[str, list[str]], viewer: str | None
    ) -> dict[str, Any]:
        """device_keys, master_keys, self_signing_keys and user_signing_keys of local users
        (user -> device IDs, empty for all), with the signatures `viewer` may see: the
        owners', and the viewer's own (None: another server asks, which sees the owners')."""
        stored = await self.store.get_device_keys(wanted)
        signatures = await self.cross_signing.get_signatures(wanted, viewer or "")
        result: dict[str, Any] = {
            "device_keys": {
                user_id: {
                    device_id: _device_json(user_id, device_id, keys, signatures)
                    for device_id, keys in stored.get(user_id, {}).items()
                }
                for user_id in wanted
            },
        }
        result.update(await self._cross_signing_keys(viewer or "", list(wanted), signatures))
        return result

    async def _cross_signing_keys(
        self,
        requester: str,
        user_ids: list[str],
        signatures: dict[tuple[str, str], list[Signature]],
    ) -> dict[str, dict[str, Any]]:
        found = await self.cross_signing.get_keys(user_ids)
        sections: dict[str, dict[str, Any]] = {
            "master_keys": {},
            "self_signing_keys": {},
            "user_signing_keys": {},
        }
        for user_id, keys in found.items():
            for key_type, key in keys.items():
                # A user-signing key is seen by its owner only (spec: Cross-signing).
                if key_type == "user_signing" and user_id != requester:
                    continue
                sections[f"{key_type}_keys"][user_id] = _key_json(user_id, key, signatures)
        return sections

    # /keys/claim --------------------------------------------------------------------------------

    async def claim(self, body: dict[str, Any]) -> dict[str, Any]:
        wanted = body.get("one_time_keys")
        if not isinstance(wanted, dict):
            raise bad_json("one_time_keys must be an object of user IDs to devices")
        local: list[tuple[str, str, str]] = []
        remote: dict[str, dict[str, str]] = {}
        for user_id, devices in wanted.items():
            if not isinstance(devices, dict) or not all(
                isinstance(a, str) for a in devices.values()
            ):
                raise bad_json(f"one_time_keys[{user_id}] must map device IDs to algorithms")
            if not is_valid_user_id(user_id):
                continue
            if server_of(user_id) != self.server_name:
                remote[user_id] = devices
                continue
            local += [(user_id, device_id, algorithm) for device_id, algorithm in devices.items()]
        claimed = await self.claim_local(local)
        failures: dict[str, Any] = {}
        if remote:
            remote_claimed, failures = await self.remote.claim(remote, request_timeout_ms(body))
            claimed.update(remote_claimed)
        return {"one_time_keys": claimed, "failures": failures}

    async def claim_local(
        self, wanted: list[tuple[str, str, str]]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """Claims a key of each local (user, device, algorithm) that has one."""
        claimed = await self.store.claim(wanted)
        for user_id, devices in claimed.items():
            for device_id in devices:
                self._forget(user_id, device_id)
        return claimed


def _with_olm_count(counts: dict[str, int]) -> dict[str, int]:
    return {OLM_ONE_TIME_KEY_ALGORITHM: 0, **counts}


def _device_keys(value: Any, user_id: str, device_id: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_json("device_keys must be an object")
    # The spec: user_id and device_id "must match" the ones used at login.
    if value.get("user_id") != user_id or value.get("device_id") != device_id:
        raise MatrixError(
            400,
            Codes.INVALID_PARAM,
            "device_keys must be for the user and device of the access token",
        )
    algorithms = value.get("algorithms")
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        raise bad_json("device_keys.algorithms must be a list of strings")
    keys = value.get("keys")
    if not isinstance(keys, dict) or not all(isinstance(k, str) for k in keys.values()):
        raise bad_json("device_keys.keys must map key IDs to strings")
    if not isinstance(value.get("signatures"), dict):
        raise bad_json("device_keys.signatures must be an object")
    return value


def _key_map(value: Any, what: str) -> Keys:
    """`{"<algorithm>:<key_id>": key}` as (algorithm, key_id, key), checked."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise bad_json(f"{what} must be an object")
    keys: Keys = []
    for name, key in value.items():
        algorithm, _, key_id = name.partition(":")
        if not algorithm or not key_id:
            raise bad_json(f"{what}: key names must be <algorithm>:<key_id>, not {name!r}")
        if not isinstance(key, str | dict) or (
            isinstance(key, dict) and not isinstance(key.get("key"), str)
        ):
            raise bad_json(f"{what}[{name}] must be a string or a key object")
        keys.append((algorithm, key_id, key))
    return keys


def _fallback_keys(value: Any) -> Keys:
    keys = _key_map(value, "fallback_keys")
    algorithms = [algorithm for algorithm, _, _ in keys]
    if len(set(algorithms)) != len(algorithms):
        raise bad_json("fallback_keys: at most one key per algorithm")
    return keys


def _device_json(
    user_id: str,
    device_id: str,
    stored: StoredDeviceKeys,
    signatures: dict[tuple[str, str], list[Signature]],
) -> dict[str, Any]:
    device = dict(stored.keys)
    _merge_signatures(device, signatures.get((user_id, device_id), []))
    # `unsigned` is the server's to fill in: whatever a client uploaded there is not kept.
    device["unsigned"] = (
        {"device_display_name": stored.display_name} if stored.display_name is not None else {}
    )
    return device


def _key_json(
    user_id: str, key: CrossSigningKey, signatures: dict[tuple[str, str], list[Signature]]
) -> dict[str, Any]:
    result = dict(key.key)
    _merge_signatures(result, signatures.get((user_id, key.public_key), []))
    return result


def _public_key(key: dict[str, Any]) -> str:
    """The public key of a cross-signing key object (its one `keys` entry)."""
    keys = key.get("keys")
    if isinstance(keys, dict) and len(keys) == 1:
        [(_, public)] = keys.items()
        if isinstance(public, str):
            return public
    return ""


def _with_signatures(obj: dict[str, Any], extra: list[Signature]) -> dict[str, Any]:
    result = dict(obj)
    _merge_signatures(result, extra)
    return result


def _merge_signatures(obj: dict[str, Any], extra: list[Signature]) -> None:
    if not extra:
        return
    merged = {user: dict(sigs) for user, sigs in (obj.get("signatures") or {}).items()}
    for sig in extra:
        merged.setdefault(sig.signer_user_id, {})[sig.signer_key_id] = sig.signature
    obj["signatures"] = merged
