"""One way to talk to the database, whichever engine is behind it.

SQL in this project is written once, portably, with `?` placeholders; the engine rewrites it for
its driver. Every piece of database work is a plain function `fn(txn, *args)` that runs in a
thread, inside one transaction, never on the reactor thread.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from homeserver.errors import Codes, MatrixError

logger = logging.getLogger(__name__)

T = TypeVar("T")
Row = tuple[Any, ...]


def _refuse_nul(params: Sequence[Any]) -> None:
    """PostgreSQL text cannot hold NUL; refuse it on every engine so both behave the same.

    JSON documents are stored escaped ("\\u0000"), so this only meets raw strings such as names.
    """
    for value in params:
        if isinstance(value, str) and "\x00" in value:
            raise MatrixError(400, Codes.INVALID_PARAM, "NUL characters are not allowed")


class Txn:
    """A cursor inside one transaction. Statements use `?` placeholders on every engine."""

    __slots__ = ("_cursor", "_convert", "engine_name", "after_commit")

    def __init__(self, cursor: Any, convert: Callable[[str], str], engine_name: str) -> None:
        self._cursor = cursor
        self._convert = convert
        self.engine_name = engine_name
        # Callbacks run on the reactor once the transaction has committed.
        self.after_commit: list[Callable[[], None]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Txn:
        _refuse_nul(params)
        self._cursor.execute(self._convert(sql), params)
        return self

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        for row in rows:
            _refuse_nul(row)
        if rows:
            self._cursor.executemany(self._convert(sql), rows)

    def fetchall(self) -> list[Row]:
        return self._cursor.fetchall()

    def fetchone(self) -> Row | None:
        return self._cursor.fetchone()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self.execute(sql, params).fetchone()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


class Engine(Protocol):
    name: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def run_in_connection(self, fn: Callable[..., T], *args: Any) -> T: ...
    @property
    def threadpool(self) -> ThreadPool: ...


def _unchanged(sql: str) -> str:
    return sql


class SqliteEngine:
    """SQLite in WAL mode behind one thread: SQLite allows one writer, and one thread keeps
    every statement ordered without 'database is locked' retries."""

    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="db-sqlite")
        self._conn: sqlite3.Connection | None = None

    @property
    def threadpool(self) -> ThreadPool:
        return self._pool

    def start(self) -> None:
        self._pool.start()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("PRAGMA busy_timeout=10000")
            self._conn = conn
        return self._conn

    def run_in_connection(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self._connection()
        cursor = conn.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            result = fn(Txn(cursor, _unchanged, self.name), *args)
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
        return result

    def stop(self) -> None:
        self._pool.stop()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_PG_SQL_CACHE: dict[str, str] = {}


def _to_pyformat(sql: str) -> str:
    """Rewrites `?` placeholders to psycopg's `%s` (and escapes literal `%`)."""
    converted = _PG_SQL_CACHE.get(sql)
    if converted is None:
        converted = sql.replace("%", "%%").replace("?", "%s")
        _PG_SQL_CACHE[sql] = converted
    return converted


class PostgresEngine:
    """PostgreSQL through psycopg 3 and a connection pool; one thread per pooled connection."""

    name = "postgres"

    def __init__(self, conninfo: str, min_size: int = 2, max_size: int = 10) -> None:
        self.conninfo = conninfo
        self.min_size = min_size
        self.max_size = max_size
        self._pool = ThreadPool(minthreads=1, maxthreads=max_size, name="db-postgres")
        self._connections: Any = None

    @property
    def threadpool(self) -> ThreadPool:
        return self._pool

    def start(self) -> None:
        from psycopg_pool import ConnectionPool

        self._connections = ConnectionPool(
            self.conninfo,
            min_size=self.min_size,
            max_size=self.max_size,
            open=True,
            kwargs={"autocommit": False},
        )
        self._connections.wait(timeout=30)
        self._pool.start()

    def run_in_connection(self, fn: Callable[..., T], *args: Any) -> T:
        with self._connections.connection() as conn:
            with conn.transaction():
                with conn.cursor() as cursor:
                    return fn(Txn(cursor, _to_pyformat, self.name), *args)

    def stop(self) -> None:
        self._pool.stop()
        if self._connections is not None:
            self._connections.close()
            self._connections = None


class Database:
    """Runs transactions off the reactor thread and reports slow ones."""

    def __init__(self, engine: Engine, reactor: Any) -> None:
        self.engine = engine
        self.reactor = reactor
        self.transactions_run = 0

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def start(self) -> None:
        self.engine.start()

    def stop(self) -> None:
        self.engine.stop()

    async def run(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        """Runs `fn(txn, *args)` in one transaction in a database thread; returns its result."""
        self.transactions_run += 1
        result, callbacks = await threads.deferToThreadPool(
            self.reactor, self.engine.threadpool, self._run_timed, name, fn, args
        )
        for callback in callbacks:
            callback()
        return result

    def _run_timed(self, name: str, fn: Callable[..., T], args: tuple) -> tuple[T, list]:
        started = time.monotonic()
        holder: list[list] = []

        def body(txn: Txn, *inner: Any) -> T:
            holder.append(txn.after_commit)
            return fn(txn, *inner)

        result = self.engine.run_in_connection(body, *args)
        elapsed = time.monotonic() - started
        if elapsed > 1.0:
            logger.warning("slow transaction %s took %.3fs", name, elapsed)
        return result, holder[0] if holder else []

    def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """For start-up and tools only, before the reactor runs."""
        return self.engine.run_in_connection(fn, *args)


def make_engine(
    engine_name: str,
    *,
    sqlite_path: str | None = None,
    postgres_conninfo: str | None = None,
    cp_min: int = 2,
    cp_max: int = 10,
) -> Engine:
    if engine_name == "sqlite":
        assert sqlite_path is not None
        return SqliteEngine(sqlite_path)
    if engine_name == "postgres":
        assert postgres_conninfo is not None
        return PostgresEngine(postgres_conninfo, cp_min, cp_max)
    raise ValueError(f"unknown database engine {engine_name!r}")
