"""The outbound federation sender: queued PDUs and EDUs to other servers, in transactions.

`send_pdu` and `send_edu` write to the persistent queue (storage/federation_queue.py) first and
then wake the destination's worker. Each destination has at most one worker, which sends one
transaction at a time (`PUT /_matrix/federation/v1/send/{txnId}`, at most 50 PDUs and 100 EDUs,
oldest first) until the queue is empty. Entries are deleted only once the destination has
answered 200. A transaction that fails is retried with the same ID and the same entries (the
store keeps the claimed batch), after a delay that doubles with each failure in a row up to a
ceiling; the retry state is stored, so a restart neither forgets nor hammers a server that is
down. A 4xx other than 429 for a whole transaction is a permanent refusal (a receiver reports
per-PDU problems inside a 200): the batch is logged and dropped.

Destinations are independent: one that is down waits on its own timer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall

from federation.client import FederationError, federation_path
from homeserver.identifiers import is_valid_server_name
from storage.federation_queue import (
    MAX_EDUS_PER_TXN,
    MAX_PDUS_PER_TXN,
    FederationQueueStore,
    OutboundBatch,
)

logger = logging.getLogger(__name__)

SEND_PATH = "/_matrix/federation/v1/send/{}"


class _Destination:
    """The in-memory state of one destination's worker."""

    __slots__ = ("name", "loaded", "failure_count", "worker", "more", "timer", "in_flight")

    def __init__(self, name: str) -> None:
        self.name = name
        # Whether failure_count (and a stored retry time) has been read from the store.
        self.loaded = False
        self.failure_count = 0
        # The running send loop, if any.
        self.worker: defer.Deferred | None = None
        # Set when new work was queued while the loop ran; the loop looks again before exiting.
        self.more = False
        # The pending retry after a failure.
        self.timer: IDelayedCall | None = None
        # The request being sent, so stop() can cancel it.
        self.in_flight: defer.Deferred | None = None


class FederationSender:
    def __init__(
        self,
        server_name: str,
        store: FederationQueueStore,
        client: Any,
        clock: Any,
        now_ms: Callable[[], int] | None = None,
        *,
        initial_backoff_s: float = 5.0,
        max_backoff_s: float = 3600.0,
        request_timeout_s: float = 60.0,
        max_pdus_per_txn: int = MAX_PDUS_PER_TXN,
        max_edus_per_txn: int = MAX_EDUS_PER_TXN,
    ) -> None:
        """`client` is a FederationClient (anything with its `put_json`); `clock` is a
        homeserver Clock or a reactor (anything with `call_later` or `callLater`); `now_ms`
        defaults to the clock's time."""
        self.server_name = server_name
        self._store = store
        self._client = client
        call_later = getattr(clock, "call_later", None)
        self._call_later: Callable[..., IDelayedCall] = call_later or clock.callLater
        if now_ms is None:
            if hasattr(clock, "time_msec"):
                now_ms = clock.time_msec
            else:
                now_ms = lambda: int(clock.seconds() * 1000)  # noqa: E731
        self._now_ms = now_ms
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._request_timeout_s = request_timeout_s
        self._max_pdus = max_pdus_per_txn
        self._max_edus = max_edus_per_txn
        self._destinations: dict[str, _Destination] = {}
        self._stopped = False
        # Counters, for metrics and tests.
        self.transactions_sent = 0
        self.transactions_failed = 0
        self.transactions_dropped = 0

    # Queueing -------------------------------------------------------------------------------

    async def send_pdu(
        self, event_pdu_json: dict[str, Any], event_id: str, destinations: Iterable[str]
    ) -> None:
        """Queues the PDU for each destination (never ourselves) and wakes their workers.
        Returns once it is stored, not once it is delivered."""
        targets = self._targets(destinations)
        if not targets:
            return
        await self._store.enqueue_pdus([(event_id, event_pdu_json)], targets)
        for destination in targets:
            self._wake(destination)

    async def send_edu(self, destination: str, edu_type: str, content: dict[str, Any]) -> None:
        """Queues one EDU for the destination (never ourselves) and wakes its worker."""
        if not self._targets([destination]):
            return
        await self._store.enqueue_edu(destination, edu_type, content)
        self._wake(destination)

    def _targets(self, destinations: Iterable[str]) -> list[str]:
        targets = []
        for destination in dict.fromkeys(destinations):
            if destination == self.server_name:
                continue
            if not is_valid_server_name(destination):
                # It could never be reached; queueing would only retry it for ever.
                logger.warning("Not sending to invalid server name %r", destination)
                continue
            targets.append(destination)
        return targets

    # Life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Resumes every destination with queued work (after a restart). Honours stored retry
        times; returns without waiting for any delivery."""
        self._stopped = False
        for destination in await self._store.pending_destinations():
            if destination != self.server_name:
                self._wake(destination)

    def stop(self) -> None:
        """Cancels retry timers and requests in flight; workers end at their next step.
        Nothing queued is lost: start() on a new sender picks it up."""
        self._stopped = True
        for state in self._destinations.values():
            if state.timer is not None and state.timer.active():
                state.timer.cancel()
            state.timer = None
            if state.in_flight is not None:
                state.in_flight.cancel()

    async def wait_idle(self) -> None:
        """Waits until no worker is running (pending retry timers do not count)."""
        while True:
            running = [s.worker for s in self._destinations.values() if s.worker is not None]
            if not running:
                return
            await defer.DeferredList(running)

    def retry_delay_s(self, failure_count: int) -> float:
        """How long to wait after `failure_count` (>= 1) failures in a row."""
        exponent = min(max(failure_count - 1, 0), 64)
        return min(self._initial_backoff_s * (2**exponent), self._max_backoff_s)

    def is_backing_off(self, destination: str) -> bool:
        state = self._destinations.get(destination)
        return state is not None and state.timer is not None and state.timer.active()

    # The worker -----------------------------------------------------------------------------

    def _wake(self, destination: str) -> None:
        if self._stopped:
            return
        state = self._destinations.get(destination)
        if state is None:
            state = self._destinations[destination] = _Destination(destination)
        if state.worker is not None:
            state.more = True
            return
        if state.timer is not None and state.timer.active():
            # Backing off: what was queued goes with the next attempt.
            return
        state.more = False
        worker = defer.ensureDeferred(self._run(state))
        # A worker that finished synchronously has already cleared itself.
        if not worker.called:
            state.worker = worker

    async def _run(self, state: _Destination) -> None:
        try:
            await self._send_loop(state)
        except defer.CancelledError:
            pass
        except Exception:
            logger.exception("Federation sender for %s failed", state.name)
            if not self._stopped:
                try:
                    await self._back_off(state, None)
                except Exception:
                    logger.exception("Federation sender for %s could not back off", state.name)
        finally:
            state.worker = None
            state.in_flight = None

    async def _send_loop(self, state: _Destination) -> None:
        destination = state.name
        if not state.loaded:
            stored = await self._store.get_retry_state(destination)
            state.loaded = True
            state.failure_count = stored.failure_count
            wait_ms = stored.retry_after_ts - self._now_ms()
            if wait_ms > 0 and not self._stopped:
                logger.info("Federation to %s resumes in %.1fs", destination, wait_ms / 1000)
                self._schedule(state, wait_ms / 1000)
                return
        while not self._stopped:
            state.more = False
            batch = await self._store.claim_batch(
                destination, self._now_ms(), self._max_pdus, self._max_edus
            )
            if self._stopped:
                return
            if batch is None:
                if state.more:
                    continue
                return
            if not await self._send_batch(state, batch):
                return

    async def _send_batch(self, state: _Destination, batch: OutboundBatch) -> bool:
        """Sends one transaction; whether the loop may go on to the next."""
        destination = state.name
        body = {
            "origin": self.server_name,
            "origin_server_ts": batch.origin_server_ts,
            "pdus": [p.pdu for p in batch.pdus],
            "edus": [{"edu_type": e.edu_type, "content": e.content} for e in batch.edus],
        }
        path = federation_path(SEND_PATH, batch.txn_id)
        request = defer.ensureDeferred(
            self._client.put_json(destination, path, body, timeout=self._request_timeout_s)
        )
        state.in_flight = request
        if self._stopped:
            # stop() ran while the request was being started (from within put_json).
            request.cancel()
        try:
            answer = await request
        except defer.CancelledError:
            raise
        except FederationError as e:
            if self._stopped:
                return False
            if e.code is not None and 400 <= e.code < 500 and e.code != 429:
                self.transactions_dropped += 1
                logger.warning(
                    "Federation transaction %s to %s refused with %s %s: dropping %d PDUs (%s)"
                    " and %d EDUs",
                    batch.txn_id, destination, e.code, e.errcode or "",
                    len(batch.pdus), ", ".join(p.event_id for p in batch.pdus),
                    len(batch.edus),
                )
                await self._store.complete_batch(destination, batch.txn_id)
                state.failure_count = 0
                return True
            if e.code == 200:
                # It answered 200 but not JSON: it has the transaction.
                logger.warning("Federation transaction %s to %s: %s", batch.txn_id, destination, e)
            else:
                self.transactions_failed += 1
                await self._back_off(state, e)
                return False
        except Exception as e:
            if self._stopped:
                return False
            self.transactions_failed += 1
            logger.warning("Federation transaction %s to %s failed unexpectedly", batch.txn_id,
                           destination, exc_info=True)
            await self._back_off(state, e)
            return False
        else:
            _log_pdu_errors(destination, batch.txn_id, answer)
        finally:
            state.in_flight = None
        self.transactions_sent += 1
        await self._store.complete_batch(destination, batch.txn_id)
        state.failure_count = 0
        return True

    async def _back_off(self, state: _Destination, error: Exception | None) -> None:
        state.failure_count += 1
        delay = self.retry_delay_s(state.failure_count)
        if isinstance(error, FederationError) and error.code == 429:
            asked = error.body.get("retry_after_ms") if isinstance(error.body, dict) else None
            if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0:
                delay = min(max(delay, asked / 1000), self._max_backoff_s)
        logger.info(
            "Federation to %s failed (%d in a row): %s; retrying in %.0fs",
            state.name, state.failure_count, error, delay,
        )
        retry_after_ts = self._now_ms() + int(delay * 1000)
        try:
            await self._store.set_retry_state(state.name, state.failure_count, retry_after_ts)
        except Exception as e:
            # The timer below still retries; only a restart in between would retry sooner.
            logger.warning("Could not store retry state for %s: %s", state.name, e)
        if not self._stopped:
            # Scheduled last, so the timer cannot fire while this worker still runs.
            self._schedule(state, delay)

    def _schedule(self, state: _Destination, delay_s: float) -> None:
        if state.timer is not None and state.timer.active():
            state.timer.cancel()
        state.timer = self._call_later(delay_s, self._retry, state.name)

    def _retry(self, destination: str) -> None:
        state = self._destinations.get(destination)
        if state is not None:
            state.timer = None
        self._wake(destination)


def _log_pdu_errors(destination: str, txn_id: str, answer: Any) -> None:
    results = answer.get("pdus") if isinstance(answer, dict) else None
    if not isinstance(results, dict):
        return
    for event_id, result in results.items():
        if isinstance(result, dict) and "error" in result:
            logger.info(
                "Federation transaction %s: %s rejected %s: %s",
                txn_id, destination, event_id, result.get("error"),
            )
