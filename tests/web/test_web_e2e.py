"""End-to-end test of the bundled web client in a real browser against the real homeserver.

Starts the homeserver as a process on a free loopback port (open registration, rate limits out of
the way: see tests/interop/server_process.py), then runs `npm run e2e` in web/ (web/e2e/e2e.mjs):
Playwright (`playwright-core`, which downloads no browser) drives Debian's Chromium headless
(`/usr/bin/chromium`, or `CHROMIUM_PATH`) through sign-up, a server with a channel, an invite,
live messages, an offline reload with pending messages, a second tab, Web Push notifications, a
DM and the desktop and phone layouts.

Web Push: the browser's subscription points at an HTTPS push service the e2e script runs on
loopback (web/e2e/pushService.mjs). Its certificate is made here; the homeserver trusts it through
SSL_CERT_FILE and may push to 127.0.0.1 through `ip_range_whitelist`, as an operator would allow a
private push service.

The screenshots and `timings.json` (gzipped size of the first load's JavaScript, navigation to
first rendered timeline online and offline) go to build/e2e/. Without Chromium or Node.js the test
is skipped, unless CI=true, where that is a failure. web/dist is built when it is missing or older
than the client's sources.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.federation.federation_testing import write_self_signed_cert
from tests.interop.server_process import HomeserverProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
WEB = REPO_ROOT / "web"
OUT = REPO_ROOT / "build" / "e2e"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
E2E_TIMEOUT_S = 240
BUILD_TIMEOUT_S = 300
_OUTPUT_TAIL_CHARS = 8000


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required with CI=true)")
    pytest.skip(reason)


def _newest_source_mtime() -> float:
    paths = [WEB / "index.html", WEB / "vite.config.ts", WEB / "package-lock.json"]
    for folder in ("src", "sw", "public"):
        paths.extend(p for p in (WEB / folder).rglob("*") if p.is_file())
    return max(p.stat().st_mtime for p in paths if p.exists())


def _npm(
    *args: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", *args],
        cwd=WEB,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _tail(text: str) -> str:
    return text if len(text) <= _OUTPUT_TAIL_CHARS else "...\n" + text[-_OUTPUT_TAIL_CHARS:]


def _prepare_web() -> None:
    """node_modules with playwright-core, and a web/dist no older than the sources."""
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        done = _npm("ci", timeout=BUILD_TIMEOUT_S)
        assert done.returncode == 0, f"npm ci failed\n{_tail(done.stdout + done.stderr)}"
    index = WEB / "dist" / "index.html"
    if not index.exists() or index.stat().st_mtime < _newest_source_mtime():
        done = _npm("run", "build", timeout=BUILD_TIMEOUT_S)
        assert done.returncode == 0, f"npm run build failed\n{_tail(done.stdout + done.stderr)}"


@pytest.mark.slow
@pytest.mark.timeout(E2E_TIMEOUT_S + 2 * BUILD_TIMEOUT_S)
def test_web_client_end_to_end(tmp_path: Path) -> None:
    if shutil.which("npm") is None or shutil.which("node") is None:
        _unavailable("Node.js and npm are needed for the web client's end-to-end test")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(
            f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
        )
    _prepare_web()

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    push_tls = tmp_path / "push-service"
    push_tls.mkdir()
    push_cert, push_key = write_self_signed_cert(str(push_tls), verifiable=True)
    with HomeserverProcess(
        tmp_path / "hs",
        config_overrides={"ip_range_whitelist": ["127.0.0.1"]},
        env={"SSL_CERT_FILE": push_cert},
    ) as server:
        env = {
            **os.environ,
            "HOMESERVER_URL": server.base_url,
            "E2E_OUT": str(OUT),
            "CHROMIUM_PATH": CHROMIUM,
            "E2E_PUSH_CERT": push_cert,
            "E2E_PUSH_KEY": push_key,
        }
        try:
            done = _npm("run", "e2e", timeout=E2E_TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired as expired:
            output = "".join(
                part.decode(errors="replace") if isinstance(part, bytes) else part
                for part in (expired.stdout, expired.stderr)
                if part
            )
            pytest.fail(
                f"npm run e2e did not finish within {E2E_TIMEOUT_S} s\n{_tail(output)}\n"
                f"{server.log_tail()}"
            )
        print(done.stdout)
        assert done.returncode == 0, (
            f"npm run e2e failed (status {done.returncode}); screenshots in {OUT}\n"
            f"{_tail(done.stdout + done.stderr)}\n{server.log_tail()}"
        )

    timings = json.loads((OUT / "timings.json").read_text())
    print(json.dumps(timings, indent=2))
    assert timings["ok"] is True
    for name in ("desktop.png", "phone.png", "phone-drawer.png"):
        assert (OUT / name).stat().st_size > 0, f"{name} was not written"
