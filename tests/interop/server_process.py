"""The real homeserver as a separate process, for interop tests that drive it with real clients.

    with HomeserverProcess(tmp_path) as server:   # generate config, start, wait for /versions
        ... server.base_url ...
        server.restart()                          # same port, same database
                                                  # leaving the block stops it, drops the database

The config comes from `python -m homeserver generate-config` (the file a user would get), patched
for tests: loopback only, a free port, cheap bcrypt, rate limits out of the way. The database is
SQLite in the data directory, or, with `HOMESERVER_TEST_DB=postgres`, a fresh PostgreSQL database
(DSN from `HOMESERVER_TEST_PG_DSN`) that is dropped when the server is closed.

Every wait is bounded; the server's stderr goes to a log file whose tail is put into the
assertion message when start-up fails, so a broken server explains itself in the test report.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_NAME = "localhost"
ENGINE = os.environ.get("HOMESERVER_TEST_DB", "sqlite")
PG_DSN = os.environ.get("HOMESERVER_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres")

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_LOG_TAIL_CHARS = 6000

_UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _PostgresDatabase:
    """A throwaway PostgreSQL database, created empty so the server runs its own migrations."""

    def __init__(self) -> None:
        import psycopg.conninfo

        self.name = f"hs_interop_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.params = psycopg.conninfo.conninfo_to_dict(PG_DSN)
        self._admin(f'CREATE DATABASE "{self.name}"')

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            PG_DSN + " dbname=postgres", autocommit=True, connect_timeout=10
        ) as conn:
            conn.execute(sql)

    def config(self) -> dict[str, Any]:
        args = {key: self.params[key] for key in ("host", "port", "user") if key in self.params}
        args["dbname"] = self.name
        return {"name": "psycopg", "args": args}

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class HomeserverProcess:
    """One homeserver process with its own config, data directory, port and database."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int | None = None,
        *,
        config_overrides: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """`config_overrides`: top-level keys set in the generated config; `env`: added to the
        process's environment."""
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self._config_overrides = config_overrides or {}
        self._env = env or {}
        self.config_path = self.data_dir / "homeserver.yaml"
        self.process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self._stderr_path: Path | None = None
        self._postgres: _PostgresDatabase | None = None
        self._write_config()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- config ---------------------------------------------------------------------------------

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "homeserver",
                "generate-config",
                "--server-name",
                SERVER_NAME,
                "--config-path",
                str(self.config_path),
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--open-registration",
            ],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            timeout=60,
        )
        config = yaml.safe_load(self.config_path.read_text())
        listener = config["listeners"][0]
        listener["port"] = self.port
        listener["bind_addresses"] = ["127.0.0.1"]
        config["bcrypt_rounds"] = 4  # the default 12 rounds cost ~0.3 s per login
        for key in ("rc_message", "rc_registration", "rc_room_creation"):
            config[key] = dict(_UNLIMITED)
        config["rc_login"] = {
            k: dict(_UNLIMITED) for k in ("address", "account", "failed_attempts")
        }
        config["rc_joins"] = {k: dict(_UNLIMITED) for k in ("local", "remote")}
        config["rc_invites"] = {k: dict(_UNLIMITED) for k in ("per_room", "per_user", "per_issuer")}
        if ENGINE == "postgres":
            self._postgres = _PostgresDatabase()
            config["database"] = self._postgres.config()
        else:
            config["database"] = {
                "name": "sqlite3",
                "args": {"database": str(self.data_dir / "homeserver.db")},
            }
        config.update(self._config_overrides)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Starts the process and returns once /versions answers 200."""
        assert self.process is None, "already running"
        self._starts += 1
        # One log per start, so a failed restart is not buried under the first run's log.
        self._stderr_path = self.data_dir / f"server-{self._starts}.stderr.log"
        with open(self._stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "homeserver", "run", "--config", str(self.config_path)],
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                env={**os.environ, **self._env, "PYTHONUNBUFFERED": "1"},
            )
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last_error = "no attempt yet"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise AssertionError(
                    f"homeserver exited with status {code} during start-up\n{self.log_tail()}"
                )
            try:
                url = f"{self.base_url}/_matrix/client/versions"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
                    last_error = f"HTTP {response.status}"
            except urllib.error.HTTPError as error:
                last_error = f"HTTP {error.code}"
            except OSError as error:  # refused while the port is not open yet
                last_error = repr(error)
            time.sleep(0.1)
        raise AssertionError(
            f"homeserver did not answer /versions within {timeout:.0f} s "
            f"(last: {last_error})\n{self.log_tail()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, a bounded wait for a clean shutdown, then SIGKILL. Safe to call twice."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def restart(self) -> None:
        """Stops and starts again on the same port, config and database."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stops the process and drops the PostgreSQL database, if any."""
        try:
            self.stop()
        finally:
            if self._postgres is not None:
                self._postgres.drop()
                self._postgres = None

    def log_tail(self) -> str:
        """The end of the current (or last) run's stderr."""
        if self._stderr_path is None or not self._stderr_path.exists():
            return "(no server log)"
        text = self._stderr_path.read_text(errors="replace")
        if len(text) > _LOG_TAIL_CHARS:
            text = "...\n" + text[-_LOG_TAIL_CHARS:]
        return f"--- server stderr ({self._stderr_path.name}) ---\n{text}"

    def __enter__(self) -> HomeserverProcess:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
