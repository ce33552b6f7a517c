"""POST /search: the request body (search.yaml's `room_events` criteria) and the opaque
`next_batch` token. Anything malformed is 400 M_BAD_JSON; a token that is not ours, or that was
issued for another ordering, is 400 M_INVALID_PARAM."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from homeserver.errors import Codes, MatrixError, bad_json
from homeserver.sync.filtering import EventFilter, parse_event_filter
from storage.search import SEARCH_KEYS

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
DEFAULT_CONTEXT = 5
MAX_CONTEXT = 100
GROUP_KEYS = ("room_id", "sender")


@dataclass(frozen=True)
class RoomEventsCriteria:
    term: str
    keys: tuple[str, ...]
    event_filter: EventFilter
    order_by: str
    # None when no event_context was asked for.
    before_limit: int | None
    after_limit: int
    include_profile: bool
    include_state: bool
    group_by: tuple[str, ...]

    @property
    def limit(self) -> int:
        limit = self.event_filter.limit
        return DEFAULT_LIMIT if limit is None else min(limit, MAX_LIMIT)


@dataclass(frozen=True)
class SearchToken:
    order_by: str
    # The stream position to continue below ("recent"), or how many results to skip ("rank").
    position: int
    # (group key, value) when the token pages through one group of the results.
    group: tuple[str, str] | None = None

    def encode(self) -> str:
        raw = json.dumps([self.order_by, self.position, list(self.group or ())])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, order_by: str) -> SearchToken:
        try:
            padded = token + "=" * (-len(token) % 4)
            order, position, group = json.loads(base64.urlsafe_b64decode(padded))
        except (ValueError, TypeError, binascii.Error):
            raise _bad_token() from None
        if order != order_by or not isinstance(position, int) or isinstance(position, bool):
            raise _bad_token()
        if group and not (len(group) == 2 and group[0] in GROUP_KEYS and isinstance(group[1], str)):
            raise _bad_token()
        return cls(order, position, (group[0], group[1]) if group else None)


def _bad_token() -> MatrixError:
    return MatrixError(400, Codes.INVALID_PARAM, "Invalid next_batch token")


def parse_room_events(body: dict[str, Any]) -> RoomEventsCriteria | None:
    """The room_events criteria, or None when the request names no category we know."""
    categories = body.get("search_categories")
    if not isinstance(categories, dict):
        raise bad_json("search_categories must be an object")
    criteria = categories.get("room_events")
    if criteria is None:
        return None
    if not isinstance(criteria, dict):
        raise bad_json("room_events must be an object")
    term = criteria.get("search_term")
    if not isinstance(term, str):
        raise bad_json("room_events.search_term must be a string")
    order_by = criteria.get("order_by", "rank")
    if order_by not in ("rank", "recent"):
        raise bad_json("room_events.order_by must be 'rank' or 'recent'")
    context = _context(criteria.get("event_context"))
    event_filter = parse_event_filter(criteria.get("filter"), "room_events.filter")
    listed = [*(event_filter.types or ()), *event_filter.not_types]
    listed += [*(event_filter.senders or ()), *event_filter.not_senders]
    if any("\x00" in value for value in listed):
        # They go to the database as query parameters, where PostgreSQL refuses NUL.
        raise bad_json("room_events.filter may not contain NUL characters")
    return RoomEventsCriteria(
        term=term,
        keys=_keys(criteria.get("keys")),
        event_filter=event_filter,
        order_by=order_by,
        before_limit=context[0],
        after_limit=context[1],
        include_profile=context[2],
        include_state=_bool(criteria.get("include_state"), "room_events.include_state"),
        group_by=_groups(criteria.get("groupings")),
    )


def _keys(value: Any) -> tuple[str, ...]:
    if value is None:
        return tuple(SEARCH_KEYS.values())
    allowed = set(SEARCH_KEYS.values())
    if not isinstance(value, list) or not all(k in allowed for k in value):
        raise bad_json(f"room_events.keys must be a list of {sorted(allowed)}")
    return tuple(dict.fromkeys(value))


def _context(value: Any) -> tuple[int | None, int, bool]:
    if value is None:
        return None, 0, False
    if not isinstance(value, dict):
        raise bad_json("room_events.event_context must be an object")
    limits = []
    for name in ("before_limit", "after_limit"):
        limit = value.get(name, DEFAULT_CONTEXT)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise bad_json(f"room_events.event_context.{name} must be a non-negative integer")
        limits.append(min(limit, MAX_CONTEXT))
    profile = _bool(value.get("include_profile"), "room_events.event_context.include_profile")
    return limits[0], limits[1], profile


def _groups(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    group_by = value.get("group_by", []) if isinstance(value, dict) else None
    if not isinstance(group_by, list):
        raise bad_json("room_events.groupings.group_by must be a list")
    keys = []
    for group in group_by:
        if not isinstance(group, dict) or group.get("key") not in GROUP_KEYS:
            raise bad_json(f"room_events.groupings keys must be one of {list(GROUP_KEYS)}")
        keys.append(group["key"])
    return tuple(dict.fromkeys(keys))


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_json(f"{where} must be a boolean")
    return value
