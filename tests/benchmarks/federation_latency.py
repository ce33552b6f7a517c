"""How long a message takes to reach another server over federation.

    .venv/bin/python -m tests.benchmarks.federation_latency [--peer ours|synapse|both]
        [--messages 100] [--out results.json]

For each pair (our server A to our server B, and A to a real Synapse from PyPI, installed by
tests/interop/synapse_peer.py), alice on A creates a public room and bob on the peer joins it
over federation. bob keeps a /sync long-poll open; messages are sent one at a time, each with
PUT /rooms/{id}/send on A. A message's latency runs from just before that PUT to the moment
bob's /sync returns it (matched by body): the client request to A, A's persisting and sending
the transaction over HTTPS, the peer's checks and persisting, and waking bob's /sync. Five
unmeasured messages warm everything up first.

Everything runs on loopback. Our servers run in this process, on the same Twisted reactor as the
HTTP clients (as in the tests), so A and B share one thread; Synapse is a separate process. Each
message is given PER_MESSAGE_S, and each pair --total-timeout seconds. The script prints count,
mean, median, p95 (nearest rank), min and max in milliseconds per pair.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import secrets
import statistics
import tempfile
import time
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import quote

from twisted.internet import defer, reactor, task

from homeserver.logging_setup import LOG_FORMAT, route_twisted_logs
from tests.federation.federation_testing import FederatingServer
from tests.harness import TestClient
from tests.interop.synapse_peer import SynapsePeer, ensure_synapse

V3 = "/_matrix/client/v3"
WARMUP = 5
PER_MESSAGE_S = 30.0
SYNC_TIMEOUT_MS = 30000
GAP_S = 0.05  # a pause between messages, outside the measured time, so rounds do not overlap
TEARDOWN_S = 60.0
SYNC_FILTER = quote(json.dumps({"room": {"timeline": {"limit": 20}},
                                "presence": {"not_types": ["*"]}}))


def bounded(coro: Coroutine[Any, Any, Any], seconds: float) -> defer.Deferred:
    """The coroutine as a Deferred, cancelled after `seconds` and then failing with
    defer.TimeoutError (whatever the cancelled request turned the cancellation into)."""

    def timed_out(_result: object, timeout: float) -> None:
        raise defer.TimeoutError(timeout, "Deferred")

    return defer.ensureDeferred(coro).addTimeout(max(seconds, 0.001), reactor, timed_out)


def sleep(seconds: float) -> defer.Deferred:
    return task.deferLater(reactor, seconds)


def check(response: Any, what: str) -> Any:
    if response.code != 200:
        raise RuntimeError(f"{what}: HTTP {response.code} {response.json}")
    return response.json


async def sync(client: TestClient, token: str, since: str | None) -> dict:
    path = f"{V3}/sync?filter={SYNC_FILTER}"
    if since is not None:
        path += f"&timeout={SYNC_TIMEOUT_MS}&since={quote(since)}"
    return check(await client.get(path, token), "sync")


def has_body(sync_json: dict, room_id: str, body: str) -> bool:
    room = sync_json.get("rooms", {}).get("join", {}).get(room_id, {})
    events = room.get("timeline", {}).get("events", [])
    return any(event.get("content", {}).get("body") == body for event in events)


class Pair:
    """alice on our server A in a public room that bob on the receiving server has joined."""

    def __init__(self, a: FederatingServer, alice_token: str, receiver: TestClient,
                 bob_token: str, room_id: str, synapse: SynapsePeer | None) -> None:
        self.a, self.alice_token = a, alice_token
        self.receiver, self.bob_token = receiver, bob_token
        self.room_id = room_id
        self.since: str | None = None
        self.early_wakeups = 0  # /sync responses that did not hold the awaited message
        self.synapse = synapse

    async def one_message(self, timeout_s: float) -> float:
        """Sends one message on A; seconds until bob's /sync returned it."""
        body = f"latency probe {secrets.token_hex(8)}"
        deadline = time.perf_counter() + timeout_s

        def poll() -> defer.Deferred:
            # Stamp the time the response arrives, even if the PUT is still being awaited.
            remaining = deadline - time.perf_counter()
            d = bounded(sync(self.receiver, self.bob_token, self.since), remaining)
            return d.addCallback(lambda result: (time.perf_counter(), result))

        polling = poll()
        t0 = time.perf_counter()
        try:
            check(await self.a.client.put(
                f"{V3}/rooms/{quote(self.room_id)}/send/m.room.message/{secrets.token_hex(8)}",
                {"msgtype": "m.text", "body": body}, self.alice_token,
            ), "send")
        except BaseException:
            polling.cancel()
            raise
        while True:
            t1, result = await polling
            self.since = result["next_batch"]
            if has_body(result, self.room_id, body):
                return t1 - t0
            self.early_wakeups += 1  # something else woke the long-poll: keep waiting
            polling = poll()


async def make_pair(peer: str, stack: AsyncExitStack) -> Pair:
    """Starts A and the peer (stopped when `stack` closes) and joins bob to alice's room."""
    synapse = None
    if peer == "synapse":
        # Blocking (a subprocess start-up), before anything else runs on the reactor.
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-synapse-"))
        synapse = stack.enter_context(SynapsePeer(data_dir, ensure_synapse()))
        receiver = TestClient(synapse.client_url)
        # Synapse's join takes ?server_name=, as in tests/interop/test_interop_synapse.py.
        peer_name, join_query = synapse.server_name, "server_name"
    a = FederatingServer()
    await a.start()
    stack.push_async_callback(a.stop)
    if synapse is None:
        b = FederatingServer()
        await b.start()
        stack.push_async_callback(b.stop)
        receiver = b.client
        peer_name, join_query = b.server_name, "via"

    _, alice_token = await a.client.register("alice")
    _, bob_token = await receiver.register("bob")
    created = check(await a.client.post(
        f"{V3}/createRoom", {"preset": "public_chat", "name": "bench"}, alice_token
    ), "createRoom")
    room_id = created["room_id"]
    check(await receiver.post(
        f"{V3}/join/{quote(room_id)}?{join_query}={quote(a.server_name)}", {}, bob_token
    ), f"join from {peer_name}")
    pair = Pair(a, alice_token, receiver, bob_token, room_id, synapse)
    pair.since = (await sync(receiver, bob_token, None))["next_batch"]
    return pair


async def run_pair(peer: str, messages: int, total_s: float) -> dict[str, Any]:
    """Latencies (ms) of `messages` messages from A to `peer`, after WARMUP unmeasured ones."""
    deadline = time.monotonic() + total_s
    samples: list[float] = []
    errors: list[str] = []
    async with AsyncExitStack() as stack:
        pair = await make_pair(peer, stack)
        for i in range(WARMUP + messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                errors.append(f"total cap of {total_s:g} s reached after {len(samples)} messages")
                break
            try:
                seconds = await pair.one_message(min(PER_MESSAGE_S, remaining))
            except defer.TimeoutError:
                which = f"message {i - WARMUP}" if i >= WARMUP else f"warm-up message {i}"
                errors.append(f"{which}: not received in time")
                continue
            if i >= WARMUP:
                samples.append(seconds * 1000)
            await sleep(GAP_S)
        # Synapse's log goes with its data directory: look at it now.
        synapse_log = synapse_log_problems(pair.synapse) if pair.synapse else []
    return {"peer": peer, "early_wakeups": pair.early_wakeups, "samples_ms": samples,
            "errors": errors, "synapse_log": synapse_log, **summary(samples)}


def synapse_log_problems(synapse: SynapsePeer, limit: int = 10) -> list[str]:
    """Synapse's WARNING and ERROR log lines but its start-up banner (the first `limit`)."""
    lines = [line for line in synapse.log_path.read_text(errors="replace").splitlines()
             if (" - WARNING - " in line or " - ERROR - " in line)
             and "synapse.config.logger" not in line]
    if len(lines) > limit:
        lines[limit:] = [f"... {len(lines) - limit} more WARNING/ERROR lines"]
    return lines


def summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"count": 0}
    ordered = sorted(samples)
    return {
        "count": len(samples),
        "mean_ms": statistics.fmean(samples),
        "median_ms": statistics.median(samples),
        "p95_ms": ordered[math.ceil(0.95 * len(ordered)) - 1],
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
    }


def report(result: dict[str, Any]) -> None:
    line = f"ours -> {result['peer']}: count={result['count']}"
    for key in ("mean", "median", "p95", "min", "max"):
        if f"{key}_ms" in result:
            line += f"  {key}={result[f'{key}_ms']:.1f}"
    print(line + ("  (ms)" if result["count"] else "")
          + f"  early /sync wake-ups: {result.get('early_wakeups', 0)}")
    for error in result["errors"]:
        print(f"  ! {error}")
    for line in result.get("synapse_log", []):
        print(f"  Synapse log: {line}")


async def main(args: argparse.Namespace) -> None:
    peers = ["ours", "synapse"] if args.peer == "both" else [args.peer]
    results = []
    for peer in peers:
        print(f"ours -> {peer}: {WARMUP} warm-up + {args.messages} messages ...", flush=True)
        try:
            result = await bounded(run_pair(peer, args.messages, args.total_timeout),
                                   args.total_timeout + TEARDOWN_S)
        except Exception as error:  # one pair failing still lets the other run
            result = {"peer": peer, "count": 0, "samples_ms": [],
                      "errors": [f"{type(error).__name__}: {error}"]}
        report(result)
        results.append(result)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"messages": args.messages, "warmup": WARMUP, "results": results}, f,
                      indent=2)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", choices=["ours", "synapse", "both"], default="both")
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--total-timeout", type=float, default=600.0,
                        help="seconds allowed for each pair's messages (default 600)")
    parser.add_argument("--out", help="write the results as JSON here")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    route_twisted_logs()
    task.react(lambda _reactor: defer.ensureDeferred(main(arguments)))
