"""Loading valid configs: defaults, Synapse-compatible spellings, paths and parsing helpers."""

from __future__ import annotations

import ipaddress
import logging
import os
import textwrap
from pathlib import Path

import pytest

from homeserver.config import (
    DEFAULT_BIND_ADDRESSES,
    DatabaseConfig,
    HomeServerConfig,
    RateLimitConfig,
    load_config,
    parse_config,
    parse_duration,
    parse_size,
)

MINIMAL = """\
server_name: example.com
listeners:
  - port: 8008
    resources:
      - names: [client, federation]
"""


def write(tmp_path: Path, text: str, name: str = "homeserver.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def load(tmp_path: Path, extra: str = "") -> HomeServerConfig:
    return load_config(write(tmp_path, MINIMAL + textwrap.dedent(extra)))


def test_minimal_config_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.server_name == "example.com"
    assert config.public_baseurl == "https://example.com/"
    assert config.config_dir == str(tmp_path)
    (listener,) = config.listeners
    assert listener.port == 8008
    assert listener.type == "http"
    assert listener.bind_addresses == DEFAULT_BIND_ADDRESSES == ("::", "0.0.0.0")
    assert not listener.tls and not listener.x_forwarded
    assert listener.resource_names == {"client", "federation"}
    assert listener.resources[0].compress is False
    assert config.database == DatabaseConfig(
        engine="sqlite",
        sqlite_path=str(tmp_path / "homeserver.db"),
        postgres_conninfo=None,
        cp_min=5,
        cp_max=10,
    )
    assert config.signing_key_path == str(tmp_path / "example.com.signing.key")
    assert config.media_store_path == str(tmp_path / "media_store")
    assert config.enable_registration is False
    assert config.enable_registration_without_verification is False
    assert config.registration_shared_secret is None
    assert config.max_upload_size == 50 * 1024 * 1024
    assert config.max_request_body_size == 10 * 1024 * 1024
    assert config.pagination_max_limit == 1000
    assert config.bcrypt_rounds == 12
    assert config.default_room_version == "12"
    assert config.refreshable_access_token_lifetime_ms == 5 * 60 * 1000
    assert config.refresh_token_lifetime_ms is None
    assert config.nonrefreshable_access_token_lifetime_ms is None
    assert config.log_config is None and config.log_level == "INFO"
    assert config.presence_enabled is True
    assert config.allow_guest_access is False
    assert config.serve_server_wellknown is False
    assert config.room_list_publication_rules == ()
    assert config.turn_uris == () and config.turn_shared_secret is None
    assert config.turn_user_lifetime_ms == 3600 * 1000
    assert config.url_preview_enabled is False
    assert config.trusted_key_servers == ()
    assert config.federation_domain_whitelist is None
    assert config.federation_verify_certificates is True
    assert ipaddress.ip_network("10.0.0.0/8") in config.ip_range_blacklist
    assert config.ip_range_whitelist == ()
    assert config.allow_public_rooms_over_federation is False


def test_rate_limit_defaults_and_partial_override(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        rc_message: {per_second: 1}
        rc_login:
          failed_attempts: {burst_count: 7}
        """,
    )
    assert config.rc_message == RateLimitConfig(per_second=1.0, burst_count=10.0)
    assert config.rc_registration == RateLimitConfig(0.17, 3.0)
    assert config.rc_login.address == RateLimitConfig(0.003, 5.0)
    assert config.rc_login.account == RateLimitConfig(0.003, 5.0)
    assert config.rc_login.failed_attempts == RateLimitConfig(0.17, 7.0)
    assert config.rc_joins.local == RateLimitConfig(0.1, 10.0)
    assert config.rc_joins.remote == RateLimitConfig(0.01, 10.0)
    assert config.rc_invites.per_room == RateLimitConfig(0.3, 10.0)
    assert config.rc_invites.per_user == RateLimitConfig(0.003, 5.0)
    assert config.rc_invites.per_issuer == RateLimitConfig(0.3, 10.0)
    assert config.rc_room_creation == RateLimitConfig(0.016, 10.0)
    assert isinstance(config.rc_message.burst_count, float)


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path)
    with pytest.raises(AttributeError):
        config.server_name = "other"  # type: ignore[misc]


def test_public_baseurl_gets_trailing_slash(tmp_path: Path) -> None:
    config = load(tmp_path, "public_baseurl: https://matrix.example.com\n")
    assert config.public_baseurl == "https://matrix.example.com/"


@pytest.mark.parametrize(
    "name", ["example.com", "localhost:8448", "1.2.3.4", "[::1]", "[2001:db8::1]:8448", "a-b.c"]
)
def test_valid_server_names(tmp_path: Path, name: str) -> None:
    text = MINIMAL.replace("server_name: example.com", f"server_name: '{name}'")
    assert load_config(write(tmp_path, text)).server_name == name


def test_listener_options(tmp_path: Path) -> None:
    text = """\
    server_name: example.com
    listeners:
      - port: 8448
        bind_address: 127.0.0.1
        bind_addresses: ['::1']
        x_forwarded: true
        resources:
          - names: [client]
            compress: true
          - names: [federation, keys]
      - port: 9000
        type: metrics
    """
    config = load_config(write(tmp_path, text))
    (listener,) = config.listeners
    assert listener.bind_addresses == ("::1", "127.0.0.1")
    assert listener.x_forwarded is True
    assert listener.resources[0].compress is True
    assert listener.resources[1].compress is False
    assert listener.resource_names == {"client", "federation", "keys"}


def test_tls_listener_with_cert(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("cert")
    (tmp_path / "key.pem").write_text("key")
    text = """\
    server_name: example.com
    tls_certificate_path: cert.pem
    tls_private_key_path: key.pem
    listeners: [{port: 8448, tls: true, resources: [{names: [federation]}]}]
    """
    config = load_config(write(tmp_path, text))
    assert config.listeners[0].tls is True
    assert config.tls_certificate_path == str(tmp_path / "cert.pem")
    assert config.tls_private_key_path == str(tmp_path / "key.pem")


def test_relative_paths_resolve_against_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "secret.txt").write_text("  s3cret\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    extra = """\
    database: {name: sqlite3, args: {database: data/hs.db}}
    signing_key_path: keys/signing.key
    media_store_path: ../media
    log_config: log.yaml
    pid_file: hs.pid
    registration_shared_secret_path: secret.txt
    """
    path = write(conf_dir, MINIMAL + textwrap.dedent(extra))
    # A relative config path: the config dir is still the file's own directory.
    config = load_config(os.path.relpath(path))
    assert config.config_dir == str(conf_dir)
    assert config.database.sqlite_path == str(conf_dir / "data" / "hs.db")
    assert config.signing_key_path == str(conf_dir / "keys" / "signing.key")
    assert config.media_store_path == str(tmp_path / "media")
    assert config.log_config == str(conf_dir / "log.yaml")
    assert config.pid_file == str(conf_dir / "hs.pid")
    assert config.registration_shared_secret == "s3cret"
    assert config.registration_shared_secret_path == str(conf_dir / "secret.txt")


def test_absolute_paths_kept_and_memory_sqlite(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        database: {name: sqlite3, args: {database: ':memory:'}}
        media_store_path: /var/lib/hs/media
        """,
    )
    assert config.database.sqlite_path == ":memory:"
    assert config.media_store_path == "/var/lib/hs/media"


def test_psycopg2_is_a_synonym_of_psycopg(tmp_path: Path) -> None:
    db = "database: {name: %s, args: {dbname: synapse, user: syn}}\n"
    a = load(tmp_path, db % "psycopg2").database
    b = load(tmp_path, db % "psycopg").database
    assert a == b
    assert a.engine == "postgres" and a.sqlite_path is None
    assert a.postgres_conninfo == "dbname=synapse user=syn"
    assert (a.cp_min, a.cp_max) == (5, 10)


def test_conninfo_built_from_parts_with_awkward_password(tmp_path: Path) -> None:
    conninfo_to_dict = pytest.importorskip("psycopg.conninfo").conninfo_to_dict
    password = 'p a\'s\\s "w=rd"'
    config = parse_config(
        {
            "server_name": "example.com",
            "listeners": [{"port": 8008, "resources": [{"names": ["client"]}]}],
            "database": {
                "name": "psycopg2",
                "args": {
                    "user": "synapse user",
                    "password": password,
                    "database": "synapse",
                    "host": "/run/postgresql",
                    "port": 5433,
                    "sslmode": "require",
                    "keepalives": True,
                    "cp_min": 2,
                    "cp_max": 4,
                },
            },
        },
        str(tmp_path / "homeserver.yaml"),
    )
    db = config.database
    assert (db.cp_min, db.cp_max) == (2, 4)
    assert conninfo_to_dict(db.postgres_conninfo) == {
        "user": "synapse user",
        "password": password,
        "dbname": "synapse",
        "host": "/run/postgresql",
        "port": "5433",
        "sslmode": "require",
        "keepalives": "1",
    }


def test_conninfo_empty_password_is_quoted() -> None:
    from homeserver.config import build_conninfo

    assert build_conninfo({"password": "", "user": "a"}) == "password='' user=a"


@pytest.mark.parametrize("key", ["dsn", "conninfo"])
def test_dsn_passed_through(tmp_path: Path, key: str) -> None:
    uri = "postgresql://syn:pw@db.example.com:5432/synapse?sslmode=require"
    config = load(tmp_path, f"database: {{name: psycopg, args: {{{key}: '{uri}', cp_max: 20}}}}\n")
    assert config.database.postgres_conninfo == uri
    assert config.database.cp_max == 20


def test_keyword_dsn_combined_with_parts(tmp_path: Path) -> None:
    config = load(
        tmp_path, "database: {name: psycopg, args: {dsn: 'host=db dbname=x', password: pw}}\n"
    )
    assert config.database.postgres_conninfo == "host=db dbname=x password=pw"


def test_postgres_with_no_args_uses_libpq_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "database: {name: psycopg}\n")
    assert config.database.postgres_conninfo == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1234, 1234),
        ("1234", 1234),
        ("10K", 10 * 1024),
        ("50M", 50 * 1024**2),
        ("2G", 2 * 1024**3),
        ("5m", 5 * 1024**2),
    ],
)
def test_parse_size(value: int | str, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["", "M", "1.5M", "10MB", "-1", -1, True, None, [1]])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_size(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1500, 1500),
        ("1500", 1500),
        ("500ms", 500),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("2d", 2 * 86_400_000),
        ("1w", 7 * 86_400_000),
        ("1y", 365 * 86_400_000),
    ],
)
def test_parse_duration(value: int | str, expected: int) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["", "h", "1.5h", "5 minutes", "-5m", -1, False, 1.5])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)  # type: ignore[arg-type]


def test_sizes_and_durations_in_config(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        max_upload_size: 100M
        max_request_body_size: 65536
        refreshable_access_token_lifetime: 10m
        refresh_token_lifetime: 1w
        nonrefreshable_access_token_lifetime: 86400000
        turn_user_lifetime: 2h
        """,
    )
    assert config.max_upload_size == 100 * 1024**2
    assert config.max_request_body_size == 65536
    assert config.refreshable_access_token_lifetime_ms == 600_000
    assert config.refresh_token_lifetime_ms == 7 * 86_400_000
    assert config.nonrefreshable_access_token_lifetime_ms == 86_400_000
    assert config.turn_user_lifetime_ms == 7_200_000


def test_misc_keys(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        default_room_version: 10
        use_presence: false
        log_level: debug
        allow_guest_access: true
        serve_server_wellknown: yes
        room_list_publication_rules:
          - {user_id: "*", action: allow}
        turn_uris: ["turn:turn.example.com:3478?transport=udp"]
        turn_shared_secret: s
        federation_domain_whitelist: [a.example.com, b.example.com]
        ip_range_blacklist: ['10.0.0.0/8', '127.0.0.1']
        ip_range_whitelist: ['10.1.0.0/16']
        trusted_key_servers:
          - server_name: matrix.org
            verify_keys: {"ed25519:auto": "Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw"}
          - server_name: notary.example.com
        """,
    )
    assert config.default_room_version == "10"
    assert config.presence_enabled is False
    assert config.log_level == "DEBUG"
    assert config.allow_guest_access is True
    assert config.serve_server_wellknown is True
    assert config.room_list_publication_rules == ({"user_id": "*", "action": "allow"},)
    assert config.turn_uris == ("turn:turn.example.com:3478?transport=udp",)
    assert config.turn_shared_secret == "s"
    assert config.federation_domain_whitelist == {"a.example.com", "b.example.com"}
    assert config.ip_range_blacklist == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
    )
    assert config.ip_range_whitelist == (ipaddress.ip_network("10.1.0.0/16"),)
    first, second = config.trusted_key_servers
    assert first.server_name == "matrix.org"
    assert dict(first.verify_keys) == {
        "ed25519:auto": "Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw"
    }
    assert second.verify_keys == {} and second.accept_keys_insecurely is False


def test_presence_section_wins_over_use_presence(tmp_path: Path) -> None:
    config = load(tmp_path, "use_presence: false\npresence: {enabled: true}\n")
    assert config.presence_enabled is True
    assert load(tmp_path, "presence: {enabled: false}\n").presence_enabled is False


def test_open_registration_with_explicit_opt_in(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "enable_registration: true\nenable_registration_without_verification: true\n",
    )
    assert config.enable_registration and config.enable_registration_without_verification


def test_null_values_take_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path, "bcrypt_rounds:\nmax_upload_size: null\nregistration_shared_secret: ''\n"
    )
    assert config.bcrypt_rounds == 12
    assert config.max_upload_size == 50 * 1024**2
    # Synapse treats an empty secret as unset.
    assert config.registration_shared_secret is None


def test_unknown_keys_warn_but_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="homeserver.config")
    path = write(
        tmp_path,
        MINIMAL
        + textwrap.dedent(
            """\
            sso: {client_whitelist: []}
            rc_message: {per_second: 1, burst: 3}
            database: {name: sqlite3, args: {database: x.db, journal: wal}}
            """
        ),
    )
    config = load_config(path)
    assert config.rc_message.per_second == 1.0
    messages = [r.getMessage() for r in caplog.records]
    assert f"{path}: unknown key 'sso' ignored" in messages
    assert f"{path}: unknown key 'rc_message.burst' ignored" in messages
    assert f"{path}: unknown key 'database.args.journal' ignored" in messages


def test_unsupported_listener_type_and_resource_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="homeserver.config")
    text = """\
    server_name: example.com
    listeners:
      - {port: 9000, type: manhole}
      - {port: 8008, resources: [{names: [client, webclient]}]}
    """
    config = load_config(write(tmp_path, text))
    assert [listener.port for listener in config.listeners] == [8008]
    assert config.listeners[0].resource_names == {"client"}
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "listeners[0]" in text and "'manhole'" in text
    assert "listeners[1].resources[0].names" in text and "'webclient'" in text


SYNAPSE_GENERATED = """\
# Configuration file for Synapse.
#
# This is a YAML file: see [1] for a quick introduction. Note in particular
# that *indentation is important*: all the elements of a list or dictionary
# should have the same indentation.
#
# [1] https://docs.ansible.com/ansible/latest/reference_appendices/YAMLSyntax.html
#
# For more information on how to configure Synapse, including a complete accounting of
# each option, go to docs/usage/configuration/config_documentation.md or
# https://element-hq.github.io/synapse/latest/usage/configuration/config_documentation.html
server_name: "my.domain.name"
pid_file: /data/homeserver.pid
listeners:
  - port: 8008
    tls: false
    type: http
    x_forwarded: true
    resources:
      - names: [client, federation]
        compress: false
database:
  name: sqlite3
  args:
    database: /data/homeserver.db
log_config: "/data/my.domain.name.log.config"
media_store_path: /data/media_store
registration_shared_secret: "kJ~0Vd,RcnkO9=7tmjXOnRTY4*MYRw=Gh-aA#0OQOcv1N-3w4X"
report_stats: false
macaroon_secret_key: "Ow^R5p=pAp4hDoPF8-RgK,yZ~Uu3yUG7iwDn#jsXUJqq7Gr5NK"
form_secret: "K&UQ&uqx8dgNZ2ko1Z=^TF~Z1ASgI,#H@Z1Pkzm.0P@~Mjs0P."
signing_key_path: "/data/my.domain.name.signing.key"
trusted_key_servers:
  - server_name: "matrix.org"


# vim:ft=yaml
"""


def test_synapse_generated_config_loads_without_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="homeserver.config")
    config = load_config(write(tmp_path, SYNAPSE_GENERATED))
    assert caplog.records == []
    assert config.server_name == "my.domain.name"
    assert config.pid_file == "/data/homeserver.pid"
    assert config.listeners[0].x_forwarded is True
    assert config.listeners[0].resource_names == {"client", "federation"}
    assert config.database.sqlite_path == "/data/homeserver.db"
    assert config.log_config == "/data/my.domain.name.log.config"
    assert config.media_store_path == "/data/media_store"
    assert config.registration_shared_secret == (
        "kJ~0Vd,RcnkO9=7tmjXOnRTY4*MYRw=Gh-aA#0OQOcv1N-3w4X"
    )
    assert config.report_stats is False
    assert config.macaroon_secret_key and config.form_secret
    assert config.signing_key_path == "/data/my.domain.name.signing.key"
    assert [s.server_name for s in config.trusted_key_servers] == ["matrix.org"]


def test_synapse_postgres_config_loads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="homeserver.config")
    text = """\
    server_name: example.com
    listeners:
      - port: 8008
        tls: false
        type: http
        x_forwarded: true
        bind_addresses: ['::1', '127.0.0.1']
        resources:
          - names: [client, federation]
            compress: false
    database:
      name: psycopg2
      txn_limit: 10000
      allow_unsafe_locale: true
      args:
        user: synapse_user
        password: secretpassword
        database: synapse
        host: localhost
        port: 5432
        cp_min: 5
        cp_max: 10
    suppress_key_server_warning: true
    enable_registration: false
    enable_registration_without_verification: false
    """
    config = load_config(write(tmp_path, text))
    assert caplog.records == []
    assert config.database.postgres_conninfo == (
        "user=synapse_user password=secretpassword dbname=synapse host=localhost port=5432"
    )
    assert config.listeners[0].bind_addresses == ("::1", "127.0.0.1")
    assert config.suppress_key_server_warning is True
