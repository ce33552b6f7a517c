"""The outbound federation queue: PDUs and EDUs owed to each destination, and its retry state.

Everything the federation sender will send is written here first, so a restart loses nothing.
Entries are read in transactions ("batches") of at most 50 PDUs and 100 EDUs, oldest first. A
batch is claimed under a transaction ID that is stored with it: until the batch is completed,
every claim returns the same entries under the same ID and origin_server_ts, so a retried
transaction is byte-for-byte the first one and the receiver deduplicates it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Txn

MAX_PDUS_PER_TXN = 50
MAX_EDUS_PER_TXN = 100


@dataclass(frozen=True)
class QueuedPdu:
    position: int
    event_id: str
    pdu: dict[str, Any]


@dataclass(frozen=True)
class QueuedEdu:
    position: int
    edu_type: str
    content: dict[str, Any]


@dataclass(frozen=True)
class OutboundBatch:
    """One transaction's worth of entries for one destination, oldest first."""

    destination: str
    txn_id: str
    origin_server_ts: int
    pdus: list[QueuedPdu]
    edus: list[QueuedEdu]


@dataclass(frozen=True)
class RetryState:
    failure_count: int
    # When the next attempt may be made, in ms since the epoch; 0 when it may be made now.
    retry_after_ts: int


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _lock_positions(txn: Txn) -> None:
    """Takes the position counter's row lock (held until commit) without moving it."""
    txn.execute(
        "UPDATE federation_queue_position SET last_position = last_position WHERE id = 1"
    )


def _take_positions(txn: Txn, count: int) -> int:
    """Reserves `count` positions; returns the first. Serialises writers until they commit."""
    txn.execute(
        "UPDATE federation_queue_position SET last_position = last_position + ? WHERE id = 1",
        (count,),
    )
    row = txn.query_one("SELECT last_position FROM federation_queue_position WHERE id = 1")
    assert row is not None
    return int(row[0]) - count + 1


class FederationQueueStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def enqueue_pdus(
        self, pdus: Sequence[tuple[str, dict[str, Any]]], destinations: Collection[str]
    ) -> None:
        """Queues each (event_id, pdu) for each destination, in the order given. A PDU already
        queued for a destination is not queued twice."""
        destinations = sorted(set(destinations))
        if not pdus or not destinations:
            return

        def txn_fn(txn: Txn) -> None:
            # Positions first: that lock also keeps complete_batch from deleting the JSON of an
            # event queued again here before this commits (see there).
            position = _take_positions(txn, len(pdus) * len(destinations))
            txn.executemany(
                "INSERT INTO federation_outbox_pdu_json (event_id, pdu_json) VALUES (?, ?)"
                " ON CONFLICT (event_id) DO NOTHING",
                [(event_id, _dumps(pdu)) for event_id, pdu in pdus],
            )
            rows = []
            for event_id, _pdu in pdus:
                for destination in destinations:
                    rows.append((destination, position, event_id))
                    position += 1
            txn.executemany(
                "INSERT INTO federation_outbox_pdus (destination, position, event_id)"
                " VALUES (?, ?, ?) ON CONFLICT (destination, event_id) DO NOTHING",
                rows,
            )

        await self.db.run("federation_enqueue_pdus", txn_fn)

    async def enqueue_edu(self, destination: str, edu_type: str, content: dict[str, Any]) -> None:
        def txn_fn(txn: Txn) -> None:
            position = _take_positions(txn, 1)
            txn.execute(
                "INSERT INTO federation_outbox_edus (destination, position, edu_type, content_json)"
                " VALUES (?, ?, ?, ?)",
                (destination, position, edu_type, _dumps(content)),
            )

        await self.db.run("federation_enqueue_edu", txn_fn)

    async def claim_batch(
        self,
        destination: str,
        now_ms: int,
        max_pdus: int = MAX_PDUS_PER_TXN,
        max_edus: int = MAX_EDUS_PER_TXN,
    ) -> OutboundBatch | None:
        """The destination's transaction in flight if there is one, else the oldest entries
        (at most `max_pdus` PDUs and `max_edus` EDUs) under a new transaction ID; None when
        nothing is queued."""

        def txn_fn(txn: Txn) -> OutboundBatch | None:
            row = txn.query_one(
                "SELECT txn_id, txn_ts FROM federation_destinations WHERE destination = ?",
                (destination,),
            )
            if row is not None and row[0] is not None:
                txn_id, txn_ts = row[0], int(row[1])
                pdus = _read_pdus(txn, "f.destination = ? AND f.txn_id = ?", (destination, txn_id))
                edus = _read_edus(txn, "destination = ? AND txn_id = ?", (destination, txn_id))
                if pdus or edus:
                    return OutboundBatch(destination, txn_id, txn_ts, pdus, edus)
            pdus = _read_pdus(
                txn, "f.destination = ? AND f.txn_id IS NULL", (destination,), max_pdus
            )
            edus = _read_edus(txn, "destination = ? AND txn_id IS NULL", (destination,), max_edus)
            if not pdus and not edus:
                if row is not None and row[0] is not None:
                    _clear_txn(txn, destination)
                return None
            first = min(e.position for e in [*pdus, *edus])
            # Positions are never reused, and the time guards against a database started over.
            txn_id = f"{now_ms}-{first}"
            txn.execute(
                "INSERT INTO federation_destinations (destination, txn_id, txn_ts)"
                " VALUES (?, ?, ?) ON CONFLICT (destination) DO UPDATE SET"
                " txn_id = excluded.txn_id, txn_ts = excluded.txn_ts",
                (destination, txn_id, now_ms),
            )
            if pdus:
                txn.executemany(
                    "UPDATE federation_outbox_pdus SET txn_id = ?"
                    " WHERE destination = ? AND position = ?",
                    [(txn_id, destination, p.position) for p in pdus],
                )
            if edus:
                txn.executemany(
                    "UPDATE federation_outbox_edus SET txn_id = ?"
                    " WHERE destination = ? AND position = ?",
                    [(txn_id, destination, e.position) for e in edus],
                )
            return OutboundBatch(destination, txn_id, now_ms, pdus, edus)

        return await self.db.run("federation_claim_batch", txn_fn)

    async def complete_batch(self, destination: str, txn_id: str) -> None:
        """Removes a batch that the destination answered (delivered, or refused for good), and
        clears its retry state: it is reachable."""

        def txn_fn(txn: Txn) -> None:
            event_ids = [
                r[0]
                for r in txn.query(
                    "SELECT event_id FROM federation_outbox_pdus"
                    " WHERE destination = ? AND txn_id = ?",
                    (destination, txn_id),
                )
            ]
            if event_ids:
                # Taken before any row is deleted (as enqueue_pdus takes it before inserting):
                # this orders the removal of now unneeded JSON below after any enqueue of the
                # same event that has not committed yet, and the lock order prevents deadlocks.
                _lock_positions(txn)
            txn.execute(
                "DELETE FROM federation_outbox_pdus WHERE destination = ? AND txn_id = ?",
                (destination, txn_id),
            )
            txn.execute(
                "DELETE FROM federation_outbox_edus WHERE destination = ? AND txn_id = ?",
                (destination, txn_id),
            )
            txn.execute(
                "UPDATE federation_destinations SET txn_id = NULL, txn_ts = NULL,"
                " failure_count = 0, retry_after_ts = 0 WHERE destination = ? AND txn_id = ?",
                (destination, txn_id),
            )
            # The JSON goes with the last destination that still needed it.
            txn.executemany(
                "DELETE FROM federation_outbox_pdu_json WHERE event_id = ? AND NOT EXISTS"
                " (SELECT 1 FROM federation_outbox_pdus f WHERE f.event_id = ?)",
                [(event_id, event_id) for event_id in event_ids],
            )

        await self.db.run("federation_complete_batch", txn_fn)

    async def pending_destinations(self) -> list[str]:
        """Every destination with queued PDUs or EDUs (to resume at start-up)."""
        rows = await self.db.run(
            "federation_pending_destinations",
            lambda txn: txn.query(
                "SELECT destination FROM federation_outbox_pdus"
                " UNION SELECT destination FROM federation_outbox_edus"
            ),
        )
        return sorted(r[0] for r in rows)

    async def get_retry_state(self, destination: str) -> RetryState:
        row = await self.db.run(
            "federation_get_retry_state",
            lambda txn: txn.query_one(
                "SELECT failure_count, retry_after_ts FROM federation_destinations"
                " WHERE destination = ?",
                (destination,),
            ),
        )
        return RetryState(int(row[0]), int(row[1])) if row else RetryState(0, 0)

    async def set_retry_state(
        self, destination: str, failure_count: int, retry_after_ts: int
    ) -> None:
        await self.db.run(
            "federation_set_retry_state",
            lambda txn: txn.execute(
                "INSERT INTO federation_destinations (destination, failure_count, retry_after_ts)"
                " VALUES (?, ?, ?) ON CONFLICT (destination) DO UPDATE SET"
                " failure_count = excluded.failure_count,"
                " retry_after_ts = excluded.retry_after_ts",
                (destination, failure_count, retry_after_ts),
            ),
        )

    async def queued_counts(self, destination: str) -> tuple[int, int]:
        """(PDUs, EDUs) queued for the destination, claimed or not."""

        def txn_fn(txn: Txn) -> tuple[int, int]:
            pdus = txn.query_one(
                "SELECT COUNT(*) FROM federation_outbox_pdus WHERE destination = ?", (destination,)
            )
            edus = txn.query_one(
                "SELECT COUNT(*) FROM federation_outbox_edus WHERE destination = ?", (destination,)
            )
            return int(pdus[0]) if pdus else 0, int(edus[0]) if edus else 0

        return await self.db.run("federation_queued_counts", txn_fn)


def _read_pdus(
    txn: Txn, where: str, params: tuple[Any, ...], limit: int | None = None
) -> list[QueuedPdu]:
    sql = (
        "SELECT f.position, f.event_id, j.pdu_json FROM federation_outbox_pdus f"
        " JOIN federation_outbox_pdu_json j ON j.event_id = f.event_id"
        f" WHERE {where} ORDER BY f.position"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params = (*params, limit)
    return [QueuedPdu(int(p), e, json.loads(j)) for p, e, j in txn.query(sql, params)]


def _read_edus(
    txn: Txn, where: str, params: tuple[Any, ...], limit: int | None = None
) -> list[QueuedEdu]:
    sql = (
        "SELECT position, edu_type, content_json FROM federation_outbox_edus"
        f" WHERE {where} ORDER BY position"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params = (*params, limit)
    return [QueuedEdu(int(p), t, json.loads(c)) for p, t, c in txn.query(sql, params)]


def _clear_txn(txn: Txn, destination: str) -> None:
    txn.execute(
        "UPDATE federation_destinations SET txn_id = NULL, txn_ts = NULL WHERE destination = ?",
        (destination,),
    )
