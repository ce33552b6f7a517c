"""Telling other servers about our users' devices (spec, server-server "Device Management").

Whenever a local user's device list changes as their room-mates see it (a device's keys
uploaded, changed, signed or deleted, a device renamed, new cross-signing keys), the current
devices and cross-signing keys are compared with what was last announced. Each device that
differs becomes an m.device_list_update with the next `stream_id` of that user and, as
`prev_id`, the one before it; changed master or self-signing keys become an
m.signing_key_update. Federation (`deliver`) sends them to every server sharing a room with the
user.

GET /user/devices answers the same snapshot, announcing any pending difference first, so its
`stream_id` is the one the next update refers to.

Only devices with identity keys are announced: the others do not appear in /keys/query either.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer

from homeserver.e2ee.keys import KeyService
from homeserver.ephemeral.common import run_in_background
from storage.e2ee_remote import Announcements, DeviceAnnouncement
from storage.store import Storage

logger = logging.getLogger(__name__)

# (local user, [(edu_type, content), ...]) -> None, set by federation.
Deliver = Callable[[str, list[tuple[str, dict[str, Any]]]], Awaitable[None]]


class DeviceListAnnouncer:
    def __init__(self, storage: Storage, keys: KeyService) -> None:
        self.store = storage.e2ee.remote
        self.keys = keys
        self.deliver: Deliver | None = None
        # One announcement per user at a time, so that stream_ids and prev_ids follow the order
        # in which the changes were read.
        self._locks: dict[str, defer.DeferredLock] = {}

    def local_change(self, user_id: str) -> None:
        """DeviceListService observer: `user_id` (local) has news for their room-mates."""
        if self.deliver is None:
            return
        run_in_background("announcing a device list change", self.announce(user_id))

    async def announce(self, user_id: str) -> None:
        await self._locked(user_id, self._announce, user_id)

    async def user_devices(self, user_id: str) -> dict[str, Any]:
        """The answer to GET /_matrix/federation/v1/user/devices/{userId}."""
        stream_id, devices, signing = await self._locked(user_id, self._announce, user_id)
        answer: dict[str, Any] = {
            "user_id": user_id,
            "stream_id": stream_id,
            "devices": [_device_entry(device_id, keys) for device_id, keys in devices.items()],
        }
        for key_type in ("master", "self_signing"):
            if key_type in signing:
                answer[f"{key_type}_key"] = signing[key_type]
        return answer

    async def _announce(
        self, user_id: str
    ) -> tuple[int, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Announces what changed; (the user's last stream_id, devices, cross-signing keys)."""
        found = await self.keys.query_local({user_id: []}, viewer=None)
        devices = found["device_keys"].get(user_id, {})
        signing = {
            key_type: found[f"{key_type}_keys"][user_id]
            for key_type in ("master", "self_signing")
            if user_id in found[f"{key_type}_keys"]
        }
        announcements = await self.store.announce(user_id, devices, signing)
        edus = _edus(user_id, announcements, signing)
        if edus and self.deliver is not None:
            try:
                await self.deliver(user_id, edus)
            except Exception:
                logger.exception("Could not queue device list updates of %s", user_id)
        return announcements.stream_id, devices, signing

    async def _locked(self, key: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = defer.DeferredLock()
        await lock.acquire()
        try:
            return await fn(*args)
        finally:
            lock.release()
            if not lock.locked and not lock.waiting and self._locks.get(key) is lock:
                del self._locks[key]


def _device_entry(device_id: str, keys: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"device_id": device_id, "keys": _signed_part(keys)}
    name = keys.get("unsigned", {}).get("device_display_name")
    if isinstance(name, str):
        entry["device_display_name"] = name
    return entry


def _signed_part(keys: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in keys.items() if k != "unsigned"}


def _edus(
    user_id: str, announcements: Announcements, signing: dict[str, dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    edus = [("m.device_list_update", _device_edu(user_id, a)) for a in announcements.devices]
    if announcements.signing_keys_changed and signing:
        content: dict[str, Any] = {"user_id": user_id}
        for key_type in ("master", "self_signing"):
            if key_type in signing:
                content[f"{key_type}_key"] = signing[key_type]
        edus.append(("m.signing_key_update", content))
    return edus


def _device_edu(user_id: str, announcement: DeviceAnnouncement) -> dict[str, Any]:
    content: dict[str, Any] = {
        "user_id": user_id,
        "device_id": announcement.device_id,
        "stream_id": announcement.stream_id,
        "prev_id": announcement.prev_ids,
    }
    if announcement.keys is None:
        content["deleted"] = True
        return content
    entry = _device_entry(announcement.device_id, announcement.keys)
    content["keys"] = entry["keys"]
    if "device_display_name" in entry:
        content["device_display_name"] = entry["device_display_name"]
    return content
