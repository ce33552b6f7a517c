"""Incoming transactions (`PUT /send/{txnId}`): PDUs into rooms, EDUs to their streams.

Each PDU is checked (format, signatures, hash), then handed to the core when we hold its
prev_events; a gap is filled with `/get_missing_events` from the origin. The same transaction
from the same origin is processed once: a retry gets the first answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from federation.acl import origin_allowed
from federation.backfill import fetch_state_before
from federation.client import FederationError, federation_path
from federation.pdus import PduError, check_signatures_and_hash, parse_pdu
from homeserver.events.event import Event
from homeserver.rooms.remote_events import MissingState
from storage.lru import LruCache

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100
# How many missing events one /get_missing_events may bring.
MISSING_EVENTS_LIMIT = 20

EduHandler = Callable[[str, dict[str, Any]], Awaitable[None]]


class TransactionHandler:
    def __init__(self, hs: HomeServer) -> None:
        self.hs = hs
        # (origin, txn_id) -> the answer, or the Deferred of a transaction still running.
        self._answers: LruCache[tuple[str, str], Any] = LruCache(10_000)
        self.edu_handlers: dict[str, EduHandler] = {}

    async def on_transaction(self, origin: str, txn_id: str, body: dict[str, Any]) -> dict:
        key = (origin, txn_id)
        known = self._answers.get(key)
        if isinstance(known, defer.Deferred):
            waiter: defer.Deferred = defer.Deferred()
            known.addBoth(lambda result: (waiter.callback(result), result)[1])
            return await waiter
        if known is not None:
            return known
        running = defer.ensureDeferred(self._process(origin, body))
        self._answers.set(key, running)
        try:
            answer = await running
        except Exception:
            self._answers.pop(key)
            raise
        self._answers.set(key, answer)
        return answer

    async def _process(self, origin: str, body: dict[str, Any]) -> dict[str, Any]:
        pdus = body.get("pdus") or []
        edus = body.get("edus") or []
        results: dict[str, dict[str, str]] = {}
        for pdu in pdus[:MAX_PDUS]:
            try:
                event_id, error = await self._process_pdu(origin, pdu)
            except defer.CancelledError:
                raise  # shutting down: not a failure of this PDU
            except Exception as e:
                # One PDU we fail on must not fail the transaction: the sender would retry
                # it forever and nothing else would get through.
                logger.exception("Failed to process a PDU from %s", origin)
                event_id, error = _id_of(pdu), f"Internal error: {type(e).__name__}"
            if event_id is not None:
                results[event_id] = {"error": error} if error else {}
        for edu in edus[:MAX_EDUS]:
            await self._process_edu(origin, edu)
        return {"pdus": results}

    async def _process_pdu(self, origin: str, pdu: Any) -> tuple[str | None, str | None]:
        room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
        if not isinstance(room_id, str):
            return None, None  # without a room we cannot even name the event
        room_version = await self.hs.storage.events.get_room_version(room_id)
        if room_version is None:
            return _id_of(pdu), "This server is not in the room"
        if not await origin_allowed(self.hs.storage, origin, room_id):
            return _id_of(pdu), "The room's server ACL denies the sending server"
        try:
            event = parse_pdu(pdu, room_version)
        except PduError as e:
            logger.info("Dropping an invalid PDU from %s: %s", origin, e)
            return _id_of(pdu), str(e)
        try:
            event = await check_signatures_and_hash(self.hs.keyring, event)
            stored = await self._receive_with_prevs(origin, event)
        except PduError as e:
            return event.event_id, str(e)
        except (MissingState, FederationError) as e:
            logger.info("Could not place %s from %s: %s", event.event_id, origin, e)
            return event.event_id, f"Could not fetch what the event depends on: {e}"
        if stored.rejected_reason is not None:
            return stored.event_id, stored.rejected_reason
        return stored.event_id, None

    async def _receive_with_prevs(self, origin: str, event: Event) -> Event:
        """Fetches missing prev_events from the origin first (oldest first), then the event."""
        try:
            return await self.hs.remote_events.receive(event)
        except MissingState:
            pass
        for missing in await self._get_missing_events(origin, event):
            try:
                await self.hs.remote_events.receive(missing)
            except MissingState:
                logger.info("Still missing the state before %s", missing.event_id)
        try:
            return await self.hs.remote_events.receive(event)
        except MissingState:
            # The gap is too big to walk: ask the origin for the state before the event.
            state = await fetch_state_before(self.hs, origin, event)
            return await self.hs.remote_events.receive(event, state)

    async def _get_missing_events(self, origin: str, event: Event) -> list[Event]:
        snapshot = await self.hs.storage.state.get_snapshot(event.room_id)
        earliest = snapshot.forward_extremities if snapshot else []
        answer = await self.hs.federation_client.post_json(
            origin,
            federation_path("/_matrix/federation/v1/get_missing_events/{}", event.room_id),
            {
                "earliest_events": earliest,
                "latest_events": [event.event_id],
                "limit": MISSING_EVENTS_LIMIT,
                "min_depth": 0,
            },
        )
        found = []
        for pdu in answer.get("events", []) if isinstance(answer, dict) else []:
            try:
                parsed = parse_pdu(pdu, event.room_version)
                if parsed.room_id == event.room_id:
                    found.append(await check_signatures_and_hash(self.hs.keyring, parsed))
            except PduError as e:
                logger.info("Dropping a missing event from %s: %s", origin, e)
        return sorted(found, key=lambda e: (e.depth, e.event_id))

    async def _process_edu(self, origin: str, edu: Any) -> None:
        if not isinstance(edu, dict) or not isinstance(edu.get("content"), dict):
            return
        handler = self.edu_handlers.get(edu.get("edu_type"))
        if handler is None:
            return
        try:
            await handler(origin, edu["content"])
        except Exception:
            logger.exception("Failed to handle a %s EDU from %s", edu.get("edu_type"), origin)


def _id_of(pdu: Any) -> str | None:
    event_id = pdu.get("event_id") if isinstance(pdu, dict) else None
    return event_id if isinstance(event_id, str) else None

