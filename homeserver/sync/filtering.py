"""Sync filters (the spec's Filter, RoomFilter, RoomEventFilter): parsing and matching.

Parsing validates shapes and answers M_BAD_JSON for anything malformed; matching is plain
functions over events so it is testable without a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from homeserver.errors import bad_json
from homeserver.events.event import Event
from storage.events import TimelineFilter

DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMELINE_LIMIT = 1000


@lru_cache(maxsize=1024)
def _wildcard(pattern: str) -> re.Pattern[str]:
    # Only "*" is special in filters; fnmatch would also treat "?" and "[" specially.
    return re.compile(re.escape(pattern).replace(r"\*", ".*") + r"\Z")


def _matches_any(value: str, patterns: tuple[str, ...]) -> bool:
    return any(p == value or ("*" in p and _wildcard(p).match(value)) for p in patterns)


@dataclass(frozen=True)
class EventFilter:
    limit: int | None = None
    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    contains_url: bool | None = None
    # On the timeline filter: split unread counts per thread (unread_thread_notifications).
    unread_thread_notifications: bool = False

    def allows_type(self, event_type: str) -> bool:
        if self.not_types and _matches_any(event_type, self.not_types):
            return False
        return self.types is None or _matches_any(event_type, self.types)

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def allows(self, event: Event) -> bool:
        if event.sender in self.not_senders:
            return False
        if self.senders is not None and event.sender not in self.senders:
            return False
        if not self.allows_type(event.type):
            return False
        if self.contains_url is not None:
            has_url = isinstance(event.content.get("url"), str)
            if has_url != self.contains_url:
                return False
        return self.allows_room(event.room_id)

    def allows_nothing(self) -> bool:
        return self.types == () or self.senders == () or self.limit == 0

    def sql_pushdown(self) -> TimelineFilter | None:
        """The part the database can apply: exact types and senders (no wildcards)."""
        types = self.types if self.types is not None and not _has_wildcard(self.types) else None
        not_types = () if _has_wildcard(self.not_types) else self.not_types
        if types is None and not not_types and self.senders is None and not self.not_senders:
            return None
        return TimelineFilter(types, not_types, self.senders, self.not_senders)


def _has_wildcard(patterns: tuple[str, ...] | None) -> bool:
    return bool(patterns) and any("*" in p for p in patterns)  # type: ignore[union-attr]


@dataclass(frozen=True)
class SyncFilter:
    timeline: EventFilter = field(default_factory=EventFilter)
    state: EventFilter = field(default_factory=EventFilter)
    ephemeral: EventFilter = field(default_factory=EventFilter)
    room_account_data: EventFilter = field(default_factory=EventFilter)
    account_data: EventFilter = field(default_factory=EventFilter)
    presence: EventFilter = field(default_factory=EventFilter)
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    include_leave: bool = False
    event_fields: tuple[str, ...] | None = None
    event_format: str = "client"

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    @property
    def timeline_limit(self) -> int:
        limit = self.timeline.limit
        if limit is None:
            return DEFAULT_TIMELINE_LIMIT
        return max(0, min(limit, MAX_TIMELINE_LIMIT))


def _string_list(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_json(f"{where} must be a list of strings")
    return tuple(value)


def _bool(value: Any, where: str, default: bool | None) -> bool | None:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_json(f"{where} must be a boolean")
    return value


def parse_event_filter(value: Any, where: str) -> EventFilter:
    if value is None:
        return EventFilter()
    if not isinstance(value, dict):
        raise bad_json(f"{where} must be an object")
    limit = value.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise bad_json(f"{where}.limit must be a non-negative integer")
    return EventFilter(
        limit=limit,
        types=_string_list(value.get("types"), f"{where}.types"),
        not_types=_string_list(value.get("not_types"), f"{where}.not_types") or (),
        senders=_string_list(value.get("senders"), f"{where}.senders"),
        not_senders=_string_list(value.get("not_senders"), f"{where}.not_senders") or (),
        rooms=_string_list(value.get("rooms"), f"{where}.rooms"),
        not_rooms=_string_list(value.get("not_rooms"), f"{where}.not_rooms") or (),
        lazy_load_members=bool(_bool(value.get("lazy_load_members"), where, False)),
        include_redundant_members=bool(_bool(value.get("include_redundant_members"), where, False)),
        contains_url=_bool(value.get("contains_url"), f"{where}.contains_url", None),
        unread_thread_notifications=bool(
            _bool(value.get("unread_thread_notifications"), where, False)
        ),
    )


def parse_sync_filter(value: Any) -> SyncFilter:
    if not isinstance(value, dict):
        raise bad_json("filter must be an object")
    room = value.get("room")
    room = {} if room is None else room
    if not isinstance(room, dict):
        raise bad_json("room must be an object")
    event_format = value.get("event_format", "client")
    if event_format not in ("client", "federation"):
        raise bad_json("event_format must be 'client' or 'federation'")
    return SyncFilter(
        timeline=parse_event_filter(room.get("timeline"), "room.timeline"),
        state=parse_event_filter(room.get("state"), "room.state"),
        ephemeral=parse_event_filter(room.get("ephemeral"), "room.ephemeral"),
        room_account_data=parse_event_filter(room.get("account_data"), "room.account_data"),
        account_data=parse_event_filter(value.get("account_data"), "account_data"),
        presence=parse_event_filter(value.get("presence"), "presence"),
        rooms=_string_list(room.get("rooms"), "room.rooms"),
        not_rooms=_string_list(room.get("not_rooms"), "room.not_rooms") or (),
        include_leave=bool(_bool(room.get("include_leave"), "room.include_leave", False)),
        event_fields=_string_list(value.get("event_fields"), "event_fields"),
        event_format=event_format,
    )


def apply_event_fields(event_json: dict[str, Any], event_fields: tuple[str, ...]) -> dict:
    """Keeps only the listed dot-separated fields ("content.body"); "\\." escapes a dot."""
    result: dict[str, Any] = {}
    for path in event_fields:
        keys = [k.replace("\\.", ".") for k in re.split(r"(?<!\\)\.", path)]
        source: Any = event_json
        for key in keys:
            if not isinstance(source, dict) or key not in source:
                break
            source = source[key]
        else:
            target = result
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            target[keys[-1]] = source
    return result
