"""Builds `Event` objects for auth-rule tests, in any room version's event format.

Events in v3+ formats are named by their reference hash, so tests must take IDs from the events
they built (`ev.event_id`, `room.room_id`) rather than assume them. If the hashing module is
not available yet, a stand-in computes a deterministic fake ID so the tests can still run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
import types
from collections.abc import Iterable
from typing import Any

from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, EventFormat, RoomVersion

_counter = itertools.count(1)


def _fake_event_id(pdu: dict[str, Any], room_version: RoomVersion) -> str:
    digest = hashlib.sha256(json.dumps(pdu, sort_keys=True).encode()).hexdigest()
    return "$" + digest[:43]


def _new_event(pdu: dict[str, Any], room_version: RoomVersion, **kwargs: Any) -> Event:
    try:
        import homeserver.events.hashing  # noqa: F401
    except ImportError:
        # Only for the duration of the constructor, so no other test sees the stand-in.
        stand_in = types.ModuleType("homeserver.events.hashing")
        stand_in.compute_event_id = _fake_event_id  # type: ignore[attr-defined]
        sys.modules["homeserver.events.hashing"] = stand_in
        try:
            return Event(pdu, room_version, **kwargs)
        finally:
            del sys.modules["homeserver.events.hashing"]
    return Event(pdu, room_version, **kwargs)


def make_event(
    version: str | RoomVersion,
    event_type: str,
    sender: str,
    content: dict[str, Any] | None = None,
    *,
    state_key: str | None = None,
    room_id: str | None = None,
    prev: Iterable[Event] = (),
    auth: Iterable[Event] = (),
    event_id: str | None = None,
    rejected_reason: str | None = None,
    **extra: Any,
) -> Event:
    """An event of `version`'s format. `event_id` is only used by v1/v2 (origin-chosen IDs);
    `extra` adds top-level PDU keys (e.g. redacts=...)."""
    room_version = KNOWN_ROOM_VERSIONS[version] if isinstance(version, str) else version
    n = next(_counter)
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": content if content is not None else {},
        "origin_server_ts": 1_700_000_000_000 + n,
        "depth": n,
        "hashes": {"sha256": "AAAA"},
        "signatures": {},
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if room_version.event_format is EventFormat.V1:
        pdu["event_id"] = event_id or f"$e{n}:{sender.partition(':')[2]}"
        pdu["prev_events"] = [[e.event_id, {}] for e in prev]
        pdu["auth_events"] = [[e.event_id, {}] for e in auth]
    else:
        pdu["prev_events"] = [e.event_id for e in prev]
        pdu["auth_events"] = [e.event_id for e in auth]
    pdu.update(extra)
    return _new_event(pdu, room_version, rejected_reason=rejected_reason)


ALICE = "@alice:a.test"
BOB = "@bob:b.test"
CAROL = "@carol:c.test"
DAVE = "@dave:a.test"


class Room:
    """A room under construction: events are built on top of each other and, with `send`, run
    through the auth rules against the current state before being applied to it."""

    def __init__(
        self,
        version: str,
        creator: str = ALICE,
        *,
        create_content: dict[str, Any] | None = None,
        room_id: str = "!room:a.test",
    ) -> None:
        from homeserver.rooms.auth_rules import check_auth_rules

        self._check = check_auth_rules
        self.version = KNOWN_ROOM_VERSIONS[version]
        content = {"room_version": version, **(create_content or {})}
        if not self.version.implicit_room_creator:
            content.setdefault("creator", creator)
        self.create = make_event(
            version,
            "m.room.create",
            creator,
            content,
            state_key="",
            room_id=None if self.version.room_id_from_create_event else room_id,
        )
        self.room_id = self.create.room_id
        self.state: dict[tuple[str, str], Event] = {("m.room.create", ""): self.create}
        self.last = self.create

    def build(
        self,
        event_type: str,
        sender: str,
        content: dict[str, Any] | None = None,
        *,
        state_key: str | None = None,
        prev: Iterable[Event] | None = None,
        **extra: Any,
    ) -> Event:
        return make_event(
            self.version,
            event_type,
            sender,
            content,
            state_key=state_key,
            room_id=self.room_id,
            prev=[self.last] if prev is None else prev,
            **extra,
        )

    def check(self, event: Event, **kwargs: Any) -> None:
        self._check(event, self.state, **kwargs)

    def apply(self, event: Event) -> Event:
        if event.state_key is not None:
            self.state[(event.type, event.state_key)] = event
        self.last = event
        return event

    def send(self, event_type: str, sender: str, content: dict[str, Any] | None = None, **kw: Any):
        event = self.build(event_type, sender, content, **kw)
        self.check(event)
        return self.apply(event)

    def force(self, event_type: str, sender: str, content: dict[str, Any], state_key: str = ""):
        """Puts an event into the state without checking it (to set up odd situations)."""
        return self.apply(self.build(event_type, sender, content, state_key=state_key))

    def member_event(
        self, target: str, membership: str, sender: str | None = None, **content: Any
    ) -> Event:
        return self.build(
            "m.room.member",
            sender or target,
            {"membership": membership, **content},
            state_key=target,
        )

    def member(self, target: str, membership: str, sender: str | None = None, **content: Any):
        event = self.member_event(target, membership, sender, **content)
        self.check(event)
        return self.apply(event)


def standard_room(
    version: str,
    join_rule: str | None = "public",
    users: dict[str, int] | None = None,
    **power_levels: Any,
) -> Room:
    """Alice creates and joins; power levels give Alice 100 (not in v12, where she is a creator)
    plus `users`; the join rule is set if given."""
    room = Room(version)
    room.member(ALICE, "join")
    user_levels = {} if room.version.additional_creators else {ALICE: 100}
    user_levels.update(users or {})
    room.send("m.room.power_levels", ALICE, {"users": user_levels, **power_levels}, state_key="")
    if join_rule is not None:
        room.send("m.room.join_rules", ALICE, {"join_rule": join_rule}, state_key="")
    return room
