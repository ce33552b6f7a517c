"""The in-memory form of one room event (a PDU).

An `Event` wraps the signed PDU dict as it travels over federation, minus `unsigned`, which is
kept apart because it is not covered by hashes or signatures and differs per viewer. The commonly
read fields are copied into slots once so hot paths (sync, auth) do not do dict look-ups.
"""

from __future__ import annotations

from typing import Any

from homeserver.events.room_versions import EventFormat, RoomVersion


class Event:
    __slots__ = (
        "pdu",
        "room_version",
        "event_id",
        "room_id",
        "type",
        "state_key",
        "sender",
        "content",
        "depth",
        "origin_server_ts",
        "prev_event_ids",
        "auth_event_ids",
        "unsigned",
        "stream_ordering",
        "rejected_reason",
        "outlier",
        "redacted_by",
        "sent_by",
        "state_group_before",
    )

    def __init__(
        self,
        pdu: dict[str, Any],
        room_version: RoomVersion,
        *,
        event_id: str | None = None,
        unsigned: dict[str, Any] | None = None,
        stream_ordering: int | None = None,
        rejected_reason: str | None = None,
        outlier: bool = False,
    ) -> None:
        self.pdu = pdu
        self.room_version = room_version
        self.type: str = pdu["type"]
        self.state_key: str | None = pdu.get("state_key")
        self.sender: str = pdu["sender"]
        self.content: dict[str, Any] = pdu.get("content", {})
        self.depth: int = pdu.get("depth", 0)
        self.origin_server_ts: int = pdu.get("origin_server_ts", 0)
        if room_version.event_format is EventFormat.V1:
            self.event_id: str = pdu["event_id"]
            self.prev_event_ids: list[str] = [pair[0] for pair in pdu.get("prev_events", [])]
            self.auth_event_ids: list[str] = [pair[0] for pair in pdu.get("auth_events", [])]
        else:
            if event_id is None:
                # Hashed IDs are computed once; callers that stored the ID pass it in.
                from homeserver.events.hashing import compute_event_id

                event_id = compute_event_id(pdu, room_version)
            self.event_id = event_id
            self.prev_event_ids = list(pdu.get("prev_events", []))
            self.auth_event_ids = list(pdu.get("auth_events", []))
        if "room_id" in pdu:
            self.room_id: str = pdu["room_id"]
        elif room_version.room_id_from_create_event and self.type == "m.room.create":
            # v12: the create event has no room_id; the room is named after the event's hash.
            self.room_id = "!" + self.event_id[1:]
        else:
            raise ValueError("event has no room_id")
        self.unsigned: dict[str, Any] = unsigned if unsigned is not None else {}
        self.stream_ordering = stream_ordering
        self.rejected_reason = rejected_reason
        self.outlier = outlier
        # The redaction that applies to this event, once one has been persisted.
        self.redacted_by: str | None = None
        # (device_id, txn_id) of a local client's send: echoed to that device as transaction_id.
        self.sent_by: tuple[str, str] | None = None
        # The stored snapshot of the room's state just before this event (None for outliers).
        self.state_group_before: int | None = None

    def is_state(self) -> bool:
        return self.state_key is not None

    @property
    def state_tuple(self) -> tuple[str, str]:
        """The (type, state_key) key this event sets in room state; only for state events."""
        assert self.state_key is not None
        return (self.type, self.state_key)

    @property
    def membership(self) -> str | None:
        if self.type != "m.room.member":
            return None
        return self.content.get("membership")

    @property
    def redacts(self) -> str | None:
        """The event this redaction targets: in content from v11, at the top level before."""
        if self.type != "m.room.redaction":
            return None
        if self.room_version.updated_redaction_rules:
            return self.content.get("redacts") or self.pdu.get("redacts")
        return self.pdu.get("redacts")

    @property
    def origin(self) -> str:
        """The server that created the event: the domain of its sender."""
        return self.sender.split(":", 1)[1]

    def __repr__(self) -> str:
        return f"<Event {self.event_id} {self.type} {self.state_key!r} in {self.room_id}>"
