"""Room stats, the user directory, the public room list and /hierarchy pagination sessions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

from storage.database import Database, Row, Txn

# Rooms worth listing in the public room directory even when published: ones a visitor can join,
# knock on, or read. A published invite-only room would be a dead end (the spec allows servers
# to leave those out).
_LISTABLE = (
    "(s.join_rule IN ('public', 'knock', 'knock_restricted', 'restricted')"
    " OR s.history_visibility = 'world_readable')"
)
_PUBLIC_ROOM_COLUMNS = (
    "s.room_id, s.joined_members, s.name, s.topic, s.canonical_alias, s.avatar_url,"
    " s.join_rule, s.history_visibility, s.guest_access, s.room_type"
)


@dataclass
class RoomStatsRow:
    room_id: str
    state_group: int
    room_version: str
    room_type: str | None
    name: str | None
    topic: str | None
    canonical_alias: str | None
    avatar_url: str | None
    join_rule: str | None
    history_visibility: str | None
    guest_access: str | None
    encryption: str | None
    joined_members: int
    search_text: str
    members_public: bool


@dataclass
class PublicRoomsQuery:
    """One page of the public room list, in (joined_members DESC, room_id) order."""

    limit: int
    search: str | None = None  # casefolded substring of name, topic or aliases
    room_types: Sequence[str | None] | None = None
    # Keyset position (joined_members, room_id): rooms strictly after it, or before it.
    after: tuple[int, str] | None = None
    before: tuple[int, str] | None = None


@dataclass
class HierarchySession:
    user_id: str
    room_id: str
    suggested_only: bool
    max_depth: int | None
    walk: str
    created_ts: int


class DirectoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Room stats ---------------------------------------------------------------------------

    async def upsert_room_stats(self, row: RoomStatsRow) -> None:
        """Stores the row unless one computed from a newer state group is already there."""
        columns = list(RoomStatsRow.__dataclass_fields__)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        sql = (
            f"INSERT INTO room_stats ({', '.join(columns)})"
            f" VALUES ({', '.join('?' * len(columns))})"
            f" ON CONFLICT (room_id) DO UPDATE SET {updates}"
            " WHERE room_stats.state_group <= excluded.state_group"
        )
        await self.db.run("upsert_room_stats", lambda txn: txn.execute(sql, astuple(row)))

    async def rooms_with_stale_stats(self) -> list[str]:
        """Rooms whose stats row is missing or older than their current state."""
        rows = await self.db.run(
            "rooms_with_stale_stats",
            lambda txn: txn.query(
                "SELECT r.room_id FROM rooms r LEFT JOIN room_stats s ON s.room_id = r.room_id"
                " WHERE r.current_state_group IS NOT NULL"
                " AND (s.room_id IS NULL OR s.state_group <> r.current_state_group)"
            ),
        )
        return [r[0] for r in rows]

    async def list_public_rooms(self, query: PublicRoomsQuery) -> tuple[list[Row], int]:
        """(rows of the page, number of listable published rooms matching the filter)."""
        return await self.db.run("list_public_rooms", _list_public_rooms, query)

    async def move_aliases(self, old_room_id: str, new_room_id: str) -> None:
        await self.db.run(
            "move_aliases",
            lambda txn: txn.execute(
                "UPDATE room_aliases SET room_id = ? WHERE room_id = ?", (new_room_id, old_room_id)
            ),
        )

    # User directory -----------------------------------------------------------------------

    async def upsert_user(
        self, user_id: str, display_name: str | None, avatar_url: str | None, terms: set[str]
    ) -> None:
        def txn_fn(txn: Txn) -> None:
            txn.execute(
                "INSERT INTO user_directory (user_id, display_name, avatar_url) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET display_name = excluded.display_name,"
                " avatar_url = excluded.avatar_url",
                (user_id, display_name, avatar_url),
            )
            txn.execute("DELETE FROM user_directory_terms WHERE user_id = ?", (user_id,))
            txn.executemany(
                "INSERT INTO user_directory_terms (user_id, term) VALUES (?, ?)",
                [(user_id, term) for term in sorted(terms)],
            )

        await self.db.run("upsert_user_directory", txn_fn)

    async def users_with_stale_entries(self) -> list[str]:
        """Joined users missing from the directory, and users whose profile moved on."""
        rows = await self.db.run(
            "stale_user_directory",
            lambda txn: txn.query(
                "SELECT DISTINCT m.state_key FROM current_state m"
                " LEFT JOIN user_directory d ON d.user_id = m.state_key"
                " WHERE m.type = 'm.room.member' AND m.membership = 'join'"
                " AND d.user_id IS NULL"
                " UNION SELECT d.user_id FROM user_directory d"
                " JOIN profiles p ON p.user_id = d.user_id"
                " WHERE COALESCE(p.displayname, '') <> COALESCE(d.display_name, '')"
                " OR COALESCE(p.avatar_url, '') <> COALESCE(d.avatar_url, '')"
            ),
        )
        return [r[0] for r in rows]

    async def search_users(self, searcher: str, patterns: list[str], limit: int) -> list[Row]:
        """Users with a term matching every LIKE pattern, joined to a room the searcher is
        joined to or to a room whose members are public; at most `limit` rows."""
        return await self.db.run("search_user_directory", _search_users, searcher, patterns, limit)

    # Hierarchy pagination ------------------------------------------------------------------

    async def create_hierarchy_session(
        self, token: str, session: HierarchySession, expired_before_ts: int
    ) -> None:
        def txn_fn(txn: Txn) -> None:
            txn.execute("DELETE FROM hierarchy_sessions WHERE created_ts < ?", (expired_before_ts,))
            txn.execute(
                "INSERT INTO hierarchy_sessions (token, user_id, room_id, suggested_only,"
                " max_depth, walk, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token, *astuple(session)),
            )

        await self.db.run("create_hierarchy_session", txn_fn)

    async def get_hierarchy_session(self, token: str) -> HierarchySession | None:
        row = await self.db.run(
            "get_hierarchy_session",
            lambda txn: txn.query_one(
                "SELECT user_id, room_id, suggested_only, max_depth, walk, created_ts"
                " FROM hierarchy_sessions WHERE token = ?",
                (token,),
            ),
        )
        if row is None:
            return None
        return HierarchySession(row[0], row[1], bool(row[2]), row[3], row[4], row[5])


def _list_public_rooms(txn: Txn, query: PublicRoomsQuery) -> tuple[list[Row], int]:
    where = ["r.is_public = ?", _LISTABLE]
    params: list[Any] = [True]
    if query.search:
        where.append("s.search_text LIKE ? ESCAPE '\\'")
        params.append(f"%{escape_like(query.search)}%")
    if query.room_types is not None:
        named = [t for t in query.room_types if t is not None]
        alternatives = [f"s.room_type IN ({', '.join('?' * len(named))})"] if named else []
        if None in query.room_types:
            alternatives.append("s.room_type IS NULL")
        where.append(f"({' OR '.join(alternatives) or 'FALSE'})")
        params.extend(named)
    base = " FROM room_stats s JOIN rooms r ON r.room_id = s.room_id WHERE " + " AND ".join(where)
    total = txn.query_one("SELECT COUNT(*)" + base, params)
    order = "s.joined_members DESC, s.room_id ASC"
    page_where, page_params = "", list(params)
    if query.after is not None:
        page_where = " AND (s.joined_members < ? OR (s.joined_members = ? AND s.room_id > ?))"
        page_params += [query.after[0], query.after[0], query.after[1]]
    elif query.before is not None:
        page_where = " AND (s.joined_members > ? OR (s.joined_members = ? AND s.room_id < ?))"
        page_params += [query.before[0], query.before[0], query.before[1]]
        order = "s.joined_members ASC, s.room_id DESC"
    rows = txn.query(
        f"SELECT {_PUBLIC_ROOM_COLUMNS}{base}{page_where} ORDER BY {order} LIMIT ?",
        [*page_params, query.limit],
    )
    return rows, total[0] if total else 0


def _search_users(txn: Txn, searcher: str, patterns: list[str], limit: int) -> list[Row]:
    matches = " AND ".join(
        "d.user_id IN (SELECT t.user_id FROM user_directory_terms t WHERE t.term LIKE ? ESCAPE '\\')"
        for _ in patterns
    )
    sql = (
        "SELECT d.user_id, d.display_name, d.avatar_url FROM user_directory d"
        f" WHERE {matches} AND EXISTS ("
        " SELECT 1 FROM current_state m"
        " WHERE m.state_key = d.user_id AND m.type = 'm.room.member' AND m.membership = 'join'"
        " AND (m.room_id IN (SELECT room_id FROM room_stats WHERE members_public = ?)"
        " OR m.room_id IN (SELECT c.room_id FROM current_state c WHERE c.state_key = ?"
        " AND c.type = 'm.room.member' AND c.membership = 'join')))"
        " ORDER BY d.user_id LIMIT ?"
    )
    return txn.query(sql, [*patterns, True, searcher, limit])


def escape_like(text: str) -> str:
    """Makes `text` match literally inside a LIKE pattern with ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
