"""Room state: snapshots (state groups) shared between events, and each room's current state.

A state group is stored as a delta against its `prev_group`; loading walks the chain in one
recursive query. `delta_depth` caps the chain, after which a group is written in full.
The current state of each room we touched lives in memory as a `RoomSnapshot`; only the event
persister changes it, in the same step as it commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from storage.database import Database, Txn
from storage.lru import LruCache

StateKey = tuple[str, str]
StateMap = dict[StateKey, str]

MAX_DELTA_DEPTH = 50


@dataclass
class RoomSnapshot:
    """What the event creator needs to add an event to a room, kept current by the persister."""

    room_id: str
    room_version: str
    state: StateMap
    state_group: int | None
    forward_extremities: list[str]
    max_depth: int
    # user_id -> membership for every member event in current state.
    memberships: dict[str, str] = field(default_factory=dict)

    def joined_users(self) -> list[str]:
        return [user for user, membership in self.memberships.items() if membership == "join"]

    def membership_of(self, user_id: str) -> str | None:
        return self.memberships.get(user_id)


@dataclass
class StateGroupWrite:
    """A new state group to store: `delta` against `prev_group`, or complete if prev is None."""

    group_id: int
    room_id: str
    prev_group: int | None
    delta: dict[StateKey, str | None]
    delta_depth: int


class StateStore:
    def __init__(self, db: Database, group_cache_size: int = 500) -> None:
        self.db = db
        self.group_cache: LruCache[int, StateMap] = LruCache(group_cache_size)
        self.snapshots: dict[str, RoomSnapshot] = {}
        self._group_depths: LruCache[int, int] = LruCache(10000)
        # user_id -> {room_id: membership}, for users whose rooms were asked for; the persister
        # keeps loaded entries current.
        self.user_rooms: dict[str, dict[str, str]] = {}
        # Bumped by the persister on every commit that changes current state. A load that saw the
        # counter move while it ran may have read the old state, so it is not cached.
        self.commits = 0
        self.next_group_id = 0

    async def start(self) -> None:
        row = await self.db.run(
            "max_state_group", lambda txn: txn.query_one("SELECT MAX(id) FROM state_groups")
        )
        self.next_group_id = (row[0] or 0) + 1 if row else 1

    def allocate_group_id(self) -> int:
        group_id = self.next_group_id
        self.next_group_id += 1
        return group_id

    async def get_state_group(self, group_id: int) -> StateMap:
        """The full state of a group. The returned dict is shared: do not mutate it."""
        state = self.group_cache.get(group_id)
        if state is None:
            state = await self.db.run("load_state_group", _load_group, group_id)
            self.group_cache.set(group_id, state)
        return state

    async def get_group_depth(self, group_id: int) -> int:
        depth = self._group_depths.get(group_id)
        if depth is None:
            row = await self.db.run(
                "group_depth",
                lambda txn: txn.query_one(
                    "SELECT delta_depth FROM state_groups WHERE id = ?", (group_id,)
                ),
            )
            depth = row[0] if row else 0
            self._group_depths.set(group_id, depth)
        return depth

    async def plan_group(
        self, room_id: str, prev_group: int | None, changes: dict[StateKey, str]
    ) -> StateGroupWrite:
        """A new group that is `prev_group` plus `changes`, stored as a delta when short enough."""
        group_id = self.allocate_group_id()
        if prev_group is None:
            return StateGroupWrite(group_id, room_id, None, dict(changes), 0)
        depth = await self.get_group_depth(prev_group) + 1
        if depth > MAX_DELTA_DEPTH:
            full = dict(await self.get_state_group(prev_group))
            full.update(changes)
            return StateGroupWrite(group_id, room_id, None, dict(full), 0)
        return StateGroupWrite(group_id, room_id, prev_group, dict(changes), depth)

    def remember_group(self, write: StateGroupWrite, full_state: StateMap) -> None:
        self.group_cache.set(write.group_id, full_state)
        self._group_depths.set(write.group_id, write.delta_depth)

    async def get_snapshot(self, room_id: str) -> RoomSnapshot | None:
        while room_id not in self.snapshots:
            commits_before = self.commits
            snapshot = await self.db.run("load_room_snapshot", _load_snapshot, room_id)
            if snapshot is None:
                return None
            if self.commits == commits_before:
                self.snapshots.setdefault(room_id, snapshot)
        return self.snapshots[room_id]

    async def get_rooms_for_user(self, user_id: str) -> dict[str, str]:
        """room_id -> membership (join, invite, leave, ban, knock) from current state.

        The returned dict is shared with the cache: do not mutate it."""
        while user_id not in self.user_rooms:
            commits_before = self.commits
            rooms = await self._load_rooms_for_user(user_id)
            if self.commits == commits_before:
                self.user_rooms.setdefault(user_id, rooms)
        return self.user_rooms[user_id]

    def note_membership(self, user_id: str, room_id: str, membership: str) -> None:
        """Called by the persister after commit."""
        rooms = self.user_rooms.get(user_id)
        if rooms is not None:
            rooms[room_id] = membership

    def forget_memberships_not_in(self, room_id: str, memberships: dict[str, str]) -> None:
        """Called by the persister after a commit that replaced a room's whole state: drops
        the room from the cached room lists of users `memberships` (the new state's) omits."""
        for user_id, rooms in self.user_rooms.items():
            if room_id in rooms and user_id not in memberships:
                del rooms[room_id]

    async def _load_rooms_for_user(self, user_id: str) -> dict[str, str]:
        rows = await self.db.run(
            "rooms_for_user",
            lambda txn: txn.query(
                "SELECT room_id, membership FROM current_state"
                " WHERE state_key = ? AND type = 'm.room.member'",
                (user_id,),
            ),
        )
        return {room_id: membership for room_id, membership in rows}

    async def get_state_groups_after(self, event_ids: Iterable[str]) -> dict[str, int | None]:
        """event_id -> the state group after it (None for outliers, which have no state)."""
        ids = list(event_ids)
        if not ids:
            return {}
        rows = await self.db.run(
            "state_groups_after",
            lambda txn: txn.query(
                "SELECT event_id, state_after FROM events WHERE event_id IN"
                f" ({','.join('?' * len(ids))})",
                ids,
            ),
        )
        return {event_id: group for event_id, group in rows}

    async def get_state_at_position(self, room_id: str, position: int) -> StateMap | None:
        """The room's state just after the event at or before `position` (None if none)."""
        row = await self.db.run(
            "state_at_position",
            lambda txn: txn.query_one(
                "SELECT state_after FROM events WHERE room_id = ? AND stream_ordering <= ?"
                " AND stream_ordering IS NOT NULL ORDER BY stream_ordering DESC LIMIT 1",
                (room_id, position),
            ),
        )
        if row is None or row[0] is None:
            return None
        return await self.get_state_group(row[0])


def _load_group(txn: Txn, group_id: int) -> StateMap:
    rows = txn.query(
        "WITH RECURSIVE chain(id, prev_group, n) AS ("
        " SELECT id, prev_group, 0 FROM state_groups WHERE id = ?"
        " UNION ALL"
        " SELECT g.id, g.prev_group, c.n + 1 FROM state_groups g JOIN chain c ON g.id = c.prev_group"
        ") SELECT c.n, s.type, s.state_key, s.event_id"
        " FROM chain c JOIN state_group_entries s ON s.state_group = c.id"
        " ORDER BY c.n DESC",
        (group_id,),
    )
    state: StateMap = {}
    for _, event_type, state_key, event_id in rows:
        if event_id is None:
            state.pop((event_type, state_key), None)
        else:
            state[(event_type, state_key)] = event_id
    return state


def _load_snapshot(txn: Txn, room_id: str) -> RoomSnapshot | None:
    room = txn.query_one(
        "SELECT room_version, current_state_group FROM rooms WHERE room_id = ?", (room_id,)
    )
    if room is None:
        return None
    state: StateMap = {}
    memberships: dict[str, str] = {}
    for event_type, state_key, event_id, membership in txn.query(
        "SELECT type, state_key, event_id, membership FROM current_state WHERE room_id = ?",
        (room_id,),
    ):
        state[(event_type, state_key)] = event_id
        if event_type == "m.room.member":
            memberships[state_key] = membership
    extremities = [
        row[0]
        for row in txn.query(
            "SELECT event_id FROM event_forward_extremities WHERE room_id = ?", (room_id,)
        )
    ]
    depth_row = txn.query_one(
        "SELECT MAX(depth) FROM events WHERE room_id = ? AND outlier = ?", (room_id, False)
    )
    return RoomSnapshot(
        room_id=room_id,
        room_version=room[0],
        state=state,
        state_group=room[1],
        forward_extremities=extremities,
        max_depth=depth_row[0] if depth_row and depth_row[0] is not None else 0,
        memberships=memberships,
    )


def write_state_groups(txn: Txn, writes: Iterable[StateGroupWrite]) -> None:
    for write in writes:
        txn.execute(
            "INSERT INTO state_groups (id, room_id, prev_group, delta_depth) VALUES (?, ?, ?, ?)",
            (write.group_id, write.room_id, write.prev_group, write.delta_depth),
        )
        txn.executemany(
            "INSERT INTO state_group_entries (state_group, type, state_key, event_id)"
            " VALUES (?, ?, ?, ?)",
            [(write.group_id, t, sk, eid) for (t, sk), eid in write.delta.items()],
        )
