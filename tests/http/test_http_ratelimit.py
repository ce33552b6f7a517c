"""The token-bucket rate limiter, and the router's use of it."""

from __future__ import annotations

import pytest
from twisted.internet import task

from client_api.http import JsonResource, Router
from homeserver.clock import Clock
from homeserver.errors import LimitExceeded
from homeserver.ratelimit import Ratelimiter, RateLimiters
from tests.http.http_testing import HttpTestCase, echo, fake_authenticator


def limiter(per_second: float, burst: float) -> tuple[Ratelimiter, task.Clock]:
    reactor = task.Clock()
    reactor.advance(1000)  # not at zero, so "time 0" bugs show
    return Ratelimiter(per_second, burst, Clock(reactor)), reactor


def test_burst_then_refusal_with_retry_after() -> None:
    rl, _ = limiter(per_second=0.5, burst=3)
    for _ in range(3):
        rl.check("@a:x")
    with pytest.raises(LimitExceeded) as e:
        rl.check("@a:x")
    assert e.value.http_status == 429
    # One action's worth of refill at 0.5/s.
    assert e.value.extra == {"retry_after_ms": 2000}
    assert e.value.headers == {"Retry-After": "2"}


def test_refill_over_time() -> None:
    rl, clock = limiter(per_second=0.5, burst=2)
    rl.check("k")
    rl.check("k")
    clock.advance(1.9)
    with pytest.raises(LimitExceeded) as e:
        rl.check("k")
    assert e.value.extra["retry_after_ms"] == 100
    clock.advance(0.1)
    rl.check("k")  # exactly one refilled
    with pytest.raises(LimitExceeded):
        rl.check("k")
    clock.advance(10)  # full again, but never more than the burst
    rl.check("k")
    rl.check("k")
    with pytest.raises(LimitExceeded):
        rl.check("k")


def test_refusal_takes_nothing() -> None:
    rl, clock = limiter(per_second=1, burst=1)
    rl.check("k")
    for _ in range(5):
        with pytest.raises(LimitExceeded):
            rl.check("k")
    clock.advance(1)
    rl.check("k")


def test_keys_are_independent_and_cost_counts() -> None:
    rl, _ = limiter(per_second=1, burst=5)
    rl.check("a", cost=5)
    rl.check(("b", "tuple-key"), cost=4)
    with pytest.raises(LimitExceeded) as e:
        rl.check("a", cost=2)
    assert e.value.extra["retry_after_ms"] == 2000
    assert rl.can_do(("b", "tuple-key"))
    assert not rl.can_do(("b", "tuple-key"), cost=2)


def test_reset_forgets_a_key() -> None:
    rl, _ = limiter(per_second=0.01, burst=1)
    rl.check("k")
    rl.reset("k")
    rl.check("k")


def test_memory_is_pruned() -> None:
    rl, clock = limiter(per_second=1, burst=10)
    for i in range(1000):
        rl.check(f"10.0.{i // 256}.{i % 256}")
    assert len(rl) == 1000
    clock.advance(rl.prune_interval_s)
    rl.check("fresh")
    assert len(rl) == 1  # the others had refilled, so they needed no entry


def test_pruning_keeps_keys_still_in_debt() -> None:
    rl, clock = limiter(per_second=0.01, burst=2)
    rl.check("slow")
    rl.check("slow")
    clock.advance(rl.prune_interval_s)
    rl.check("other")
    assert len(rl) == 2
    with pytest.raises(LimitExceeded):
        rl.check("slow")


def test_zero_rate_disables() -> None:
    rl, _ = limiter(per_second=0, burst=0)
    for _ in range(1000):
        rl.check("k")
    assert len(rl) == 0


def test_huge_rate_effectively_disables() -> None:
    # Many requests sharing one clock reading must not be refused.
    rl, _ = limiter(per_second=1_000_000, burst=1)
    for _ in range(500):
        rl.check("k")
    rl2, _ = limiter(per_second=float("inf"), burst=1)
    for _ in range(500):
        rl2.check("k")


def test_huge_burst() -> None:
    rl, _ = limiter(per_second=0.1, burst=1e12)
    for _ in range(1000):
        rl.check("k")


def test_rate_limiters_container() -> None:
    rl, _ = limiter(1, 1)
    limiters = RateLimiters({"message": rl})
    assert limiters["message"] is rl
    assert list(limiters) == ["message"]
    assert "login" not in limiters


def test_unknown_limiter_name_fails_at_startup() -> None:
    router = Router()
    router.add("GET", "/x", echo, ratelimit="nope")
    with pytest.raises(ValueError, match="nope"):
        JsonResource(
            router,
            authenticator=fake_authenticator,
            clock=Clock(task.Clock()),
            rate_limiters=RateLimiters({}),
            x_forwarded=False,
            max_body_size=10,
        )


class RouterRateLimitTests(HttpTestCase):
    def setUp(self) -> None:
        super().setUp()
        from twisted.internet import reactor

        clock = Clock(reactor)
        # Slow enough that no refill happens during the test.
        self.limiters = RateLimiters({"message": Ratelimiter(0.001, 2, clock)})
        router = Router()
        router.add("POST", "/send", echo, auth="optional", ratelimit="message")
        router.add("POST", "/free", echo)
        self.start(router, rate_limiters=self.limiters, x_forwarded=True)

    async def post(self, path: str, token: str | None = None, ip: str = "192.0.2.1") -> int:
        headers = {"X-Forwarded-For": ip}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = await self.request("POST", path, data=b"{}", headers=headers)
        await response.content()
        return response.code

    async def test_limited_per_user(self) -> None:
        codes = [await self.post("/send", "alice_token", ip=f"192.0.2.{i}") for i in range(3)]
        self.assertEqual(codes, [200, 200, 429])
        response = await self.request(
            "POST", "/send", data=b"{}", headers={"Authorization": "Bearer alice_token"}
        )
        self.assertEqual(response.code, 429)
        body = await response.json()
        self.assertEqual(body["errcode"], "M_LIMIT_EXCEEDED")
        self.assertGreater(body["retry_after_ms"], 0)
        self.assertIsNotNone(response.headers.getRawHeaders(b"Retry-After"))

    async def test_limited_per_ip_when_anonymous(self) -> None:
        codes = [await self.post("/send", ip="198.51.100.1") for _ in range(3)]
        self.assertEqual(codes, [200, 200, 429])
        self.assertEqual(await self.post("/send", ip="198.51.100.2"), 200)

    async def test_admins_are_exempt(self) -> None:
        codes = [await self.post("/send", "admin_token") for _ in range(5)]
        self.assertEqual(codes, [200] * 5)

    async def test_routes_without_ratelimit_are_free(self) -> None:
        codes = [await self.post("/free", "alice_token") for _ in range(5)]
        self.assertEqual(codes, [200] * 5)
