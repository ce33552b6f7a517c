"""What a room looks like from outside: the summary the public room list and /hierarchy show.

A summary is a pure function of the room's current state (the spec's PublishedRoomsChunk and
RoomSummary fields), read from the in-memory snapshot and the event cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from homeserver.events.event import Event
from homeserver.events.redaction import prune_event_dict
from storage.store import Storage

# The state events a summary is made of (all with state key "").
SUMMARY_STATE_TYPES = (
    "m.room.create",
    "m.room.name",
    "m.room.topic",
    "m.room.canonical_alias",
    "m.room.avatar",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.encryption",
)

RESTRICTED_RULES = ("restricted", "knock_restricted")


@dataclass
class RoomSummary:
    room_id: str
    room_version: str
    state_group: int | None
    joined_members: int
    room_type: str | None = None
    name: str | None = None
    topic: str | None = None
    canonical_alias: str | None = None
    alt_aliases: list[str] = field(default_factory=list)
    avatar_url: str | None = None
    join_rule: str | None = None
    history_visibility: str = "shared"
    guest_access: str | None = None
    encryption: str | None = None
    allowed_room_ids: list[str] = field(default_factory=list)

    @property
    def world_readable(self) -> bool:
        return self.history_visibility == "world_readable"

    @property
    def guest_can_join(self) -> bool:
        return self.guest_access == "can_join"

    def to_json(self, *, extended: bool = False) -> dict[str, Any]:
        """PublishedRoomsChunk; `extended` adds the RoomSummary fields (/hierarchy)."""
        body: dict[str, Any] = {
            "room_id": self.room_id,
            "num_joined_members": self.joined_members,
            "world_readable": self.world_readable,
            "guest_can_join": self.guest_can_join,
        }
        optional = {
            "name": self.name,
            "topic": self.topic,
            "canonical_alias": self.canonical_alias,
            "avatar_url": self.avatar_url,
            "join_rule": self.join_rule,
            "room_type": self.room_type,
        }
        if extended:
            optional["room_version"] = self.room_version
            optional["encryption"] = self.encryption
            if self.allowed_room_ids:
                body["allowed_room_ids"] = list(self.allowed_room_ids)
        body.update({key: value for key, value in optional.items() if value is not None})
        return body


def is_room_id_shaped(room_id: str) -> bool:
    """Whether a client-supplied room ID could name a room at all. Others are unknown rooms,
    answered without asking the database (PostgreSQL refuses text holding NUL)."""
    return room_id.startswith("!") and "\x00" not in room_id


def current_content(event: Event) -> dict[str, Any]:
    """The content as clients see it now: pruned when the event has been redacted."""
    if event.redacted_by is None:
        return event.content
    return prune_event_dict(event.pdu, event.room_version).get("content", {})


async def load_summary(storage: Storage, room_id: str) -> RoomSummary | None:
    """The room's summary from its current state; None for a room this server does not have."""
    if not is_room_id_shaped(room_id):
        return None
    snapshot = await storage.state.get_snapshot(room_id)
    if snapshot is None:
        return None
    ids = {t: snapshot.state[(t, "")] for t in SUMMARY_STATE_TYPES if (t, "") in snapshot.state}
    events = await storage.events.get_events(ids.values())
    contents = {t: current_content(events[eid]) for t, eid in ids.items() if eid in events}
    summary = RoomSummary(
        room_id=room_id,
        room_version=snapshot.room_version,
        state_group=snapshot.state_group,
        joined_members=len(snapshot.joined_users()),
    )
    apply_state(summary, contents)
    return summary


def apply_state(summary: RoomSummary, contents: dict[str, dict[str, Any]]) -> None:
    """Fills the summary from the contents of its state events, by type."""
    summary.room_type = _string(contents.get("m.room.create"), "type")
    summary.name = _string(contents.get("m.room.name"), "name")
    summary.topic = plain_text_topic(contents.get("m.room.topic"))
    aliases = contents.get("m.room.canonical_alias") or {}
    summary.canonical_alias = _string(aliases, "alias")
    alt = aliases.get("alt_aliases")
    summary.alt_aliases = [a for a in alt if isinstance(a, str)] if isinstance(alt, list) else []
    summary.avatar_url = _string(contents.get("m.room.avatar"), "url")
    summary.join_rule = _string(contents.get("m.room.join_rules"), "join_rule")
    visibility = _string(contents.get("m.room.history_visibility"), "history_visibility")
    summary.history_visibility = visibility or "shared"
    summary.guest_access = _string(contents.get("m.room.guest_access"), "guest_access")
    summary.encryption = _string(contents.get("m.room.encryption"), "algorithm")
    if summary.join_rule in RESTRICTED_RULES:
        summary.allowed_room_ids = allowed_room_ids(contents.get("m.room.join_rules"))


def allowed_room_ids(join_rules: dict[str, Any] | None) -> list[str]:
    """The rooms of the m.room_membership allow conditions (other condition types are unknown
    to us and cannot be satisfied)."""
    allow = (join_rules or {}).get("allow")
    if not isinstance(allow, list):
        return []
    found = []
    for condition in allow:
        if not isinstance(condition, dict) or condition.get("type") != "m.room_membership":
            continue
        room_id = condition.get("room_id")
        if isinstance(room_id, str) and room_id.startswith("!") and room_id not in found:
            found.append(room_id)
    return found


def plain_text_topic(content: dict[str, Any] | None) -> str | None:
    """The text/plain representation from m.topic, else the legacy `topic` string."""
    if not content:
        return None
    rich = content.get("m.topic")
    if isinstance(rich, list):
        for entry in rich:
            if not isinstance(entry, dict) or not isinstance(entry.get("body"), str):
                continue
            if entry.get("mimetype", "text/plain") == "text/plain":
                return entry["body"] or None
    return _string(content, "topic")


def _string(content: dict[str, Any] | None, key: str) -> str | None:
    value = (content or {}).get(key)
    return value if isinstance(value, str) and value else None
