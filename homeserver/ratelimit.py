"""Rate limiting ("Rate limiting" in the client-server spec): token buckets keyed by user or IP.

Each key has a bucket that holds up to `burst_count` actions and refills at `per_second`. The
code tracks the opposite quantity, the bucket's *debt* (actions taken and not yet refilled),
because a key with no debt needs no entry at all: that is what keeps memory bounded.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Mapping
from typing import Any

from homeserver.clock import Clock
from homeserver.errors import LimitExceeded

# A refusal whose wait would round to under a millisecond is pointless (the client cannot wait
# that little) and, at very high rates, would refuse requests that merely share a clock
# reading. Such actions are allowed: the debt overshoots burst_count by less than 1 ms of refill.
_MIN_WAIT_S = 0.001


class Ratelimiter:
    """`check(key)` allows an action or raises LimitExceeded with the wait in retry_after_ms.

    `per_second` <= 0 disables the limiter: a bucket that never refills would refuse a key
    forever once its burst is spent, with no meaningful Retry-After to give, and "0" reads as
    "no limit" in per-user overrides elsewhere (Synapse's ratelimit_override). A huge
    `per_second` (1000000) effectively disables it too.
    """

    # How often (in clock seconds) fully refilled entries are swept away.
    prune_interval_s = 60.0

    def __init__(self, per_second: float, burst_count: float, clock: Clock) -> None:
        self.per_second = float(per_second)
        self.burst_count = float(burst_count)
        self.clock = clock
        # key -> (debt in actions, clock time it was computed)
        self._debts: dict[Hashable, tuple[float, float]] = {}
        self._last_prune = clock.time()

    @classmethod
    def from_config(cls, config: Any, clock: Clock) -> Ratelimiter:
        """From anything with `per_second` and `burst_count` (config.RateLimitConfig)."""
        return cls(config.per_second, config.burst_count, clock)

    @property
    def enabled(self) -> bool:
        return self.per_second > 0 and not math.isinf(self.per_second)

    def check(self, key: Hashable, cost: float = 1) -> None:
        """Takes `cost` actions for `key`, or raises LimitExceeded and takes nothing."""
        if not self.enabled:
            return
        now = self.clock.time()
        self._maybe_prune(now)
        debt = self._debt(key, now) + cost
        excess = debt - self.burst_count
        if excess > 0:
            wait_s = excess / self.per_second
            if wait_s >= _MIN_WAIT_S:
                # Rounded first so float noise (100.00000000000009 ms) does not add a ms.
                raise LimitExceeded(math.ceil(round(wait_s * 1000, 6)))
        self._debts[key] = (debt, now)

    def can_do(self, key: Hashable, cost: float = 1) -> bool:
        """Whether `check(key, cost)` would pass, without taking anything."""
        if not self.enabled:
            return True
        excess = self._debt(key, self.clock.time()) + cost - self.burst_count
        return excess <= 0 or excess / self.per_second < _MIN_WAIT_S

    def reset(self, key: Hashable) -> None:
        """Forgets `key`'s debt (e.g. failed-login counts after a successful login)."""
        self._debts.pop(key, None)

    def __len__(self) -> int:
        """How many keys are tracked; for tests and metrics."""
        return len(self._debts)

    def _debt(self, key: Hashable, now: float) -> float:
        entry = self._debts.get(key)
        if entry is None:
            return 0.0
        debt, at = entry
        return max(0.0, debt - (now - at) * self.per_second)

    def _maybe_prune(self, now: float) -> None:
        # Lazily, from check(), so there is no timer to start and stop; an idle limiter holds
        # at most the entries of its last prune_interval_s.
        if now - self._last_prune < self.prune_interval_s:
            return
        self._last_prune = now
        self._debts = {
            key: entry
            for key, entry in self._debts.items()
            if entry[0] - (now - entry[1]) * self.per_second > 0
        }


class RateLimiters(Mapping[str, Ratelimiter]):
    """The named limiters the router refers to: `RateLimiters({"message": Ratelimiter(...)})`."""

    def __init__(self, limiters: Mapping[str, Ratelimiter] | None = None) -> None:
        self._limiters = dict(limiters or {})

    def __getitem__(self, name: str) -> Ratelimiter:
        return self._limiters[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._limiters)

    def __len__(self) -> int:
        return len(self._limiters)

    def __setitem__(self, name: str, limiter: Ratelimiter) -> None:
        self._limiters[name] = limiter
