"""Server ACLs (`m.room.server_acl`): which servers may take part in a room over federation.

Plain functions over the event content, applied in the order the event's schema gives: no ACL
allows; an IP literal is denied when `allow_ip_literals` is false; then `deny`, then `allow`
globs, matched case-insensitively against the host without its port; anything else is denied.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from homeserver.globs import glob_to_regex
from homeserver.identifiers import host_of

ACL_EVENT_TYPE = "m.room.server_acl"


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _globs(content: Mapping[str, Any], key: str) -> list[str]:
    value = content.get(key)
    return [g for g in value if isinstance(g, str)] if isinstance(value, list) else []


def server_allowed(server_name: str, acl_content: Mapping[str, Any] | None) -> bool:
    """Whether `server_name` may take part in a room whose ACL content is `acl_content`."""
    if acl_content is None:
        return True
    host = host_of(server_name)
    allow_ip_literals = acl_content.get("allow_ip_literals", True)
    if allow_ip_literals is False and _is_ip_literal(host):
        return False
    if any(glob_to_regex(g).fullmatch(host) for g in _globs(acl_content, "deny")):
        return False
    return any(glob_to_regex(g).fullmatch(host) for g in _globs(acl_content, "allow"))
