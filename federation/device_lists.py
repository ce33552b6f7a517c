"""End-to-end encryption across servers: other servers' users' keys for our clients, and our
users' device lists for other servers (spec, server-server "Device Management" and
"End-to-End Encryption").

Outbound: /keys/query and /keys/claim of our clients ask each remote user's server
(`/user/keys/query`, `/user/keys/claim`), all servers in parallel and bounded by the request's
`timeout`; a server that fails or does not answer in time is listed in `failures`. Changes of
our users' devices go out as m.device_list_update and m.signing_key_update EDUs to every server
sharing a room with them.

Inbound: those EDUs drop our cached copy of the user's keys and tell our users sharing a room
with them (`device_lists.changed` in /sync). A join drops cached copies that nobody kept up to
date while no room was shared.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from federation.client import FederationError
from federation.joins import servers_in_room
from homeserver.e2ee.remote import FetchResult
from homeserver.ephemeral.common import run_in_background
from homeserver.events.event import Event
from homeserver.identifiers import is_valid_user_id, server_of

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

V1 = "/_matrix/federation/v1"


class DeviceListFederation:
    def __init__(self, hs: HomeServer) -> None:
        self.hs = hs
        self.server_name = hs.server_name

    def register(self) -> None:
        e2ee = self.hs.e2ee
        e2ee.remote.fetcher = self
        e2ee.announcer.deliver = self.deliver
        handlers = self.hs.federation_transactions.edu_handlers
        handlers["m.device_list_update"] = self.on_device_list_update
        handlers["m.signing_key_update"] = self.on_signing_key_update
        self.hs.storage.persister.add_observer(self.on_new_events)

    # -- asking other servers (RemoteKeyFetcher) ---------------------------------------------------

    async def query_keys(
        self, requests: dict[str, dict[str, list[str]]], timeout_ms: int
    ) -> FetchResult:
        bodies = {server: {"device_keys": wanted} for server, wanted in requests.items()}
        return await self._ask_all(f"{V1}/user/keys/query", bodies, timeout_ms)

    async def claim_keys(
        self, requests: dict[str, dict[str, dict[str, str]]], timeout_ms: int
    ) -> FetchResult:
        bodies = {server: {"one_time_keys": wanted} for server, wanted in requests.items()}
        return await self._ask_all(f"{V1}/user/keys/claim", bodies, timeout_ms)

    async def _ask_all(
        self, path: str, bodies: dict[str, dict[str, Any]], timeout_ms: int
    ) -> FetchResult:
        """POSTs each server its body, all at once; (answers, failures) by server."""
        timeout_s = max(timeout_ms, 1) / 1000

        def ask(server: str) -> defer.Deferred:
            work = defer.ensureDeferred(
                self.hs.federation_client.post_json(server, path, bodies[server],
                                                    timeout=timeout_s)
            )
            # The client's timeout leaves out finding the server (DNS, .well-known).
            work.addTimeout(timeout_s, self.hs.reactor)
            return work

        servers = sorted(bodies)
        results = await defer.DeferredList([ask(s) for s in servers], consumeErrors=True)
        answers: dict[str, Any] = {}
        failures: dict[str, dict[str, Any]] = {}
        for server, (ok, value) in zip(servers, results, strict=True):
            if ok:
                answers[server] = value
            else:
                failures[server] = _failure(server, value.value)
        return answers, failures

    # -- telling other servers ---------------------------------------------------------------------

    async def deliver(self, user_id: str, edus: list[tuple[str, dict[str, Any]]]) -> None:
        """Announcer hook: queues the EDUs for every server sharing a room with `user_id`."""
        for destination in sorted(await self._servers_sharing_rooms(user_id)):
            for edu_type, content in edus:
                await self.hs.federation_sender.send_edu(destination, edu_type, content)

    async def _servers_sharing_rooms(self, user_id: str) -> set[str]:
        servers: set[str] = set()
        rooms = await self.hs.storage.state.get_rooms_for_user(user_id)
        for room_id, membership in list(rooms.items()):
            if membership != "join":
                continue
            snapshot = await self.hs.storage.state.get_snapshot(room_id)
            if snapshot is not None:
                servers |= servers_in_room(snapshot.memberships)
        servers.discard(self.server_name)
        return servers

    # -- inbound -----------------------------------------------------------------------------------

    async def on_device_list_update(self, origin: str, content: dict[str, Any]) -> None:
        user_id = content.get("user_id")
        if not _from_origin(user_id, origin) or not isinstance(content.get("device_id"), str):
            logger.info("Dropping a malformed m.device_list_update from %s", origin)
            return
        # The update's keys are not applied to the cached copy: it is dropped, and the next
        # query asks again. (Applying them would need the prev_id chain checked.)
        await self.hs.e2ee.remote.remote_user_changed(user_id)

    async def on_signing_key_update(self, origin: str, content: dict[str, Any]) -> None:
        user_id = content.get("user_id")
        if not _from_origin(user_id, origin):
            logger.info("Dropping a malformed m.signing_key_update from %s", origin)
            return
        await self.hs.e2ee.remote.remote_user_changed(user_id)

    def on_new_events(self, events: list[Event]) -> None:
        """Persister observer: joins may start sharing a room with users whose cached keys
        nobody kept up to date."""
        joins = [
            (event.room_id, event.state_key)
            for event in events
            if event.type == "m.room.member"
            and event.state_key
            and event.membership == "join"
            and event.rejected_reason is None
        ]
        if joins:
            run_in_background("dropping stale remote device lists", self._joined(joins))

    async def _joined(self, joins: list[tuple[str, str]]) -> None:
        for room_id, user_id in joins:
            await self.hs.e2ee.remote.joined(room_id, user_id)


def _from_origin(user_id: Any, origin: str) -> bool:
    """A server may only speak for its own users."""
    return isinstance(user_id, str) and is_valid_user_id(user_id) and server_of(user_id) == origin


def _failure(server: str, error: BaseException) -> dict[str, Any]:
    """A `failures` entry, as Synapse writes them: the status, and the remote errcode."""
    if isinstance(error, FederationError):
        failure: dict[str, Any] = {"status": error.code or 503, "message": str(error)}
        if error.errcode is not None:
            failure["errcode"] = error.errcode
        return failure
    if isinstance(error, defer.TimeoutError | defer.CancelledError):
        return {"status": 503, "message": f"{server} did not answer in time"}
    logger.warning("Asking %s for keys failed: %r", server, error)
    return {"status": 503, "message": f"Could not reach {server}"}
