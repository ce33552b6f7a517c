"""Fixtures shared by the interop suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.server_process import HomeserverProcess


@pytest.fixture
def server(tmp_path) -> Iterator[HomeserverProcess]:
    """The real homeserver in a subprocess, on its own port, data directory and database."""
    with HomeserverProcess(tmp_path / "hs") as process:
        yield process
