"""Room routes of the federation API: transactions, joins, events, state, missing events,
backfill."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Handler, Router
from federation.acl import require_origin_allowed
from federation.joins import servers_in_room
from homeserver.errors import Codes, MatrixError, bad_json, forbidden, not_found
from homeserver.events.event import Event

if TYPE_CHECKING:
    from homeserver.server import HomeServer

V1 = "/_matrix/federation/v1"
V2 = "/_matrix/federation/v2"
MAX_BACKFILL = 100


def register_routes(router: Router, hs: HomeServer) -> None:
    async def origin_in_room(request: ApiRequest, room_id: str) -> None:
        snapshot = await hs.storage.state.get_snapshot(room_id)
        if snapshot is None:
            raise not_found("Unknown room")
        if request.origin not in servers_in_room(snapshot.memberships):
            raise forbidden("Your server is not in this room")

    def acl_protected(handler: Handler) -> Handler:
        """The room's server ACL applies to every route naming a room (spec: Server ACLs)."""

        async def protected(request: ApiRequest) -> tuple[int, Any]:
            assert request.origin is not None
            await require_origin_allowed(hs.storage, request.origin,
                                         request.path_params["roomId"])
            return await handler(request)

        return protected

    async def send_transaction(request: ApiRequest) -> tuple[int, Any]:
        body = request.json()
        if not isinstance(body.get("pdus", []), list) or not isinstance(body.get("edus", []),
                                                                        list):
            raise bad_json("pdus and edus must be lists")
        if body.get("origin") not in (None, request.origin):
            raise forbidden("Transaction origin does not match the signature")
        assert request.origin is not None
        answer = await hs.federation_transactions.on_transaction(
            request.origin, request.path_params["txnId"], body
        )
        return 200, answer

    def make_membership(membership: str, versions: bool) -> Any:
        async def handler(request: ApiRequest) -> tuple[int, Any]:
            assert request.origin is not None
            answer = await hs.federation_joins.make_membership(
                request.origin,
                request.path_params["roomId"],
                request.path_params["userId"],
                membership,
                request.query_list("ver") if versions else None,
            )
            return 200, answer

        return handler

    def event_handler(accept: Any, wrap_v1: bool = False) -> Any:
        """PUT routes that hand over one signed event: send_join/leave/knock and invite."""

        async def handler(request: ApiRequest) -> tuple[int, Any]:
            assert request.origin is not None
            answer = await accept(
                request.origin,
                request.path_params["roomId"],
                request.path_params["eventId"],
                request.json(),
            )
            if wrap_v1:
                # v1 wraps the answer in [200, {...}] (and has no members_omitted).
                v1_keys = ("origin", "state", "auth_chain", "event")
                return 200, [200, {k: v for k, v in answer.items() if k in v1_keys}]
            return 200, answer

        return handler

    joins = hs.federation_joins
    send_join_v1 = event_handler(joins.send_join, wrap_v1=True)
    send_join_v2 = event_handler(joins.send_join)
    invite_v2 = event_handler(hs.federation_invites.on_invite)

    async def get_event(request: ApiRequest) -> tuple[int, Any]:
        event = await hs.storage.events.get_event(request.path_params["eventId"],
                                                  allow_rejected=False)
        if event is None:
            raise not_found("Event not found")
        await origin_in_room(request, event.room_id)
        assert request.origin is not None
        await require_origin_allowed(hs.storage, request.origin, event.room_id)
        return 200, _transaction(hs, [event])

    async def state_at(request: ApiRequest) -> tuple[Event, dict, dict[str, Event]]:
        room_id = request.path_params["roomId"]
        await origin_in_room(request, room_id)
        event_id = request.query_str("event_id", required=True)
        event = await hs.storage.events.get_event(event_id or "")
        if event is None or event.room_id != room_id or event.state_group_before is None:
            raise not_found("Event not found, or no state known at it")
        state = await hs.storage.state.get_state_group(event.state_group_before)
        chain = await hs.remote_events.load_auth_chain(state.values())
        return event, state, chain

    async def state_ids(request: ApiRequest) -> tuple[int, Any]:
        _event, state, chain = await state_at(request)
        return 200, {
            "pdu_ids": sorted(state.values()),
            "auth_chain_ids": sorted(set(chain) - set(state.values())),
        }

    async def state(request: ApiRequest) -> tuple[int, Any]:
        _event, state, chain = await state_at(request)
        state_events = [chain[e] for e in state.values() if e in chain]
        return 200, {
            "pdus": [e.pdu for e in state_events],
            "auth_chain": [e.pdu for eid, e in chain.items() if eid not in state.values()],
        }

    async def event_auth(request: ApiRequest) -> tuple[int, Any]:
        room_id = request.path_params["roomId"]
        await origin_in_room(request, room_id)
        event = await hs.storage.events.get_event(request.path_params["eventId"],
                                                  allow_rejected=True)
        if event is None or event.room_id != room_id:
            raise not_found("Event not found")
        chain = await hs.remote_events.load_auth_chain(event.auth_event_ids)
        return 200, {"auth_chain": [e.pdu for e in chain.values()]}

    async def get_missing_events(request: ApiRequest) -> tuple[int, Any]:
        room_id = request.path_params["roomId"]
        await origin_in_room(request, room_id)
        body = request.json()
        earliest = _id_list(body, "earliest_events")
        latest = _id_list(body, "latest_events")
        limit = body.get("limit", 10)
        min_depth = body.get("min_depth", 0)
        if not isinstance(limit, int) or not isinstance(min_depth, int):
            raise bad_json("limit and min_depth must be integers")
        found = await walk_back(room_id, latest, set(earliest) | set(latest),
                                min(max(limit, 0), MAX_BACKFILL), min_depth)
        return 200, {"events": [e.pdu for e in found]}

    async def backfill(request: ApiRequest) -> tuple[int, Any]:
        room_id = request.path_params["roomId"]
        await origin_in_room(request, room_id)
        start = request.query_list("v")
        limit = request.query_int("limit", required=True, minimum=0) or 0
        if not start:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing v")
        given = await hs.storage.events.get_events(start)
        earlier = await walk_back(room_id, start, set(), min(limit, MAX_BACKFILL), 0)
        events = [e for e in given.values() if e.room_id == room_id] + earlier
        return 200, _transaction(hs, events[: min(limit, MAX_BACKFILL)])

    async def walk_back(
        room_id: str, start: list[str], skip: set[str], limit: int, min_depth: int
    ) -> list[Event]:
        """Breadth-first through prev_events from `start` (not included), newest first."""
        found: list[Event] = []
        seen = set(skip) | set(start)
        frontier = list(start)
        while frontier and len(found) < limit:
            events = await hs.storage.events.get_events(frontier)
            next_ids = []
            for event in events.values():
                for prev in event.prev_event_ids:
                    if prev not in seen:
                        seen.add(prev)
                        next_ids.append(prev)
            prevs = await hs.storage.events.get_events(next_ids)
            layer = [prevs[i] for i in next_ids if i in prevs and prevs[i].room_id == room_id
                     and prevs[i].depth >= min_depth]
            found.extend(layer[: limit - len(found)])
            frontier = [e.event_id for e in layer]
        return found

    router.add("PUT", f"{V1}/send/{{txnId}}", send_transaction, auth="federation")
    router.add("GET", f"{V1}/event/{{eventId}}", get_event, auth="federation")
    in_room_routes = [
        ("GET", f"{V1}/make_join/{{roomId}}/{{userId}}", make_membership("join", True)),
        ("PUT", f"{V1}/send_join/{{roomId}}/{{eventId}}", send_join_v1),
        ("PUT", f"{V2}/send_join/{{roomId}}/{{eventId}}", send_join_v2),
        ("PUT", f"{V2}/invite/{{roomId}}/{{eventId}}", invite_v2),
        ("GET", f"{V1}/make_leave/{{roomId}}/{{userId}}", make_membership("leave", False)),
        ("PUT", f"{V1}/send_leave/{{roomId}}/{{eventId}}",
         event_handler(joins.send_leave, wrap_v1=True)),
        ("PUT", f"{V2}/send_leave/{{roomId}}/{{eventId}}", event_handler(joins.send_leave)),
        ("GET", f"{V1}/make_knock/{{roomId}}/{{userId}}", make_membership("knock", True)),
        ("PUT", f"{V1}/send_knock/{{roomId}}/{{eventId}}", event_handler(joins.send_knock)),
        ("GET", f"{V1}/state_ids/{{roomId}}", state_ids),
        ("GET", f"{V1}/state/{{roomId}}", state),
        ("GET", f"{V1}/event_auth/{{roomId}}/{{eventId}}", event_auth),
        ("POST", f"{V1}/get_missing_events/{{roomId}}", get_missing_events),
        ("GET", f"{V1}/backfill/{{roomId}}", backfill),
    ]
    for method, path, handler in in_room_routes:
        router.add(method, path, acl_protected(handler), auth="federation")


def _transaction(hs: HomeServer, events: list[Event]) -> dict[str, Any]:
    return {
        "origin": hs.server_name,
        "origin_server_ts": hs.clock.time_msec(),
        "pdus": [e.pdu for e in events],
    }


def _id_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_json(f"{key} must be a list of event IDs")
    return value
