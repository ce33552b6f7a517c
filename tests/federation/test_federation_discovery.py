"""Server name resolution, step by step as the spec lists them, with DNS and HTTP faked."""

from __future__ import annotations

import asyncio

import pytest

from federation.discovery import (
    Destination,
    ServerResolver,
    WellKnownAnswer,
    cache_ttl,
    parse_well_known,
    split_host_port,
)


class FakeNetwork:
    def __init__(self, well_known: dict[str, str] | None = None,
                 srv: dict[str, list[tuple[str, int]]] | None = None) -> None:
        self.well_known = well_known or {}
        self.srv = srv or {}
        self.well_known_asked: list[str] = []
        self.now = 1000.0

    async def lookup_well_known(self, hostname: str) -> WellKnownAnswer:
        self.well_known_asked.append(hostname)
        server = self.well_known.get(hostname)
        return WellKnownAnswer(server, 3600 if server else 60)

    async def lookup_srv(self, name: str) -> list[tuple[str, int]]:
        return self.srv.get(name, [])

    def resolver(self) -> ServerResolver:
        return ServerResolver(self.lookup_well_known, self.lookup_srv, now=lambda: self.now)


def resolve(network: FakeNetwork, name: str, resolver: ServerResolver | None = None) -> Destination:
    return asyncio.run((resolver or network.resolver()).resolve(name))


def test_ip_literals_and_explicit_ports_skip_discovery() -> None:
    network = FakeNetwork(well_known={"example.com": "elsewhere.com"})
    assert resolve(network, "1.2.3.4") == Destination("1.2.3.4", 8448, "1.2.3.4", "1.2.3.4")
    assert resolve(network, "[::1]:8449") == Destination("::1", 8449, "[::1]:8449", "::1")
    assert resolve(network, "example.com:1234") == Destination(
        "example.com", 1234, "example.com:1234", "example.com"
    )
    assert network.well_known_asked == []


def test_well_known_delegation_with_port_or_ip() -> None:
    network = FakeNetwork(well_known={"a.com": "matrix.a.com:443", "b.com": "5.6.7.8"})
    assert resolve(network, "a.com") == Destination(
        "matrix.a.com", 443, "matrix.a.com:443", "matrix.a.com"
    )
    assert resolve(network, "b.com") == Destination("5.6.7.8", 8448, "5.6.7.8", "5.6.7.8")


def test_delegated_name_without_port_uses_srv_with_the_delegated_name() -> None:
    network = FakeNetwork(
        well_known={"a.com": "matrix.a.com"},
        srv={"_matrix-fed._tcp.matrix.a.com": [("host1.a.com", 8443)]},
    )
    # Connect to the SRV target, but Host and certificate are the delegated name.
    assert resolve(network, "a.com") == Destination(
        "host1.a.com", 8443, "matrix.a.com", "matrix.a.com"
    )


def test_without_well_known_srv_then_deprecated_srv_then_8448() -> None:
    network = FakeNetwork(
        srv={
            "_matrix-fed._tcp.fed.com": [("f.fed.com", 1)],
            "_matrix._tcp.old.com": [("o.old.com", 2)],
        }
    )
    assert resolve(network, "fed.com") == Destination("f.fed.com", 1, "fed.com", "fed.com")
    assert resolve(network, "old.com") == Destination("o.old.com", 2, "old.com", "old.com")
    assert resolve(network, "plain.com") == Destination("plain.com", 8448, "plain.com",
                                                        "plain.com")


def test_well_known_answers_are_cached_until_they_expire() -> None:
    network = FakeNetwork(well_known={"a.com": "matrix.a.com:443"})
    resolver = network.resolver()
    resolve(network, "a.com", resolver)
    resolve(network, "a.com", resolver)
    assert network.well_known_asked == ["a.com"]
    network.now += 3601
    resolve(network, "a.com", resolver)
    assert network.well_known_asked == ["a.com", "a.com"]


def test_well_known_parsing_and_cache_headers() -> None:
    assert parse_well_known({"m.server": "matrix.a.com:443"}) == "matrix.a.com:443"
    for bad in (None, [], {}, {"m.server": 1}, {"m.server": ""}, {"m.server": "a:99999"}):
        assert parse_well_known(bad) is None
    assert cache_ttl(None) == 24 * 3600
    assert cache_ttl("public, max-age=600") == 600
    assert cache_ttl("max-age=99999999") == 48 * 3600
    assert cache_ttl("no-store") == 0


def test_split_host_port() -> None:
    assert split_host_port("example.com") == ("example.com", None)
    assert split_host_port("[2001:db8::1]:443") == ("2001:db8::1", 443)
    with pytest.raises(ValueError):
        split_host_port("example.com:0")
