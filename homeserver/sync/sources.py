"""Streams other than room events that feed /sync: typing, receipts, presence, to-device, ...

Each is a `SyncSource` registered once in server.py. The sync handler asks every source for
its current position (which goes into the token), whether it may have news for a user (a cheap
in-memory check that lets a long-poll sleep without building anything), and then lets it add
its part to the response being built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from homeserver.sync.sync import SyncRequest
    from homeserver.sync.tokens import StreamToken


@dataclass
class SyncExtras:
    """What sources add to a sync response, beside rooms' timelines and state."""

    # room_id -> ephemeral events (typing, receipts) for joined rooms.
    ephemeral: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    presence: list[dict[str, Any]] = field(default_factory=list)
    to_device: list[dict[str, Any]] = field(default_factory=list)
    device_lists_changed: set[str] = field(default_factory=set)
    device_lists_left: set[str] = field(default_factory=set)
    # Top-level keys that are always sent and are not news by themselves (key counts).
    top_level: dict[str, Any] = field(default_factory=dict)

    def has_news(self) -> bool:
        return bool(
            self.ephemeral
            or self.presence
            or self.to_device
            or self.device_lists_changed
            or self.device_lists_left
        )


@dataclass
class SyncContext:
    request: SyncRequest
    # None for an initial sync; otherwise already capped at `now`.
    since: StreamToken | None
    now: StreamToken
    # Rooms the user is joined to now and the filter lets through.
    joined_rooms: list[str]
    extras: SyncExtras


class SyncSource(Protocol):
    # The StreamToken field that holds this source's position.
    stream: str

    def current_position(self) -> int: ...

    async def may_have_news(self, user_id: str, device_id: str | None, since: int) -> bool:
        """False only if nothing of this stream changed for the user after `since`."""
        ...

    async def add_to_sync(self, context: SyncContext) -> None: ...
