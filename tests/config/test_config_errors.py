"""Every way a config can be wrong produces a ConfigError naming the file and the key."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from homeserver.config import ConfigError, load_config

LISTENERS = """\
listeners:
  - port: 8008
    resources:
      - names: [client, federation]
"""
MINIMAL = "server_name: example.com\n" + LISTENERS


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "homeserver.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def error_for(tmp_path: Path, text: str) -> tuple[str, str]:
    """The error message for loading `text`, and the file path it should start with."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == info.value.message
    return info.value.message, path


def assert_names(tmp_path: Path, text: str, key: str, *fragments: str) -> str:
    message, path = error_for(tmp_path, text)
    assert message.startswith(f"{path}: {key}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize(
    ("port", "shown"), [("abc", "'abc'"), ("0", "0"), ("70000", "70000"), ("true", "true")]
)
def test_bad_port(tmp_path: Path, port: str, shown: str) -> None:
    text = MINIMAL.replace("port: 8008", f"port: {port}")
    assert_names(
        tmp_path, text, "listeners[0].port", f"expected an integer between 1 and 65535, got {shown}"
    )


def test_bad_port_message_matches_documented_form(tmp_path: Path) -> None:
    message, path = error_for(tmp_path, MINIMAL.replace("port: 8008", "port: abc"))
    assert (
        message == f"{path}: listeners[0].port: expected an integer between 1 and 65535, got 'abc'"
    )


def test_missing_port(tmp_path: Path) -> None:
    text = "server_name: example.com\nlisteners: [{resources: [{names: [client]}]}]\n"
    assert_names(tmp_path, text, "listeners[0].port", "required")


def test_missing_server_name(tmp_path: Path) -> None:
    assert_names(tmp_path, LISTENERS, "server_name", "required")


@pytest.mark.parametrize(
    "name", ["exa mple.com", "example.com:", "example.com:99999", "[::1", "[zz]"]
)
def test_invalid_server_name(tmp_path: Path, name: str) -> None:
    text = MINIMAL.replace("server_name: example.com", f"server_name: '{name}'")
    assert_names(tmp_path, text, "server_name", "not a valid Matrix server name")


def test_server_name_must_be_a_string(tmp_path: Path) -> None:
    text = MINIMAL.replace("server_name: example.com", "server_name: [a]")
    assert_names(tmp_path, text, "server_name", "expected a string")


@pytest.mark.parametrize(
    "listeners", ["", "listeners: []\n", "listeners: [{port: 9000, type: metrics}]\n"]
)
def test_listeners_required(tmp_path: Path, listeners: str) -> None:
    message = assert_names(tmp_path, "server_name: example.com\n" + listeners, "listeners")
    assert "http" in message


def test_missing_listeners_explains_why(tmp_path: Path) -> None:
    assert_names(tmp_path, "server_name: example.com\n", "listeners", "no workers")


def test_unknown_database_name(tmp_path: Path) -> None:
    text = MINIMAL + "database: {name: mysql, args: {}}\n"
    assert_names(tmp_path, text, "database.name", "'mysql'", "sqlite3", "psycopg")


def test_sqlite_needs_database_path(tmp_path: Path) -> None:
    text = MINIMAL + "database: {name: sqlite3, args: {cp_min: 1}}\n"
    assert_names(tmp_path, text, "database.args.database", "required")


def test_database_must_be_a_mapping(tmp_path: Path) -> None:
    assert_names(tmp_path, MINIMAL + "database: sqlite3\n", "database", "expected a mapping")


def test_pool_bounds(tmp_path: Path) -> None:
    text = MINIMAL + "database: {name: psycopg, args: {cp_min: 10, cp_max: 2}}\n"
    assert_names(tmp_path, text, "database.args.cp_min", "cp_max")
    text = MINIMAL + "database: {name: psycopg, args: {cp_max: many}}\n"
    assert_names(tmp_path, text, "database.args.cp_max", "expected an integer")


def test_postgres_uri_cannot_mix_with_parts(tmp_path: Path) -> None:
    text = MINIMAL + "database: {name: psycopg, args: {dsn: 'postgresql://h/db', user: u}}\n"
    assert_names(tmp_path, text, "database.args.dsn", "URI")


def test_postgres_bad_arg_values(tmp_path: Path) -> None:
    text = MINIMAL + "database: {name: psycopg, args: {options: [a, b]}}\n"
    assert_names(tmp_path, text, "database.args.options", "expected a string or a number")
    text = MINIMAL + "database: {name: psycopg, args: {port: 0}}\n"
    assert_names(tmp_path, text, "database.args.port", "between 1 and 65535")
    text = MINIMAL + "database: {name: psycopg, args: {dbname: a, database: b}}\n"
    assert_names(tmp_path, text, "database.args.database", "not both")


def test_bad_default_room_version(tmp_path: Path) -> None:
    text = MINIMAL + "default_room_version: '99'\n"
    assert_names(tmp_path, text, "default_room_version", "'99'", "12")


def test_tls_listener_without_certificate(tmp_path: Path) -> None:
    text = MINIMAL.replace("port: 8008", "port: 8448\n    tls: true")
    assert_names(tmp_path, text, "tls_certificate_path", "listeners[0].tls")


def test_tls_listener_without_key(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("x")
    text = MINIMAL.replace("port: 8008", "port: 8448\n    tls: true")
    text += "tls_certificate_path: cert.pem\n"
    assert_names(tmp_path, text, "tls_private_key_path", "listeners[0].tls")


def test_tls_certificate_file_missing(tmp_path: Path) -> None:
    text = MINIMAL.replace("port: 8008", "port: 8448\n    tls: true")
    text += "tls_certificate_path: nope.pem\ntls_private_key_path: nope.key\n"
    assert_names(tmp_path, text, "tls_certificate_path", "not found")


def test_registration_without_verification_refused(tmp_path: Path) -> None:
    text = MINIMAL + "enable_registration: true\n"
    assert_names(
        tmp_path, text, "enable_registration", "enable_registration_without_verification: true"
    )


@pytest.mark.parametrize(
    ("extra", "key", "fragment"),
    [
        ("bcrypt_rounds: many\n", "bcrypt_rounds", "expected an integer between 4 and 31"),
        ("bcrypt_rounds: 3\n", "bcrypt_rounds", "between 4 and 31"),
        ("enable_registration: 'yes please'\n", "enable_registration", "expected true or false"),
        ("allow_guest_access: 1\n", "allow_guest_access", "expected true or false"),
        ("max_upload_size: 50MB\n", "max_upload_size", "'50MB'"),
        ("max_request_body_size: -1\n", "max_request_body_size", "size"),
        ("refresh_token_lifetime: soon\n", "refresh_token_lifetime", "duration"),
        ("turn_user_lifetime: 1.5h\n", "turn_user_lifetime", "duration"),
        ("pagination_max_limit: 0\n", "pagination_max_limit", "integer >= 1"),
        ("rc_message: {per_second: fast}\n", "rc_message.per_second", "number"),
        ("rc_login: {address: {burst_count: -1}}\n", "rc_login.address.burst_count", "number"),
        ("rc_joins: []\n", "rc_joins", "mapping"),
        ("turn_uris: turn:x\n", "turn_uris", "expected a list"),
        ("turn_uris: [1]\n", "turn_uris[0]", "expected a string"),
        ("ip_range_blacklist: ['10.0.0.0/33']\n", "ip_range_blacklist[0]", "CIDR"),
        ("ip_range_whitelist: [nope]\n", "ip_range_whitelist[0]", "CIDR"),
        ("federation_domain_whitelist: a.com\n", "federation_domain_whitelist", "list"),
        (
            "trusted_key_servers: [{verify_keys: {}}]\n",
            "trusted_key_servers[0].server_name",
            "required",
        ),
        ("trusted_key_servers: [matrix.org]\n", "trusted_key_servers[0]", "mapping"),
        ("room_list_publication_rules: [allow]\n", "room_list_publication_rules[0]", "mapping"),
        ("log_level: LOUD\n", "log_level", "'LOUD'"),
        ("public_baseurl: example.com\n", "public_baseurl", "http"),
        ("presence: {enabled: maybe}\n", "presence.enabled", "true or false"),
        (
            "federation_verify_certificates: 'no'\n",
            "federation_verify_certificates",
            "true or false",
        ),
    ],
)
def test_type_errors_name_the_key(tmp_path: Path, extra: str, key: str, fragment: str) -> None:
    assert_names(tmp_path, MINIMAL + extra, key, fragment)


@pytest.mark.parametrize(
    ("listener", "key", "fragment"),
    [
        ("{port: 8008, bind_addresses: [localhost]}", "listeners[0].bind_addresses[0]", "IP"),
        ("{port: 8008, bind_address: 'nope'}", "listeners[0].bind_address", "IP"),
        ("{port: 8008, tls: maybe}", "listeners[0].tls", "true or false"),
        (
            "{port: 8008, resources: [{compress: true}]}",
            "listeners[0].resources[0].names",
            "required",
        ),
        ("{port: 8008, resources: [{names: client}]}", "listeners[0].resources[0].names", "list"),
        ("{port: 8008, type: 5}", "listeners[0].type", "string"),
        ("'port: 8008'", "listeners[0]", "mapping"),
    ],
)
def test_listener_errors(tmp_path: Path, listener: str, key: str, fragment: str) -> None:
    text = f"server_name: example.com\nlisteners: [{listener}]\n"
    assert_names(tmp_path, text, key, fragment)


def test_both_shared_secret_keys(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("x")
    text = MINIMAL + "registration_shared_secret: a\nregistration_shared_secret_path: s\n"
    assert_names(tmp_path, text, "registration_shared_secret_path", "not both")


def test_unreadable_shared_secret_file(tmp_path: Path) -> None:
    text = MINIMAL + "registration_shared_secret_path: missing.txt\n"
    assert_names(tmp_path, text, "registration_shared_secret_path", "missing.txt")


def test_empty_shared_secret_file(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("\n")
    text = MINIMAL + "registration_shared_secret_path: s\n"
    assert_names(tmp_path, text, "registration_shared_secret_path", "empty")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_file_not_a_mapping(tmp_path: Path, text: str) -> None:
    message, path = error_for(tmp_path, text)
    assert message.startswith(f"{path}: ") and "mapping" in message


def test_empty_file(tmp_path: Path) -> None:
    message, path = error_for(tmp_path, "# nothing here\n")
    assert message.startswith(f"{path}: ") and "empty" in message


def test_invalid_yaml(tmp_path: Path) -> None:
    message, path = error_for(tmp_path, "server_name: [unclosed\n")
    assert message.startswith(f"{path}: not valid YAML at line ")


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message.startswith(f"{path}: cannot read")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    os.chmod(path, 0)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message.startswith(f"{path}: cannot read")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_bytes(b"server_name: \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert info.value.message.startswith(f"{path}: ")


def test_old_signing_keys_are_read_and_checked(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            MINIMAL + 'old_signing_keys:\n  "ed25519:old": {key: "abc", expired_ts: 5}\n'
            "key_refresh_interval: 2h\n",
        )
    )
    assert dict(config.old_signing_keys) == {"ed25519:old": ("abc", 5)}
    assert config.key_refresh_interval_ms == 2 * 3600 * 1000
    assert_names(
        tmp_path, MINIMAL + 'old_signing_keys:\n  "rsa:old": {key: "abc"}\n',
        "old_signing_keys.rsa:old", "ed25519",
    )
