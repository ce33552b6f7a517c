"""Positions in a stream whose writes may commit out of order.

A position is handed out before its write commits; readers must only be told about positions
below every write still in flight, or a sync could skip a row that commits a moment later.
"""

from __future__ import annotations


class StreamIdGenerator:
    def __init__(self, current: int = 0) -> None:
        self._max_allocated = current
        self._in_flight: set[int] = set()

    def reset(self, current: int) -> None:
        self._max_allocated = current
        self._in_flight.clear()

    def allocate(self) -> int:
        self._max_allocated += 1
        self._in_flight.add(self._max_allocated)
        return self._max_allocated

    def finish(self, position: int) -> None:
        """Called when the write at `position` has committed, or failed."""
        self._in_flight.discard(position)

    @property
    def current(self) -> int:
        """The highest position below which everything has committed."""
        if self._in_flight:
            return min(self._in_flight) - 1
        return self._max_allocated


class ChangeTracker:
    """The last stream position at which each entity (a user, a room) changed.

    Lets a reader skip a query when nothing about the entity changed after its token. Positions
    before `floor` (the stream position when the process started) are unknown, so asking about
    them always answers "changed", which sends the reader to the database.
    """

    def __init__(self, floor: int = 0) -> None:
        self.floor = floor
        self._last: dict[str, int] = {}

    def note(self, entity: str, position: int) -> None:
        if position > self._last.get(entity, 0):
            self._last[entity] = position

    def changed_since(self, entity: str, position: int) -> bool:
        if position < self.floor:
            return True
        return self._last.get(entity, 0) > position
