"""Other servers' users' keys: asking their servers on behalf of /keys/query and /keys/claim,
and a cache of their device lists (spec, server-server "Device Management").

Their servers are asked through a `RemoteKeyFetcher` that federation sets (the core never talks
HTTP); without one, every remote server is reported in `failures`.

A remote user's answer is cached while a local user shares a room with them: their server then
sends an m.device_list_update (or m.signing_key_update) for every change, which drops the cached
copy and tells the local users sharing a room that the user's devices changed. A cached copy is
used only while a room is still shared, and dropped when sharing starts again (a join), since
their server may not have kept us informed in between.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from homeserver.clock import Clock
from homeserver.e2ee.device_lists import DeviceListService
from homeserver.identifiers import server_of
from storage.e2ee_remote import RemoteUserKeys
from storage.store import Storage

# The spec recommends 10 seconds when a request names no `timeout`.
DEFAULT_TIMEOUT_MS = 10_000
MAX_TIMEOUT_MS = 60_000
FEDERATION_UNAVAILABLE = {"status": 503, "message": "Federation is not available on this server"}

# server -> the request's body part for that server; the answer is (answers by server,
# failures by server), each failure a JSON object as /keys/query's `failures` holds.
FetchResult = tuple[dict[str, Any], dict[str, dict[str, Any]]]


class RemoteKeyFetcher(Protocol):
    async def query_keys(
        self, requests: dict[str, dict[str, list[str]]], timeout_ms: int
    ) -> FetchResult:
        """POST /user/keys/query to each server (`device_keys` per server), in parallel."""
        ...

    async def claim_keys(
        self, requests: dict[str, dict[str, dict[str, str]]], timeout_ms: int
    ) -> FetchResult:
        """POST /user/keys/claim to each server (`one_time_keys` per server), in parallel."""
        ...


@dataclass
class RemoteQueryResult:
    device_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    master_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    self_signing_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)


def request_timeout_ms(body: dict[str, Any]) -> int:
    """The `timeout` of a /keys/query or /keys/claim body, in milliseconds, within bounds."""
    value = body.get("timeout")
    if not isinstance(value, int) or isinstance(value, bool):
        return DEFAULT_TIMEOUT_MS
    return max(0, min(value, MAX_TIMEOUT_MS))


class RemoteKeyService:
    def __init__(
        self, server_name: str, storage: Storage, device_lists: DeviceListService, clock: Clock
    ) -> None:
        self.server_name = server_name
        self.storage = storage
        self.store = storage.e2ee.remote
        self.device_lists = device_lists
        self.clock = clock
        self.fetcher: RemoteKeyFetcher | None = None

    # /keys/query ---------------------------------------------------------------------------------

    async def query(self, wanted: dict[str, list[str]], timeout_ms: int) -> RemoteQueryResult:
        """Keys of remote users (user -> device IDs, empty for all): from the cache where it
        is kept up to date, else from their servers."""
        result = RemoteQueryResult()
        cached = await self.store.get_cached(wanted)
        to_fetch: dict[str, dict[str, list[str]]] = {}
        cacheable: set[str] = set()
        stale: list[str] = []
        sharing = await self.sharing(wanted)
        for user_id, device_ids in wanted.items():
            shared = user_id in sharing
            if user_id in cached:
                if shared:
                    _add_user(result, user_id, cached[user_id], device_ids)
                    continue
                stale.append(user_id)
            if shared:
                # Asked for all devices, so that the answer can be cached.
                cacheable.add(user_id)
                to_fetch.setdefault(server_of(user_id), {})[user_id] = []
            else:
                to_fetch.setdefault(server_of(user_id), {})[user_id] = list(device_ids)
        if stale:
            await self.store.forget(stale)
        if not to_fetch:
            return result
        if self.fetcher is None:
            result.failures = {server: dict(FEDERATION_UNAVAILABLE) for server in to_fetch}
            return result
        position = self.device_lists.store.stream.current
        answers, failures = await self.fetcher.query_keys(to_fetch, timeout_ms)
        result.failures.update(failures)
        to_cache: dict[str, RemoteUserKeys] = {}
        for server, answer in answers.items():
            asked = to_fetch.get(server, {})
            for user_id, keys in parse_query_answer(asked, answer).items():
                _add_user(result, user_id, keys, wanted[user_id])
                if user_id in cacheable:
                    to_cache[user_id] = keys
        await self.store.store_cached(to_cache, position, self.clock.time_msec())
        return result

    async def master_key(self, user_id: str) -> dict[str, Any] | None:
        """A remote user's master key (for signing it with a user-signing key)."""
        found = await self.query({user_id: []}, DEFAULT_TIMEOUT_MS)
        return found.master_keys.get(user_id)

    # /keys/claim ---------------------------------------------------------------------------------

    async def claim(
        self, wanted: dict[str, dict[str, str]], timeout_ms: int
    ) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, Any]]]:
        """(one-time keys, failures) claimed from remote users' servers."""
        by_server: dict[str, dict[str, dict[str, str]]] = {}
        for user_id, devices in wanted.items():
            by_server.setdefault(server_of(user_id), {})[user_id] = devices
        if not by_server:
            return {}, {}
        if self.fetcher is None:
            return {}, {server: dict(FEDERATION_UNAVAILABLE) for server in by_server}
        answers, failures = await self.fetcher.claim_keys(by_server, timeout_ms)
        claimed: dict[str, dict[str, dict[str, Any]]] = {}
        for server, answer in answers.items():
            claimed.update(parse_claim_answer(by_server.get(server, {}), answer))
        return claimed, failures

    # News from other servers -------------------------------------------------------------------

    async def remote_user_changed(self, user_id: str) -> None:
        """Their server announced a change of `user_id`'s devices or cross-signing keys."""
        room_mates = await self.store.local_room_mates(user_id)
        await self.store.remote_user_changed(user_id, announce=bool(room_mates))
        self.device_lists.notifier.wake_users(room_mates)

    async def joined(self, room_id: str, user_id: str) -> None:
        """`user_id` joined `room_id`. Cached copies of users we may not have shared a room
        with until now are dropped: their servers had no reason to keep us informed."""
        if server_of(user_id) != self.server_name:
            await self.store.forget([user_id])
            return
        snapshot = await self.storage.state.get_snapshot(room_id)
        if snapshot is None:
            return
        joined = snapshot.joined_users()
        if any(server_of(u) == self.server_name and u != user_id for u in joined):
            return  # we were in the room already, and heard of every change
        await self.store.forget(u for u in joined if server_of(u) != self.server_name)

    async def shares_room(self, user_id: str) -> bool:
        return bool(await self.sharing([user_id]))

    async def sharing(self, user_ids: Iterable[str]) -> set[str]:
        """Those of `user_ids` joined to a room that a local user is joined to."""
        # From the database: the in-memory rooms-of-a-user cache is kept for local users'
        # own membership events, not for other servers' users seen through a join.
        return await self.store.sharing_a_room(user_ids)


def _add_user(
    result: RemoteQueryResult, user_id: str, keys: RemoteUserKeys, device_ids: list[str]
) -> None:
    devices = keys.devices
    if device_ids:
        devices = {d: devices[d] for d in device_ids if d in devices}
    result.device_keys[user_id] = devices
    if keys.master_key is not None:
        result.master_keys[user_id] = keys.master_key
    if keys.self_signing_key is not None:
        result.self_signing_keys[user_id] = keys.self_signing_key


def parse_query_answer(asked: dict[str, list[str]], answer: Any) -> dict[str, RemoteUserKeys]:
    """The keys of the asked users in a /user/keys/query answer; whatever is malformed, or
    about users we did not ask for, is left out."""
    if not isinstance(answer, dict):
        return {}
    device_keys = _dict(answer.get("device_keys"))
    found: dict[str, RemoteUserKeys] = {}
    for user_id in asked:
        devices = device_keys.get(user_id)
        master = _cross_signing_key(answer.get("master_keys"), user_id, "master")
        self_signing = _cross_signing_key(answer.get("self_signing_keys"), user_id, "self_signing")
        if not isinstance(devices, dict) and master is None:
            continue
        clean = {
            device_id: keys
            for device_id, keys in _dict(devices).items()
            if isinstance(keys, dict)
            and keys.get("user_id") == user_id
            and keys.get("device_id") == device_id
        }
        found[user_id] = RemoteUserKeys(clean, master, self_signing)
    return found


def parse_claim_answer(
    asked: dict[str, dict[str, str]], answer: Any
) -> dict[str, dict[str, dict[str, Any]]]:
    """The claimed keys of the asked devices in a /user/keys/claim answer."""
    one_time_keys = _dict(answer.get("one_time_keys") if isinstance(answer, dict) else None)
    claimed: dict[str, dict[str, dict[str, Any]]] = {}
    for user_id, devices in asked.items():
        by_device = _dict(one_time_keys.get(user_id))
        for device_id in devices:
            keys = _dict(by_device.get(device_id))
            good = {
                key_id: key
                for key_id, key in keys.items()
                if isinstance(key_id, str) and isinstance(key, str | dict)
            }
            if good:
                claimed.setdefault(user_id, {})[device_id] = good
    return claimed


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _cross_signing_key(section: Any, user_id: str, usage: str) -> dict[str, Any] | None:
    key = _dict(section).get(user_id)
    if (
        isinstance(key, dict)
        and key.get("user_id") == user_id
        and isinstance(key.get("usage"), list)
        and usage in key["usage"]
        and isinstance(key.get("keys"), dict)
        and all(isinstance(sigs, dict) for sigs in _dict(key.get("signatures")).values())
        and isinstance(key.get("signatures", {}), dict)
    ):
        return key
    return None
