"""generate_config writes a starter config that loads, with a signing key Synapse could read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import signedjson.key
import yaml
from signedjson.sign import sign_json, verify_signed_json

from homeserver.config import ConfigError, generate_config, load_config


def test_generated_localhost_config_loads(tmp_path: Path) -> None:
    path = str(tmp_path / "homeserver.yaml")
    generate_config("localhost", path)
    config = load_config(path)
    assert config.server_name == "localhost"
    assert config.public_baseurl == "http://localhost:8008/"
    (listener,) = config.listeners
    assert listener.port == 8008
    assert listener.bind_addresses == ("127.0.0.1",)
    assert listener.resource_names == {"client", "federation", "media"}
    assert not listener.tls and not listener.x_forwarded
    assert config.database.engine == "sqlite"
    assert config.database.sqlite_path == str(tmp_path / "homeserver.db")
    assert config.signing_key_path == str(tmp_path / "localhost.signing.key")
    assert config.media_store_path == str(tmp_path / "media_store")
    assert config.enable_registration is False
    assert config.enable_registration_without_verification is False
    assert config.registration_shared_secret and len(config.registration_shared_secret) >= 40
    assert config.log_level == "INFO"


def test_generated_file_points_at_the_sample_and_explains_registration(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    generate_config("localhost", str(path))
    text = path.read_text()
    assert "sample_config.yaml" in text
    assert "enable_registration" in text and "true" in text.split("Registration is closed")[1]


def test_signing_key_is_readable_by_signedjson(tmp_path: Path) -> None:
    path = str(tmp_path / "homeserver.yaml")
    generate_config("example.org", path)
    config = load_config(path)
    with open(config.signing_key_path) as f:
        (key,) = signedjson.key.read_signing_keys(f)
    assert key.alg == "ed25519"
    assert key.version.startswith("a_") and len(key.version) == 6
    assert key.version[2:].isalnum()
    signed = sign_json({"hello": "world"}, "example.org", key)
    verify_signed_json(signed, "example.org", signedjson.key.get_verify_key(key))


def test_secrets_are_private_and_random(tmp_path: Path) -> None:
    generate_config("localhost", str(tmp_path / "a" / "homeserver.yaml"))
    generate_config("localhost", str(tmp_path / "b" / "homeserver.yaml"))
    a = load_config(str(tmp_path / "a" / "homeserver.yaml"))
    b = load_config(str(tmp_path / "b" / "homeserver.yaml"))
    assert a.registration_shared_secret != b.registration_shared_secret
    for path in (a.config_path, a.signing_key_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text("precious: true\n")
    with pytest.raises(ConfigError) as info:
        generate_config("localhost", str(path))
    assert str(path) in info.value.message
    assert path.read_text() == "precious: true\n"
    assert not (tmp_path / "localhost.signing.key").exists()


def test_refuses_to_overwrite_its_own_output(tmp_path: Path) -> None:
    path = str(tmp_path / "homeserver.yaml")
    generate_config("localhost", path)
    with pytest.raises(ConfigError):
        generate_config("localhost", path)


def test_existing_signing_key_is_kept(tmp_path: Path) -> None:
    key_path = tmp_path / "localhost.signing.key"
    key = signedjson.key.generate_signing_key("old1")
    with open(key_path, "w") as f:
        signedjson.key.write_signing_keys(f, [key])
    before = key_path.read_text()
    generate_config("localhost", str(tmp_path / "homeserver.yaml"))
    assert key_path.read_text() == before


def test_open_registration_and_data_dir(tmp_path: Path) -> None:
    path = str(tmp_path / "etc" / "homeserver.yaml")
    data_dir = tmp_path / "var"
    generate_config("matrix.example.com", path, str(data_dir), open_registration=True, port=8080)
    config = load_config(path)
    assert config.enable_registration and config.enable_registration_without_verification
    assert config.public_baseurl == "https://matrix.example.com/"
    assert config.listeners[0].port == 8080
    assert config.listeners[0].bind_addresses == ("::", "0.0.0.0")
    assert config.database.sqlite_path == str(data_dir / "homeserver.db")
    assert config.signing_key_path == str(data_dir / "matrix.example.com.signing.key")
    assert config.media_store_path == str(data_dir / "media_store")
    assert os.path.isfile(config.signing_key_path)


def test_localhost_with_custom_port_and_bind_addresses(tmp_path: Path) -> None:
    path = str(tmp_path / "homeserver.yaml")
    generate_config("localhost", path, port=9008, bind_addresses=["127.0.0.1", "::1"])
    config = load_config(path)
    assert config.public_baseurl == "http://localhost:9008/"
    assert config.listeners[0].bind_addresses == ("127.0.0.1", "::1")


def test_paths_with_odd_characters_round_trip(tmp_path: Path) -> None:
    data_dir = tmp_path / "data: 'dir' #1"
    path = str(tmp_path / "homeserver.yaml")
    generate_config("localhost", path, str(data_dir))
    assert load_config(path).database.sqlite_path == str(data_dir / "homeserver.db")
    # The output is plain YAML a human can edit: no tags, no anchors.
    assert "!!" not in Path(path).read_text()
    assert isinstance(yaml.safe_load(Path(path).read_text()), dict)


@pytest.mark.parametrize(
    ("server_name", "port"), [("bad name", 8008), ("localhost", 0), ("localhost", 70000)]
)
def test_rejects_bad_arguments(tmp_path: Path, server_name: str, port: int) -> None:
    with pytest.raises(ConfigError):
        generate_config(server_name, str(tmp_path / "homeserver.yaml"), port=port)
    assert not (tmp_path / "homeserver.yaml").exists()
