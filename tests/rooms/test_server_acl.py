"""The server ACL decision (`m.room.server_acl`) as the event's schema orders it."""

from __future__ import annotations

import pytest

from homeserver.identifiers import host_of
from homeserver.rooms.server_acl import server_allowed


@pytest.mark.parametrize(
    ("server_name", "host"),
    [
        ("evil.com", "evil.com"),
        ("evil.com:8448", "evil.com"),
        ("1.2.3.4:80", "1.2.3.4"),
        ("[::1]:8448", "[::1]"),
        ("[::1]", "[::1]"),
    ],
)
def test_host_drops_the_port(server_name: str, host: str) -> None:
    assert host_of(server_name) == host


def test_no_acl_allows_everyone() -> None:
    assert server_allowed("anything.example", None)


def test_ports_are_ignored_and_case_does_not_matter() -> None:
    acl = {"allow": ["*"], "deny": ["evil.com"]}
    for name in ("evil.com", "evil.com:8448", "EVIL.com:1234"):
        assert not server_allowed(name, acl)
    assert server_allowed("good.com:8448", acl)


def test_deny_wins_over_allow_and_globs_match_whole_names() -> None:
    acl = {"allow": ["*.example.org"], "deny": ["bad?.example.org"]}
    assert server_allowed("chat.example.org", acl)
    assert not server_allowed("bad1.example.org", acl)
    assert server_allowed("bad12.example.org", acl)  # ? is exactly one character
    assert not server_allowed("example.org.evil.com", acl)  # the glob must match all of it


def test_without_an_allow_list_every_server_is_denied() -> None:
    assert not server_allowed("good.com", {"deny": []})
    assert not server_allowed("good.com", {"allow": "not a list"})


def test_ip_literals_denied_only_when_asked() -> None:
    allow_all = {"allow": ["*"]}
    assert server_allowed("1.2.3.4:8448", allow_all)
    assert server_allowed("[2001:db8::1]", allow_all)
    no_ips = {"allow": ["*"], "allow_ip_literals": False}
    assert not server_allowed("1.2.3.4:8448", no_ips)
    assert not server_allowed("[2001:db8::1]:8448", no_ips)
    assert server_allowed("matrix.org", no_ips)
    # Anything but a boolean false leaves the default (allowed).
    assert server_allowed("1.2.3.4", {"allow": ["*"], "allow_ip_literals": "no"})
