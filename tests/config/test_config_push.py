"""The push and webpush sections, and the VAPID key generate-config writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from homeserver.config import ConfigError, generate_config, load_config
from push.delivery import load_vapid_key, vapid_public_key

MINIMAL = """\
server_name: example.com
listeners:
  - port: 8008
    resources:
      - names: [client, federation]
"""


def load(tmp_path: Path, extra: str) -> object:
    path = tmp_path / "homeserver.yaml"
    path.write_text(MINIMAL + extra)
    return load_config(str(path))


def test_defaults_push_on_and_webpush_off(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert (config.push.enabled, config.push.include_content) == (True, True)
    assert (config.push.retry_initial_backoff_ms, config.push.retry_max_backoff_ms) == (
        1000, 600_000)
    assert config.webpush is None


def test_webpush_needs_a_key_and_a_contact_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="webpush.vapid_private_key_path"):
        load(tmp_path, "webpush: {enabled: true}\n")
    with pytest.raises(ConfigError, match="webpush.vapid_contact"):
        load(tmp_path, "webpush: {enabled: true, vapid_private_key_path: k.pem, "
                       "vapid_contact: 'call me'}\n")
    config = load(tmp_path, "webpush: {enabled: true, vapid_private_key_path: k.pem}\n")
    assert config.webpush.vapid_private_key_path == str(tmp_path / "k.pem")
    assert config.webpush.vapid_contact == "mailto:admin@example.com"


def test_backoff_ceiling_below_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="push.retry_max_backoff"):
        load(tmp_path, "push: {retry_initial_backoff: 1m, retry_max_backoff: 1s}\n")


def test_generate_config_writes_a_private_vapid_key_and_enables_webpush(tmp_path: Path) -> None:
    config_path = tmp_path / "homeserver.yaml"
    generate_config("example.com", str(config_path), str(tmp_path / "data"))
    config = load_config(str(config_path))
    assert config.webpush is not None
    key_path = Path(config.webpush.vapid_private_key_path)
    assert key_path.stat().st_mode & 0o777 == 0o600
    public = vapid_public_key(load_vapid_key(str(key_path)))
    assert len(public) == 87  # 65 bytes, unpadded URL-safe base64
