"""A real Synapse, as a federation peer for interop tests.

    python = ensure_synapse()                    # a venv with matrix-synapse, installed if missing
    with SynapsePeer(data_dir, python) as peer:  # configure, generate keys, start, wait
        ... peer.server_name, peer.client_url ...

The venv is `$HOMESERVER_SYNAPSE_VENV` if set, else `<tmp>/hs-synapse-venv-<version>`: outside the
checkout (nothing for git to ignore), reused between runs, created with `python -m venv` and pip
on a fresh machine. A lock file keeps two test processes from installing into it at once, and a
venv whose install did not finish is installed again.

Synapse is named "127.0.0.1:<https port>": other servers reach it directly, without discovery.
One HTTPS listener (self-signed certificate) serves client and federation APIs; a plain HTTP
listener on another port serves the client and key APIs, for test clients. Certificates are not checked,
loopback is allowed, no key server is trusted, registration is open, rate limits are out of the
way. Its log is `homeserver.log` in the data directory; its tail goes into failure messages.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import secrets
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.federation.federation_testing import free_port, write_self_signed_cert

SYNAPSE_VERSION = "1.163.2"
VENV_ENV = "HOMESERVER_SYNAPSE_VENV"
DEFAULT_VENV = Path(tempfile.gettempdir()) / f"hs-synapse-venv-{SYNAPSE_VERSION}"

INSTALL_TIMEOUT_S = 1800.0  # a fresh machine downloads and builds Synapse's dependencies
GENERATE_TIMEOUT_S = 60.0
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
_LOG_TAIL_CHARS = 8000

_UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}


class SynapseError(AssertionError):
    """Synapse could not be installed, configured or started; the message says why."""


# -- installation -----------------------------------------------------------------------------


def venv_path() -> Path:
    return Path(os.environ.get(VENV_ENV) or DEFAULT_VENV)


def installed_version(python: Path) -> str | None:
    """The matrix-synapse version in the venv of `python`, None if there is none."""
    if not python.exists():
        return None
    try:
        done = subprocess.run(
            [str(python), "-c",
             "import importlib.metadata as m; print(m.version('matrix-synapse'))"],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_synapse(timeout_s: float = INSTALL_TIMEOUT_S) -> Path:
    """The Python of a venv holding matrix-synapse==SYNAPSE_VERSION, installing it if needed."""
    venv = venv_path()
    python = venv / "bin" / "python"
    if installed_version(python) == SYNAPSE_VERSION:
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _locked(venv.parent / f".{venv.name}.lock"):
        if installed_version(python) == SYNAPSE_VERSION:
            return python  # another process installed it while we waited
        deadline = time.monotonic() + timeout_s
        if not python.exists():
            _run([sys.executable, "-m", "venv", str(venv)], deadline, "create the Synapse venv")
        _run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check",
             "--no-input", f"matrix-synapse=={SYNAPSE_VERSION}"],
            deadline,
            f"pip install matrix-synapse=={SYNAPSE_VERSION} into {venv}",
        )
        found = installed_version(python)
        if found != SYNAPSE_VERSION:
            raise SynapseError(f"{venv} holds matrix-synapse {found}, not {SYNAPSE_VERSION}")
    return python


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(command: list[str], deadline: float, what: str) -> None:
    remaining = max(deadline - time.monotonic(), 1.0)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=remaining)
    except subprocess.TimeoutExpired:
        raise SynapseError(f"could not {what} within {remaining:.0f} s") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-_LOG_TAIL_CHARS:]
        raise SynapseError(f"could not {what} (exit status {done.returncode}):\n{output}")


# -- one Synapse ------------------------------------------------------------------------------


class SynapsePeer:
    """One Synapse process with its own config, data directory, ports and SQLite database."""

    def __init__(self, data_dir: str | os.PathLike[str], python: Path) -> None:
        self.data_dir = Path(data_dir)
        self.python = python
        self.https_port = free_port()
        self.http_port = free_port()
        self.server_name = f"127.0.0.1:{self.https_port}"
        self.config_path = self.data_dir / "homeserver.yaml"
        self.log_path = self.data_dir / "homeserver.log"
        self.stdout_path = self.data_dir / "synapse.stdout.log"
        self.signing_key_path = self.data_dir / "signing.key"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        """The plain-HTTP client API."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def federation_url(self) -> str:
        return f"https://{self.server_name}"

    def signing_key(self) -> tuple[str, str]:
        """(key ID, unpadded base64 seed) of the key Synapse signs with."""
        algorithm, version, seed = self.signing_key_path.read_text().split()[:3]
        return f"{algorithm}:{version}", seed

    # -- config ---------------------------------------------------------------------------------

    def configure(self) -> None:
        """Writes the config and log config, then lets Synapse generate its signing key."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cert, key = write_self_signed_cert(str(self.data_dir))
        log_config = self.data_dir / "log.config"
        log_config.write_text(yaml.safe_dump(self._log_config(), sort_keys=False))
        self.config_path.write_text(
            yaml.safe_dump(self._config(cert, key, str(log_config)), sort_keys=False)
        )
        _run(
            [str(self.python), "-m", "synapse.app.homeserver", "--config-path",
             str(self.config_path), "--generate-keys"],
            time.monotonic() + GENERATE_TIMEOUT_S,
            "generate Synapse's signing key",
        )
        if not self.signing_key_path.exists():
            raise SynapseError(f"Synapse did not write {self.signing_key_path}")

    def _config(self, cert: str, key: str, log_config: str) -> dict[str, Any]:
        data = str(self.data_dir)
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "pid_file": os.path.join(data, "homeserver.pid"),
            "report_stats": False,
            "listeners": [
                {
                    "port": self.https_port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": True,
                    "x_forwarded": False,
                    "resources": [{"names": ["client", "federation"], "compress": False}],
                },
                {
                    "port": self.http_port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client", "keys"], "compress": False}],
                },
            ],
            "tls_certificate_path": cert,
            "tls_private_key_path": key,
            "database": {
                "name": "sqlite3",
                "args": {"database": os.path.join(data, "homeserver.db")},
            },
            "log_config": log_config,
            "media_store_path": os.path.join(data, "media_store"),
            "signing_key_path": str(self.signing_key_path),
            "macaroon_secret_key": secrets.token_urlsafe(32),
            "form_secret": secrets.token_urlsafe(32),
            "registration_shared_secret": secrets.token_urlsafe(32),
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_verify_certificates": False,
            # Loopback is allowed twice over: Synapse checks a server name that is an IP literal
            # against the blacklist alone (its whitelist only applies to resolved hostnames).
            "ip_range_whitelist": ["127.0.0.0/8"],
            "ip_range_blacklist": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                   "169.254.0.0/16", "fe80::/10", "fc00::/7"],
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "url_preview_enabled": False,
            "enable_metrics": False,
        }
        for key_name in (
            "rc_message", "rc_registration", "rc_registration_token_validity",
            "rc_admin_redaction", "rc_joins_per_room", "rc_3pid_validation",
            "rc_third_party_invite", "rc_media_create", "rc_delayed_event_mgmt",
            "rc_room_creation", "rc_reports", "rc_user_directory", "rc_profile",
            "rc_key_requests",
        ):
            config[key_name] = dict(_UNLIMITED)
        config["rc_login"] = {k: dict(_UNLIMITED) for k in ("address", "account",
                                                             "failed_attempts")}
        config["rc_joins"] = {k: dict(_UNLIMITED) for k in ("local", "remote")}
        config["rc_invites"] = {k: dict(_UNLIMITED) for k in ("per_room", "per_user",
                                                               "per_issuer")}
        config["rc_presence"] = {"per_user": dict(_UNLIMITED)}
        config["rc_federation"] = {"window_size": 1000, "sleep_limit": 1000, "sleep_delay": 1,
                                   "reject_limit": 1000, "concurrent": 100}
        return config

    def _log_config(self) -> dict[str, Any]:
        return {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                              "%(request)s - %(message)s"
                }
            },
            "filters": {
                "context": {"()": "synapse.logging.context.LoggingContextFilter",
                            "request": ""}
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "filters": ["context"],
                    "encoding": "utf8",
                }
            },
            "loggers": {"synapse.storage.SQL": {"level": "INFO"}},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Starts Synapse; returns once both listeners answer."""
        assert self.process is None, "already running"
        with open(self.stdout_path, "ab") as out:
            self.process = subprocess.Popen(
                [str(self.python), "-m", "synapse.app.homeserver", "--config-path",
                 str(self.config_path)],
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        atexit.register(self.stop)
        try:
            self._wait_until_ready(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, timeout_s: float) -> None:
        assert self.process is not None
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        urls = [
            (f"{self.client_url}/_matrix/client/versions", None),
            (f"{self.federation_url}/_matrix/key/v2/server", unverified),
        ]
        deadline = time.monotonic() + timeout_s
        last_error = "no attempt yet"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise SynapseError(f"Synapse exited with status {code} during start-up\n"
                                   f"{self.log_tail()}")
            try:
                for url, context in urls:
                    with urllib.request.urlopen(url, timeout=2, context=context) as response:
                        if response.status != 200:
                            raise OSError(f"{url}: HTTP {response.status}")
                return
            except urllib.error.HTTPError as error:
                last_error = f"HTTP {error.code}"
            except OSError as error:  # refused while the ports are not open yet
                last_error = repr(error)
            time.sleep(0.2)
        raise SynapseError(f"Synapse did not answer within {timeout_s:.0f} s (last: {last_error})"
                           f"\n{self.log_tail()}")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, a bounded wait, then SIGKILL. Safe to call twice."""
        process, self.process = self.process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)

    def log_tail(self, chars: int = _LOG_TAIL_CHARS) -> str:
        """The end of Synapse's log (and of its stdout, where start-up errors go)."""
        parts = []
        for path in (self.stdout_path, self.log_path):
            if path.exists():
                text = path.read_text(errors="replace")
                if len(text) > chars:
                    text = "...\n" + text[-chars:]
                parts.append(f"--- {path} ---\n{text}")
        return "\n".join(parts) or "(no Synapse log)"

    def __enter__(self) -> SynapsePeer:
        try:
            self.configure()
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
