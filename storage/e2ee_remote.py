"""End-to-end encryption across servers: a cache of other servers' users' keys, and the
sequence of device-list updates we announce about our own users.

The cache holds, per remote user, what their server answered to /user/keys/query (all devices,
master and self-signing key). It is dropped whenever their server announces a change, and a
fetched answer is not stored if a change was announced while the request was in flight.

Announcements are kept as a hash of what was last sent for each device and cross-signing key of
a local user; `announce` compares them with the current keys and numbers the differences.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn
from storage.device_lists import ChangeLog, DeviceListChange, DeviceListStore
from storage.events import chunks, placeholders

DEVICE = "device"
SIGNING = "signing"


@dataclass(frozen=True)
class RemoteUserKeys:
    """One remote user's keys as their server answered: device ID -> device keys (with the
    `unsigned` their server added), and the master and self-signing keys if any."""

    devices: dict[str, dict[str, Any]]
    master_key: dict[str, Any] | None = None
    self_signing_key: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"devices": self.devices}
        if self.master_key is not None:
            found["master_key"] = self.master_key
        if self.self_signing_key is not None:
            found["self_signing_key"] = self.self_signing_key
        return found

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RemoteUserKeys:
        return cls(obj.get("devices") or {}, obj.get("master_key"), obj.get("self_signing_key"))


@dataclass(frozen=True)
class DeviceAnnouncement:
    """One m.device_list_update to send: `keys` None means the device was deleted."""

    device_id: str
    stream_id: int
    prev_ids: list[int]
    keys: dict[str, Any] | None


@dataclass(frozen=True)
class Announcements:
    devices: list[DeviceAnnouncement]
    # Whether the master or self-signing key changed (an m.signing_key_update is due).
    signing_keys_changed: bool
    # The stream_id of the last device announcement (after these).
    stream_id: int


def fingerprint(obj: Any) -> str:
    dumped = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(dumped.encode("utf-8")).hexdigest()


class RemoteKeyStore:
    def __init__(self, db: Database, device_lists: DeviceListStore) -> None:
        self.db = db
        self.device_lists = device_lists

    # The cache of remote users' keys --------------------------------------------------------------

    async def get_cached(self, user_ids: Iterable[str]) -> dict[str, RemoteUserKeys]:
        wanted = list(dict.fromkeys(user_ids))

        def txn_fn(txn: Txn) -> dict[str, RemoteUserKeys]:
            found: dict[str, RemoteUserKeys] = {}
            for chunk in chunks(wanted):
                for user_id, keys_json in txn.query(
                    "SELECT user_id, keys_json FROM remote_e2e_keys_cache"
                    f" WHERE user_id IN ({placeholders(len(chunk))})",
                    chunk,
                ):
                    found[user_id] = RemoteUserKeys.from_json(json.loads(keys_json))
            return found

        return await self.db.run("get_remote_e2e_keys", txn_fn) if wanted else {}

    async def store_cached(
        self, answers: dict[str, RemoteUserKeys], position: int, now_ms: int
    ) -> None:
        """Caches the answers, except for users whose device list changed after `position`
        (the device-list stream position before the request was sent): the answer may predate
        the change."""

        def txn_fn(txn: Txn) -> None:
            for user_id, keys in answers.items():
                if txn.query_one(
                    "SELECT 1 FROM device_lists_stream WHERE user_id = ? AND stream_id > ?"
                    " AND only_for IS NULL",
                    (user_id, position),
                ):
                    continue
                txn.execute(
                    "INSERT INTO remote_e2e_keys_cache (user_id, keys_json, cached_ts)"
                    " VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE"
                    " SET keys_json = excluded.keys_json, cached_ts = excluded.cached_ts",
                    (user_id, json.dumps(keys.to_json(), sort_keys=True), now_ms),
                )

        if answers:
            await self.db.run("store_remote_e2e_keys", txn_fn)

    async def remote_user_changed(self, user_id: str, announce: bool) -> list[DeviceListChange]:
        """Their server says `user_id`'s devices or keys changed: the cached copy goes, and
        (when `announce`) local users sharing a room with them are told."""

        def txn_fn(txn: Txn, log: ChangeLog) -> None:
            txn.execute("DELETE FROM remote_e2e_keys_cache WHERE user_id = ?", (user_id,))
            if announce:
                log.add(user_id)

        if not announce:
            await self.db.run(
                "forget_remote_e2e_keys",
                lambda txn: txn.execute(
                    "DELETE FROM remote_e2e_keys_cache WHERE user_id = ?", (user_id,)
                ),
            )
            return []
        _, changes = await self.device_lists.write("remote_device_list_changed", txn_fn)
        return changes

    async def forget(self, user_ids: Iterable[str]) -> None:
        """Drops cached copies (their server may not have kept us informed)."""
        wanted = list(dict.fromkeys(user_ids))

        def txn_fn(txn: Txn) -> None:
            for chunk in chunks(wanted):
                txn.execute(
                    "DELETE FROM remote_e2e_keys_cache"
                    f" WHERE user_id IN ({placeholders(len(chunk))})",
                    chunk,
                )

        if wanted:
            await self.db.run("forget_remote_e2e_keys", txn_fn)

    # Who shares a room with whom -------------------------------------------------------------------

    async def sharing_a_room(self, user_ids: Iterable[str]) -> set[str]:
        """Those of `user_ids` joined to a room that a local user (one with an account here)
        is joined to, from current state."""
        wanted = list(dict.fromkeys(user_ids))

        def txn_fn(txn: Txn) -> set[str]:
            found: set[str] = set()
            for chunk in chunks(wanted):
                found.update(
                    row[0]
                    for row in txn.query(
                        "SELECT DISTINCT c1.state_key FROM current_state c1"
                        " WHERE c1.type = 'm.room.member' AND c1.membership = 'join'"
                        f" AND c1.state_key IN ({placeholders(len(chunk))})"
                        " AND EXISTS (SELECT 1 FROM current_state c2"
                        " JOIN users u ON u.user_id = c2.state_key"
                        " WHERE c2.room_id = c1.room_id AND c2.type = 'm.room.member'"
                        " AND c2.membership = 'join')",
                        chunk,
                    )
                )
            return found

        return await self.db.run("users_sharing_a_room", txn_fn) if wanted else set()

    async def local_room_mates(self, user_id: str) -> set[str]:
        """Local users joined to a room `user_id` is joined to."""
        rows = await self.db.run(
            "local_room_mates",
            lambda txn: txn.query(
                "SELECT DISTINCT c2.state_key FROM current_state c1"
                " JOIN current_state c2 ON c2.room_id = c1.room_id"
                " AND c2.type = 'm.room.member' AND c2.membership = 'join'"
                " JOIN users u ON u.user_id = c2.state_key"
                " WHERE c1.type = 'm.room.member' AND c1.state_key = ? AND c1.membership = 'join'",
                (user_id,),
            ),
        )
        return {row[0] for row in rows}

    # Announcements about local users -----------------------------------------------------------

    async def announce(
        self,
        user_id: str,
        devices: dict[str, dict[str, Any]],
        signing_keys: dict[str, dict[str, Any]],
    ) -> Announcements:
        """Compares the current devices (device ID -> what to send) and cross-signing keys (key
        type -> key) with what was last announced, records the new state and returns what to
        send, each device update numbered after the last one."""
        current = {(DEVICE, d): fingerprint(keys) for d, keys in devices.items()}
        current.update({(SIGNING, k): fingerprint(key) for k, key in signing_keys.items()})
        return await self.db.run("announce_device_list", _announce_txn, user_id, current, devices)

    async def announced_position(self, user_id: str) -> int:
        row = await self.db.run(
            "announced_device_list_position",
            lambda txn: txn.query_one(
                "SELECT stream_id FROM device_lists_announced_position WHERE user_id = ?",
                (user_id,),
            ),
        )
        return int(row[0]) if row else 0


def _announce_txn(
    txn: Txn,
    user_id: str,
    current: dict[tuple[str, str], str],
    devices: dict[str, dict[str, Any]],
) -> Announcements:
    before = {
        (kind, item_id): print_
        for kind, item_id, print_ in txn.query(
            "SELECT kind, item_id, fingerprint FROM device_lists_announced WHERE user_id = ?",
            (user_id,),
        )
    }
    row = txn.query_one(
        "SELECT stream_id FROM device_lists_announced_position WHERE user_id = ?", (user_id,)
    )
    last = int(row[0]) if row else 0
    position = last
    announced: list[DeviceAnnouncement] = []
    signing_changed = False
    for item in sorted(set(before) | set(current)):
        kind, item_id = item
        if before.get(item) == current.get(item):
            continue
        if item in current:
            txn.execute(
                "INSERT INTO device_lists_announced (user_id, kind, item_id, fingerprint)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, kind, item_id) DO UPDATE"
                " SET fingerprint = excluded.fingerprint",
                (user_id, kind, item_id, current[item]),
            )
        else:
            txn.execute(
                "DELETE FROM device_lists_announced"
                " WHERE user_id = ? AND kind = ? AND item_id = ?",
                (user_id, kind, item_id),
            )
        if kind == SIGNING:
            signing_changed = True
            continue
        # Sent in series, each update refers to the one before it (the spec's prev_id).
        prev_ids = [position] if position else []
        position += 1
        announced.append(DeviceAnnouncement(item_id, position, prev_ids, devices.get(item_id)))
    if position != last:
        txn.execute(
            "INSERT INTO device_lists_announced_position (user_id, stream_id) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET stream_id = excluded.stream_id",
            (user_id, position),
        )
    return Announcements(announced, signing_changed, position)
