"""Starting real homeservers for tests, on the engine the run asks for.

`HOMESERVER_TEST_DB=postgres` runs every server on PostgreSQL (a fresh database per server,
copied from a migrated template); otherwise SQLite in a temporary directory. The server listens
on a free loopback port and is driven over real HTTP with treq.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import treq
from twisted.internet import reactor

from homeserver.config import HomeServerConfig, parse_config, write_vapid_key
from homeserver.events.signing import generate_signing_key, write_signing_key

ENGINE = os.environ.get("HOMESERVER_TEST_DB", "sqlite")
PG_DSN = os.environ.get("HOMESERVER_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres")
_TEMPLATE = f"hs_test_template_{os.getpid()}"
_counter = itertools.count()
_template_ready = False


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN + " dbname=postgres", autocommit=True) as conn:
        conn.execute(sql)


def _ensure_template() -> None:
    """Creates, once per test process, a database with every migration applied."""
    global _template_ready
    if _template_ready:
        return
    from storage.database import Database, make_engine
    from storage.migrations import apply_migrations

    _pg_admin(f'DROP DATABASE IF EXISTS "{_TEMPLATE}"')
    _pg_admin(f'CREATE DATABASE "{_TEMPLATE}"')
    db = Database(
        make_engine(
            "postgres", postgres_conninfo=f"{PG_DSN} dbname={_TEMPLATE}", cp_min=1, cp_max=1
        ),
        reactor,
    )
    db.start()
    try:
        apply_migrations(db)
    finally:
        # A failed migration must not leave a connection that blocks the next DROP DATABASE.
        db.stop()
    _template_ready = True


def fresh_database_config(data_dir: str) -> tuple[dict[str, Any], Any]:
    """The `database` config section for a new empty database, and how to drop it after."""
    if ENGINE != "postgres":
        return {"name": "sqlite3", "args": {"database": os.path.join(data_dir, "hs.db")}}, None
    _ensure_template()
    name = f"hs_test_{os.getpid()}_{next(_counter)}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{_TEMPLATE}"')
    args = dict(part.split("=", 1) for part in PG_DSN.split())
    args.update(dbname=name, cp_min=1, cp_max=4)
    return {"name": "psycopg", "args": args}, lambda: _pg_admin(
        f'DROP DATABASE "{name}" WITH (FORCE)'
    )


def make_config(data_dir: str, database: dict[str, Any], **overrides: Any) -> HomeServerConfig:
    key_path = os.path.join(data_dir, "test.signing.key")
    if not os.path.exists(key_path):
        write_signing_key(key_path, generate_signing_key())
    vapid_path = os.path.join(data_dir, "test.vapid.pem")
    if not os.path.exists(vapid_path):
        write_vapid_key(vapid_path)
    data: dict[str, Any] = {
        "server_name": "test.local",
        "public_baseurl": "http://127.0.0.1/",
        "listeners": [
            {
                "port": 8008,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "resources": [{"names": ["client", "federation", "media"]}],
            }
        ],
        "database": database,
        "signing_key_path": key_path,
        "media_store_path": os.path.join(data_dir, "media"),
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "registration_shared_secret": "test-shared-secret",
        "bcrypt_rounds": 4,
        "log_level": "WARNING",
        "webpush": {"enabled": True, "vapid_private_key_path": vapid_path},
    }
    unlimited = {"per_second": 1_000_000, "burst_count": 1_000_000}
    for key in ("rc_message", "rc_registration", "rc_room_creation"):
        data[key] = dict(unlimited)
    data["rc_login"] = {k: dict(unlimited) for k in ("address", "account", "failed_attempts")}
    data["rc_joins"] = {k: dict(unlimited) for k in ("local", "remote")}
    data["rc_invites"] = {k: dict(unlimited) for k in ("per_room", "per_user", "per_issuer")}
    data.update(overrides)
    return parse_config(data, os.path.join(data_dir, "homeserver.yaml"))


@dataclass
class Response:
    code: int
    json: Any
    headers: Any


class TestClient:
    """A thin JSON client over treq for one server."""

    __test__ = False  # a helper, not a pytest test class

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        all_headers = {"Content-Type": "application/json"}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        all_headers.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = await treq.request(
            method,
            self.base_url + path,
            data=data,
            headers={k: [v] for k, v in all_headers.items()},
            persistent=False,
        )
        content = await response.content()
        try:
            parsed = json.loads(content) if content else None
        except ValueError:
            parsed = content
        return Response(response.code, parsed, response.headers)

    async def get(self, path: str, token: str | None = None) -> Response:
        return await self.request("GET", path, token=token)

    async def post(self, path: str, body: Any = None, token: str | None = None) -> Response:
        return await self.request("POST", path, body if body is not None else {}, token)

    async def put(self, path: str, body: Any = None, token: str | None = None) -> Response:
        return await self.request("PUT", path, body if body is not None else {}, token)

    async def register(self, username: str, password: str = "correct horse") -> tuple[str, str]:
        """Registers through the dummy flow; returns (user_id, access_token)."""
        response = await self.post(
            "/_matrix/client/v3/register",
            {"username": username, "password": password, "auth": {"type": "m.login.dummy"}},
        )
        assert response.code == 200, response.json
        return response.json["user_id"], response.json["access_token"]


class TestServer:
    """A HomeServer on a free loopback port with its own fresh database."""

    __test__ = False  # a helper, not a pytest test class

    def __init__(self, **config_overrides: Any) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="hs-test-")
        self.data_dir = self._tmp.name
        database, self._drop = fresh_database_config(self.data_dir)
        self.config = make_config(self.data_dir, database, **config_overrides)
        self.hs: Any = None
        self.client: TestClient | None = None

    async def start(self) -> TestServer:
        from dataclasses import replace

        from homeserver.server import HomeServer

        listener = replace(self.config.listeners[0], port=0)
        self.config = replace(self.config, listeners=(listener, *self.config.listeners[1:]))
        self.hs = HomeServer(self.config, reactor)
        await self.hs.start()
        ports = self.hs.listen()
        self.base_url = f"http://127.0.0.1:{ports[0].getHost().port}"
        self.client = TestClient(self.base_url)
        return self

    async def restart(self) -> None:
        """Stops and starts a new HomeServer on the same database: nothing kept in memory."""
        assert self.hs is not None
        await self.hs.stop()
        await self.start()

    async def stop(self) -> None:
        if self.hs is not None:
            await self.hs.stop()
            self.hs = None
        if self._drop is not None:
            self._drop()
            self._drop = None
        self._tmp.cleanup()


class TestStorage:
    """Just the storage layer on a fresh database, for tests below the HTTP API."""

    __test__ = False  # a helper, not a pytest test class

    def __init__(self) -> None:
        from storage.store import Storage, open_database

        self._tmp = tempfile.TemporaryDirectory(prefix="hs-store-")
        database, self._drop = fresh_database_config(self._tmp.name)
        config = make_config(self._tmp.name, database).database
        self.db = open_database(
            reactor,
            config.engine,
            sqlite_path=config.sqlite_path,
            postgres_conninfo=config.postgres_conninfo,
            cp_min=1,
            cp_max=4,
        )
        self.storage = Storage(self.db)

    async def start(self) -> Any:
        await self.storage.start()
        return self.storage

    def stop(self) -> None:
        self.db.stop()
        if self._drop is not None:
            self._drop()
            self._drop = None
        self._tmp.cleanup()
