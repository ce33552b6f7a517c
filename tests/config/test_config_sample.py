"""sample_config.yaml loads, documents every key, and shows the real defaults."""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
from pathlib import Path

import pytest

from homeserver.config import KNOWN_TOP_LEVEL_KEYS, load_config, parse_config

SAMPLE = Path(__file__).resolve().parents[2] / "sample_config.yaml"


def test_sample_loads_without_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="homeserver.config")
    config = load_config(str(SAMPLE))
    assert caplog.records == []
    assert config.server_name == "example.com"
    assert config.enable_registration is False


def test_sample_values_are_the_defaults(tmp_path: Path) -> None:
    """Values the sample sets must equal what an otherwise empty config gets."""
    copy = tmp_path / "homeserver.yaml"
    shutil.copy(SAMPLE, copy)
    sample = load_config(str(copy))
    minimal = parse_config(
        {
            "server_name": "example.com",
            "listeners": [{"port": 8008, "resources": [{"names": ["client"]}]}],
        },
        str(copy),
    )
    ignore = {"listeners"}
    for field in dataclasses.fields(sample):
        if field.name not in ignore:
            assert getattr(sample, field.name) == getattr(minimal, field.name), field.name


def test_sample_documents_every_known_key() -> None:
    text = SAMPLE.read_text()
    mentioned = set(re.findall(r"[a-z0-9_]+", text))
    assert KNOWN_TOP_LEVEL_KEYS - mentioned == set()


def test_sample_explains_how_to_open_registration() -> None:
    text = SAMPLE.read_text()
    assert "#   enable_registration: true" in text
    assert "#   enable_registration_without_verification: true" in text
