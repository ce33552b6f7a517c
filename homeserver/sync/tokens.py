"""Sync and pagination tokens: stream positions, opaque to clients.

A sync token is "s" followed by the position of each stream, joined by "_", in a fixed order.
Streams added later are appended; an older token without them parses with 0 there, which means
"everything of that stream", so old tokens keep working across upgrades.

A pagination token ("t<position>") names the gap just after an event: going backwards from it
returns events at or below the position, going forwards those above it. /messages also accepts
a sync token, meaning its events position.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from homeserver.errors import Codes, MatrixError

MAX_POSITION = 2**62


@dataclass(frozen=True)
class StreamToken:
    # The order of fields is the order in the encoded token: only ever append.
    events: int = 0
    account_data: int = 0
    typing: int = 0
    receipts: int = 0
    presence: int = 0
    to_device: int = 0
    device_lists: int = 0

    def encode(self) -> str:
        return "s" + "_".join(str(getattr(self, f.name)) for f in fields(self))

    @classmethod
    def decode(cls, token: str) -> StreamToken:
        if not token.startswith("s"):
            raise _bad_token()
        parts = token[1:].split("_")
        names = [f.name for f in fields(cls)]
        if len(parts) > len(names):
            raise _bad_token()
        try:
            values = [int(part) for part in parts]
        except ValueError:
            raise _bad_token() from None
        if any(v < 0 or v > MAX_POSITION for v in values):
            raise _bad_token()
        return cls(**dict(zip(names, values, strict=False)))

    def advanced_past(self, other: StreamToken) -> bool:
        """True if any stream of self is ahead of other's."""
        return any(getattr(self, f.name) > getattr(other, f.name) for f in fields(self))

    def copy_with(self, **changes: int) -> StreamToken:
        return replace(self, **changes)

    def capped_at(self, current: StreamToken) -> StreamToken:
        """A token from the future (e.g. after a database restore) is treated as now."""
        return StreamToken(
            **{f.name: min(getattr(self, f.name), getattr(current, f.name)) for f in fields(self)}
        )


def encode_pagination_token(position: int) -> str:
    return f"t{position}"


def decode_pagination_token(token: str) -> int:
    """A pagination or sync token to an events-stream position."""
    if token.startswith("t"):
        try:
            position = int(token[1:])
        except ValueError:
            raise _bad_token() from None
        if not -MAX_POSITION <= position <= MAX_POSITION:
            raise _bad_token()
        return position
    return StreamToken.decode(token).events


def _bad_token() -> MatrixError:
    return MatrixError(400, Codes.INVALID_PARAM, "Invalid token")
