"""The homeserver's configuration file: loading, validation and generation.

The file is YAML with Synapse's key names, so a Synapse `homeserver.yaml` loads unchanged where
the meaning is the same. Everything is validated up front: a bad value stops start-up with a
message naming the file and the dotted key path, instead of failing later in some request.
Keys we do not know are logged and ignored so that migrated configs keep working.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import re
import secrets
import string
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from types import MappingProxyType
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import signedjson.key
import yaml

from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.identifiers import host_of

logger = logging.getLogger(__name__)

T = TypeVar("T")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Synapse's default: every interface, both address families.
DEFAULT_BIND_ADDRESSES: tuple[str, ...] = ("::", "0.0.0.0")

KNOWN_RESOURCE_NAMES = frozenset(
    {
        "client",
        "federation",
        "keys",
        "media",
        "static",
        "health",
        "openid",
        "consent",
        "replication",
        "metrics",
    }
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Addresses outbound requests must never reach unless whitelisted: loopback, private,
# link-local, carrier-grade NAT, documentation, benchmarking and multicast ranges (the IANA
# special-purpose registries). Protects against a remote server pointing us at our own LAN.
DEFAULT_IP_RANGE_BLACKLIST: tuple[str, ...] = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
    "2001:db8::/32",
    "ff00::/8",
    "fec0::/10",
)

_SECOND_MS = 1000
_DURATION_UNITS_MS = {
    "ms": 1,
    "s": _SECOND_MS,
    "m": 60 * _SECOND_MS,
    "h": 3600 * _SECOND_MS,
    "d": 86400 * _SECOND_MS,
    "w": 7 * 86400 * _SECOND_MS,
    "y": 365 * 86400 * _SECOND_MS,
}
_DURATION_RE = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w|y)?\s*$")
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMG]?)\s*$", re.IGNORECASE)
# The server-name grammar's dns-name: letters, digits, dots and hyphens, at most 255.
_DNS_NAME_RE = re.compile(r"^[A-Za-z0-9.-]{1,255}$")
_LIBPQ_KEYWORD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """The configuration is unusable; the message says which file and key, and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------------------------
# The typed configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimitConfig:
    """A token bucket: `burst_count` actions at once, refilled at `per_second`."""

    per_second: float
    burst_count: float


@dataclass(frozen=True)
class LoginRateLimitConfig:
    address: RateLimitConfig
    account: RateLimitConfig
    failed_attempts: RateLimitConfig


@dataclass(frozen=True)
class JoinRateLimitConfig:
    local: RateLimitConfig
    remote: RateLimitConfig


@dataclass(frozen=True)
class InviteRateLimitConfig:
    per_room: RateLimitConfig
    per_user: RateLimitConfig
    per_issuer: RateLimitConfig


@dataclass(frozen=True)
class ResourceConfig:
    names: frozenset[str]
    compress: bool


@dataclass(frozen=True)
class ListenerConfig:
    port: int
    bind_addresses: tuple[str, ...]
    type: str
    tls: bool
    x_forwarded: bool
    resources: tuple[ResourceConfig, ...]

    @property
    def resource_names(self) -> frozenset[str]:
        """Every resource this listener serves, whichever resource block named it."""
        return frozenset().union(*(r.names for r in self.resources))


@dataclass(frozen=True)
class DatabaseConfig:
    engine: Literal["sqlite", "postgres"]
    # Absolute path, or ":memory:".
    sqlite_path: str | None
    # A libpq connection string ("host=... dbname=..." or a postgresql:// URI).
    postgres_conninfo: str | None
    cp_min: int
    cp_max: int


@dataclass(frozen=True)
class TrustedKeyServer:
    server_name: str
    # key ID -> unpadded base64 ed25519 public key; empty means "fetch and trust on first use".
    verify_keys: Mapping[str, str]
    accept_keys_insecurely: bool


@dataclass(frozen=True)
class ThumbnailSize:
    width: int
    height: int
    method: Literal["crop", "scale"]


@dataclass(frozen=True)
class MediaConfig:
    """The media repository's keys (top level in the file, as in Synapse)."""

    enable_authenticated_media: bool
    thumbnail_sizes: tuple[ThumbnailSize, ...]
    max_image_pixels: int
    max_pending_media_uploads: int
    unused_expiration_time_ms: int
    rc_media_create: RateLimitConfig
    max_spider_size: int
    url_preview_ip_range_blacklist: tuple[IPNetwork, ...]
    url_preview_ip_range_whitelist: tuple[IPNetwork, ...]


@dataclass(frozen=True)
class EmailConfig:
    """Synapse's `email` section: how to send mail (3PID validation and password resets)."""

    smtp_host: str
    smtp_port: int
    smtp_user: str | None
    smtp_pass: str | None
    # STARTTLS must succeed, or nothing is sent.
    require_transport_security: bool
    # Use STARTTLS when the server offers it.
    enable_tls: bool
    # The From header, with %(app)s already replaced by app_name.
    notif_from: str
    app_name: str
    # Templates here override the bundled ones of the same name.
    template_dir: str | None
    validation_token_lifetime_ms: int
    # Email pushers mail a notification still unread this long after it arrived.
    notif_delay_before_mail_ms: int


@dataclass(frozen=True)
class PushConfig:
    """Synapse's `push` section, and how pushers retry a gateway that fails."""

    # False: nothing is pushed (unread counts still work).
    enabled: bool
    # Send message content to push gateways (false: only IDs and counts leave the server).
    include_content: bool
    retry_initial_backoff_ms: int
    retry_max_backoff_ms: int


@dataclass(frozen=True)
class WebPushConfig:
    """Web Push straight from the homeserver (MSC4174): our VAPID identity (RFC 8292)."""

    vapid_private_key_path: str
    # The `sub` claim: how a push service can reach the operator (mailto: or https: URL).
    vapid_contact: str


@dataclass(frozen=True)
class HomeServerConfig:
    config_path: str
    config_dir: str

    server_name: str
    public_baseurl: str

    listeners: tuple[ListenerConfig, ...]
    tls_certificate_path: str | None
    tls_private_key_path: str | None

    database: DatabaseConfig

    signing_key_path: str
    media_store_path: str
    max_upload_size: int
    max_request_body_size: int
    url_preview_enabled: bool
    media: MediaConfig

    enable_registration: bool
    enable_registration_without_verification: bool
    # Third-party ID media every new account must have validated ("email" is the only one).
    registrations_require_3pid: tuple[str, ...]
    registration_shared_secret: str | None
    registration_shared_secret_path: str | None
    bcrypt_rounds: int
    allow_guest_access: bool
    refreshable_access_token_lifetime_ms: int
    refresh_token_lifetime_ms: int | None
    nonrefreshable_access_token_lifetime_ms: int | None

    rc_message: RateLimitConfig
    rc_registration: RateLimitConfig
    rc_login: LoginRateLimitConfig
    rc_joins: JoinRateLimitConfig
    rc_invites: InviteRateLimitConfig
    rc_room_creation: RateLimitConfig
    # Validation mails (requestToken), per address and per client IP.
    rc_3pid_validation: RateLimitConfig

    default_room_version: str
    pagination_max_limit: int
    room_list_publication_rules: tuple[Mapping[str, Any], ...]
    # True when room_list_publication_rules is absent: then room creators and room admins may
    # publish (homeserver/directory/publication.py), where an empty list means nobody.
    room_list_publication_default: bool
    allow_public_rooms_without_auth: bool
    allow_public_rooms_over_federation: bool

    log_config: str | None
    log_level: str

    serve_server_wellknown: bool
    # How long other servers may cache our keys: the valid_until_ts we publish is now + this.
    key_refresh_interval_ms: int
    # Keys we signed with before (key ID -> (unpadded base64 public key, expired_ts)), published
    # so that events signed with them still verify.
    old_signing_keys: Mapping[str, tuple[str, int]]
    suppress_key_server_warning: bool
    trusted_key_servers: tuple[TrustedKeyServer, ...]
    federation_domain_whitelist: frozenset[str] | None
    federation_verify_certificates: bool
    ip_range_blacklist: tuple[IPNetwork, ...]
    ip_range_whitelist: tuple[IPNetwork, ...]

    presence_enabled: bool

    turn_uris: tuple[str, ...]
    turn_shared_secret: str | None
    turn_username: str | None
    turn_password: str | None
    turn_user_lifetime_ms: int
    turn_allow_guests: bool

    # None when the `email` section is absent: then nothing is ever mailed and the 3PID
    # endpoints say the medium is not supported.
    email: EmailConfig | None
    push: PushConfig
    # None unless the `webpush` section enables it: then no `m.webpush` capability.
    webpush: WebPushConfig | None
    # Answer requestToken with a made-up sid instead of M_THREEPID_IN_USE / _NOT_FOUND, so it
    # cannot be used to find out which addresses have accounts.
    request_token_inhibit_3pid_errors: bool

    # Synapse keys we accept and keep for later use.
    report_stats: bool | None
    macaroon_secret_key: str | None
    form_secret: str | None
    pid_file: str | None


# --------------------------------------------------------------------------------------------
# Reading values with error messages that name the key
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """What every error and warning needs: the file's name and where relative paths start."""

    source: str
    config_dir: str

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {message}")

    def warn(self, key: str, message: str) -> None:
        logger.warning("%s: %s: %s", self.source, key, message)

    def resolve_path(self, path: str) -> str:
        return os.path.normpath(os.path.join(self.config_dir, path))


def _describe(value: Any) -> str:
    """Shows a bad value in an error without dumping a whole list or mapping."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_bool(ctx: _Context, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ctx.error(key, f"expected true or false, got {_describe(value)}")
    return value


def _int_range_text(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"an integer between {lo} and {hi}"
    if lo is not None:
        return f"an integer >= {lo}"
    return "an integer"


def _check_int(
    ctx: _Context, key: str, value: Any, lo: int | None = None, hi: int | None = None
) -> int:
    # bool is an int subclass in Python; `port: true` is a mistake, not port 1.
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ctx.error(key, f"expected {_int_range_text(lo, hi)}, got {_describe(value)}")
    return value


def _check_number(ctx: _Context, key: str, value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise ctx.error(key, f"expected a non-negative number, got {_describe(value)}")
    return float(value)


def _check_str(ctx: _Context, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ctx.error(key, f"expected a string, got {_describe(value)}")
    return value


def _check_list(ctx: _Context, key: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ctx.error(key, f"expected a list, got {_describe(value)}")
    return value


def _check_mapping(ctx: _Context, key: str, value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise ctx.error(key, f"expected a mapping of keys to values, got {_describe(value)}")
    return value


def parse_size(value: int | str) -> int:
    """Bytes from an int or a string with an optional K/M/G suffix (powers of 1024), e.g. "50M".

    Raises ValueError on anything else.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(value)
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]


def parse_duration(value: int | str) -> int:
    """Milliseconds from an int (already ms) or a string like "500ms", "30s", "5m", "1h", "2d",
    "1w", "1y" (a year is 365 days); a string without a suffix is milliseconds, as in Synapse.

    Raises ValueError on anything else.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(value)
    return int(match.group(1)) * _DURATION_UNITS_MS[match.group(2) or "ms"]


def _check_size(ctx: _Context, key: str, value: Any) -> int:
    try:
        return parse_size(value)
    except (ValueError, TypeError):
        raise ctx.error(
            key,
            f"expected a size in bytes or a string like '50M' (suffix K, M or G), "
            f"got {_describe(value)}",
        ) from None


def _check_duration(ctx: _Context, key: str, value: Any) -> int:
    try:
        return parse_duration(value)
    except (ValueError, TypeError):
        raise ctx.error(
            key,
            "expected a duration: milliseconds as an integer, or a string like '30s', '5m', "
            f"'1h', '2d', '1w', '1y' or '500ms', got {_describe(value)}",
        ) from None


@dataclass(frozen=True)
class _Section:
    """A mapping from the file and the dotted path that leads to it."""

    ctx: _Context
    data: Mapping[Any, Any]
    prefix: str

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, message: str) -> ConfigError:
        return self.ctx.error(self.key(name), message)

    def value(self, name: str) -> Any:
        # An explicit `key:` with no value (null) means "use the default", as in Synapse.
        return self.data.get(name)

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def require(self, name: str, what: str = "") -> Any:
        value = self.value(name)
        if value is None:
            raise self.error(name, "required key is missing" + (f" ({what})" if what else ""))
        return value

    def get(self, name: str, default: T, check: Callable[[_Context, str, Any], T]) -> T:
        value = self.value(name)
        return default if value is None else check(self.ctx, self.key(name), value)

    def get_bool(self, name: str, default: bool) -> bool:
        return self.get(name, default, _check_bool)

    def get_int(self, name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        return self.get(name, default, lambda c, k, v: _check_int(c, k, v, lo, hi))

    def get_str(self, name: str, default: str | None = None) -> str | None:
        return self.get(name, default, _check_str)

    def get_path(self, name: str) -> str | None:
        """A path from the file, made absolute against the config file's directory."""
        value = self.get_str(name)
        return None if value is None else self.ctx.resolve_path(value)

    def get_str_list(self, name: str, default: Sequence[str] = ()) -> tuple[str, ...]:
        items = self.list_items(name)
        if items is None:
            return tuple(default)
        return tuple(_check_str(self.ctx, key, item) for key, item in items)

    def section(self, name: str) -> _Section:
        """The nested mapping at `name`; an empty one when the key is absent."""
        value = self.get(name, {}, _check_mapping)
        return _Section(self.ctx, value, self.key(name))

    def list_items(self, name: str) -> list[tuple[str, Any]] | None:
        """The list at `name` with each element's dotted path, or None when absent."""
        value = self.value(name)
        if value is None:
            return None
        items = _check_list(self.ctx, self.key(name), value)
        return [(f"{self.key(name)}[{i}]", item) for i, item in enumerate(items)]

    def warn_unknown(self, known: Collection[str]) -> None:
        for name in self.data:
            if name not in known:
                logger.warning("%s: unknown key '%s' ignored", self.ctx.source, self.key(str(name)))


def _item_section(ctx: _Context, key: str, value: Any) -> _Section:
    return _Section(ctx, _check_mapping(ctx, key, value), key)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def server_name_problem(name: str) -> str | None:
    """Why `name` is not a valid Matrix server name (host[:port]), or None if it is."""
    if name.startswith("["):
        end = name.find("]")
        if end < 0:
            return "an IPv6 literal is missing its closing ']'"
        host, rest = name[1:end], name[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"'{host}' is not a valid IPv6 address"
        if "%" in host:
            return "an IPv6 zone ID is not allowed in a server name"
    else:
        host, sep, port = name.partition(":")
        rest = sep + port
        if not _DNS_NAME_RE.match(host):
            return "the host must be a DNS name, an IPv4 address or an [IPv6] literal"
    if rest:
        port_text = rest[1:]
        valid = rest.startswith(":") and port_text.isascii() and port_text.isdigit()
        if not valid or len(port_text) > 5 or not 1 <= int(port_text) <= 65535:
            return f"'{rest}' is not a valid ':port' suffix (1-65535)"
    return None


def _server_name(top: _Section) -> str:
    name = _check_str(top.ctx, "server_name", top.require("server_name", "e.g. example.com"))
    problem = server_name_problem(name)
    if problem is not None:
        raise top.error("server_name", f"{name!r} is not a valid Matrix server name: {problem}")
    return name


def _public_baseurl(top: _Section, server_name: str) -> str:
    url = top.get_str("public_baseurl") or f"https://{server_name}/"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise top.error("public_baseurl", f"expected an http:// or https:// URL, got {url!r}")
    return url if url.endswith("/") else url + "/"


_LISTENER_KEYS = {
    "port",
    "bind_addresses",
    "bind_address",
    "type",
    "tls",
    "x_forwarded",
    "resources",
}


def _ip_address(ctx: _Context, key: str, value: Any) -> str:
    address = _check_str(ctx, key, value)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ctx.error(key, f"expected an IP address, got {address!r}") from None
    return address


def _bind_addresses(listener: _Section) -> tuple[str, ...]:
    items = listener.list_items("bind_addresses") or []
    addresses = [_ip_address(listener.ctx, key, value) for key, value in items]
    # Synapse's legacy single-address key adds to the list rather than replacing it.
    legacy = listener.get("bind_address", None, _ip_address)
    if legacy is not None:
        addresses.append(legacy)
    return tuple(dict.fromkeys(addresses)) or DEFAULT_BIND_ADDRESSES


def _resource(ctx: _Context, key: str, value: Any) -> ResourceConfig:
    res = _item_section(ctx, key, value)
    res.warn_unknown({"names", "compress"})
    names = res.get_str_list("names")
    if res.value("names") is None:
        raise res.error("names", "required key is missing (e.g. names: [client, federation])")
    for unknown in sorted(set(names) - KNOWN_RESOURCE_NAMES):
        ctx.warn(res.key("names"), f"unknown resource name '{unknown}' ignored")
    return ResourceConfig(
        names=frozenset(names) & KNOWN_RESOURCE_NAMES,
        compress=res.get_bool("compress", False),
    )


def _listener(ctx: _Context, key: str, value: Any) -> ListenerConfig | None:
    """One listener, or None for types this server does not run (logged)."""
    listener = _item_section(ctx, key, value)
    kind = listener.get_str("type", "http")
    if kind != "http":
        ctx.warn(key, f"listener type {kind!r} is not supported by this server; listener skipped")
        return None
    listener.warn_unknown(_LISTENER_KEYS)
    port = _check_int(ctx, listener.key("port"), listener.require("port"), 1, 65535)
    resources = tuple(_resource(ctx, k, v) for k, v in listener.list_items("resources") or [])
    if not resources:
        ctx.warn(key, "listener has no resources and will serve nothing")
    return ListenerConfig(
        port=port,
        bind_addresses=_bind_addresses(listener),
        type=kind,
        tls=listener.get_bool("tls", False),
        x_forwarded=listener.get_bool("x_forwarded", False),
        resources=resources,
    )


def _listeners(top: _Section) -> tuple[ListenerConfig, ...]:
    items = top.list_items("listeners")
    if not items:
        raise top.error(
            "listeners",
            "at least one listener is required: this server runs as a single process (it has "
            "no workers), so it must serve HTTP itself, e.g. listeners: [{port: 8008, type: "
            "http, resources: [{names: [client, federation]}]}]",
        )
    parsed = [_listener(top.ctx, key, value) for key, value in items]
    listeners = tuple(listener for listener in parsed if listener is not None)
    if not listeners:
        raise top.error("listeners", "no listener of type 'http'; at least one is required")
    return listeners


def _tls_paths(top: _Section, listeners: Sequence[ListenerConfig]) -> tuple[str | None, str | None]:
    cert = top.get_path("tls_certificate_path")
    key = top.get_path("tls_private_key_path")
    tls_index = next((i for i, listener in enumerate(listeners) if listener.tls), None)
    if tls_index is None:
        return cert, key
    for name, path in (("tls_certificate_path", cert), ("tls_private_key_path", key)):
        if path is None:
            raise top.error(name, f"required because listeners[{tls_index}].tls is true")
        if not os.path.isfile(path):
            raise top.error(name, f"file not found: {path}")
    return cert, key


# -- database ---------------------------------------------------------------------------------


def _conninfo_value(value: str) -> str:
    """Quotes a libpq keyword value when it is empty or holds spaces, quotes or backslashes."""
    if value and not any(c.isspace() or c in "'\\=" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _conninfo_text(ctx: _Context, key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str | int | float):
        return str(value)
    raise ctx.error(key, f"expected a string or a number, got {_describe(value)}")


def build_conninfo(params: Mapping[str, str]) -> str:
    """A libpq "key=value ..." connection string from already-stringified parameters."""
    return " ".join(f"{k}={_conninfo_value(v)}" for k, v in params.items())


def _pool_sizes(args: _Section) -> tuple[int, int]:
    cp_min = args.get_int("cp_min", 5, lo=0)
    cp_max = args.get_int("cp_max", 10, lo=1)
    if cp_min > cp_max:
        raise args.error("cp_min", f"must not be larger than cp_max ({cp_min} > {cp_max})")
    return cp_min, cp_max


def _sqlite(args: _Section) -> DatabaseConfig:
    args.warn_unknown({"database", "cp_min", "cp_max"})
    path = _check_str(args.ctx, args.key("database"), args.require("database", "the file path"))
    cp_min, cp_max = _pool_sizes(args)
    return DatabaseConfig(
        engine="sqlite",
        sqlite_path=path if path == ":memory:" else args.ctx.resolve_path(path),
        postgres_conninfo=None,
        cp_min=cp_min,
        cp_max=cp_max,
    )


def _postgres_params(args: _Section) -> dict[str, str]:
    """The connection keywords besides dsn/conninfo, in a stable order, as strings."""
    if args.has("database") and args.has("dbname"):
        raise args.error("database", "give the database name as 'dbname' or 'database', not both")
    params: dict[str, str] = {}
    for name, value in args.data.items():
        if name in ("dsn", "conninfo", "cp_min", "cp_max") or value is None:
            continue
        name_text = str(name)
        if not _LIBPQ_KEYWORD_RE.match(name_text):
            raise args.error(name_text, "not a valid libpq connection keyword")
        if name_text == "port" and isinstance(value, int):
            _check_int(args.ctx, args.key("port"), value, 1, 65535)
        # psycopg2 (and so Synapse configs) spell the database name "database".
        keyword = "dbname" if name_text == "database" else name_text
        params[keyword] = _conninfo_text(args.ctx, args.key(name_text), value)
    return params


def _postgres(args: _Section) -> DatabaseConfig:
    if args.has("dsn") and args.has("conninfo"):
        raise args.error("conninfo", "give either 'dsn' or 'conninfo', not both")
    dsn_key = "dsn" if args.has("dsn") else "conninfo"
    dsn = args.get_str(dsn_key, "") or ""
    params = build_conninfo(_postgres_params(args))
    if dsn and params and "://" in dsn:
        raise args.error(
            dsn_key,
            "a postgresql:// URI cannot be combined with separate host/user/... keys; put "
            "everything in the URI or use a 'key=value' connection string",
        )
    cp_min, cp_max = _pool_sizes(args)
    return DatabaseConfig(
        engine="postgres",
        sqlite_path=None,
        postgres_conninfo=" ".join(part for part in (dsn, params) if part),
        cp_min=cp_min,
        cp_max=cp_max,
    )


def _database(top: _Section) -> DatabaseConfig:
    if not top.has("database"):
        return DatabaseConfig("sqlite", top.ctx.resolve_path("homeserver.db"), None, 5, 10)
    db = top.section("database")
    # txn_limit and allow_unsafe_locale are Synapse tuning knobs with no equivalent here.
    db.warn_unknown({"name", "args", "txn_limit", "allow_unsafe_locale"})
    name = _check_str(db.ctx, db.key("name"), db.require("name", "sqlite3 or psycopg"))
    args = db.section("args")
    if name == "sqlite3":
        return _sqlite(args)
    if name in ("psycopg", "psycopg2"):
        return _postgres(args)
    raise db.error(
        "name",
        f"unsupported database engine {name!r}: use 'sqlite3' or 'psycopg' "
        "('psycopg2' is accepted as a synonym)",
    )


# -- registration -----------------------------------------------------------------------------


def _check_registration(top: _Section, require_3pid: Sequence[str]) -> tuple[bool, bool]:
    enabled = top.get_bool("enable_registration", False)
    without_verification = top.get_bool("enable_registration_without_verification", False)
    if enabled and not without_verification and not require_3pid:
        # Same safety catch as Synapse: an open server with no verification is a spam magnet.
        # A required, validated email address is the one verification method we have.
        raise top.error(
            "enable_registration",
            "open registration without any verification lets anyone, including spam bots, "
            "create accounts. Require a validated email address with "
            "'registrations_require_3pid: [email]' (and an email section), or, to really "
            "allow it, also set 'enable_registration_without_verification: true'; otherwise "
            "set 'enable_registration: false' and create accounts with the "
            "registration_shared_secret",
        )
    return enabled, without_verification


def _registrations_require_3pid(top: _Section, email: EmailConfig | None) -> tuple[str, ...]:
    media = top.get_str_list("registrations_require_3pid")
    for medium in media:
        if medium != "email":
            # Validating phone numbers needs an SMS gateway, which this server does not have.
            raise top.error(
                "registrations_require_3pid", f"only 'email' is supported, got {medium!r}"
            )
    if media and email is None:
        raise top.error(
            "registrations_require_3pid",
            "requiring an email address needs the email section (smtp_host, notif_from, ...) "
            "so that validation mails can be sent",
        )
    return tuple(dict.fromkeys(media))


# -- email ------------------------------------------------------------------------------------

_EMAIL_KEYS = {
    "smtp_host",
    "smtp_port",
    "smtp_user",
    "smtp_pass",
    "require_transport_security",
    "enable_tls",
    "notif_from",
    "app_name",
    "template_dir",
    "validation_token_lifetime",
    "notif_delay_before_mail",
}


def _email(top: _Section) -> EmailConfig | None:
    # As in Synapse, an absent or empty section means that this server sends no mail.
    email = top.section("email")
    if not email.data:
        return None
    email.warn_unknown(_EMAIL_KEYS)
    # An empty user name means "no authentication", as an absent one does.
    user = email.get_str("smtp_user") or None
    password = email.get_str("smtp_pass") or None
    if (user is None) != (password is None):
        missing = "smtp_pass" if password is None else "smtp_user"
        raise email.error(missing, "smtp_user and smtp_pass go together: set both or neither")
    require_tls = email.get_bool("require_transport_security", False)
    enable_tls = email.get_bool("enable_tls", True)
    if require_tls and not enable_tls:
        raise email.error("require_transport_security", "cannot be true when enable_tls is false")
    app_name = email.get_str("app_name", "Matrix") or "Matrix"
    lifetime = email.get("validation_token_lifetime", 3600 * 1000, _check_duration)
    if lifetime <= 0:
        raise email.error("validation_token_lifetime", "must be longer than 0")
    return EmailConfig(
        smtp_host=email.get_str("smtp_host", "localhost") or "localhost",
        smtp_port=email.get_int("smtp_port", 25, lo=1, hi=65535),
        smtp_user=user,
        smtp_pass=password,
        require_transport_security=require_tls,
        enable_tls=enable_tls,
        notif_from=_notif_from(email, app_name),
        app_name=app_name,
        template_dir=_template_dir(email),
        validation_token_lifetime_ms=lifetime,
        notif_delay_before_mail_ms=email.get(
            "notif_delay_before_mail", 10 * 60 * 1000, _check_duration
        ),
    )


def _notif_from(email: _Section, app_name: str) -> str:
    example = 'e.g. "Your Friendly %(app)s homeserver <noreply@example.com>"'
    template = _check_str(email.ctx, email.key("notif_from"), email.require("notif_from", example))
    try:
        value = template % {"app": app_name}
    except (KeyError, ValueError, TypeError):
        raise email.error(
            "notif_from", "only %(app)s can be substituted (write %% for a literal %)"
        ) from None
    _, address = parseaddr(value)
    if "@" not in address or "\r" in value or "\n" in value:
        raise email.error("notif_from", f"expected a sender address, {example}; got {value!r}")
    return value


def _template_dir(email: _Section) -> str | None:
    path = email.get_path("template_dir")
    if path is not None and not os.path.isdir(path):
        raise email.error("template_dir", f"not a directory: {path}")
    return path


def _shared_secret(top: _Section) -> tuple[str | None, str | None]:
    # Synapse treats an empty secret as "not set": shared-secret registration stays off.
    secret = top.get_str("registration_shared_secret") or None
    path = top.get_path("registration_shared_secret_path")
    if path is None:
        return secret, None
    if secret is not None:
        raise top.error(
            "registration_shared_secret_path",
            "set either registration_shared_secret or registration_shared_secret_path, not both",
        )
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise top.error("registration_shared_secret_path", f"cannot read {path}: {e}") from None
    if not secret:
        raise top.error("registration_shared_secret_path", f"{path} is empty")
    return secret, path


def _room_version(top: _Section) -> str:
    value = top.value("default_room_version")
    if value is None:
        return "12"
    # YAML reads `default_room_version: 10` as an int; the identifier is its text.
    version = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if version not in KNOWN_ROOM_VERSIONS:
        known = ", ".join(KNOWN_ROOM_VERSIONS)
        raise top.error(
            "default_room_version", f"unknown room version {_describe(value)}; known: {known}"
        )
    return version


# -- rate limits ------------------------------------------------------------------------------


def _rate_limit(parent: _Section, name: str, per_second: float, burst: float) -> RateLimitConfig:
    # Like Synapse, each of the two numbers falls back to its own default.
    rc = parent.section(name)
    rc.warn_unknown({"per_second", "burst_count"})
    return RateLimitConfig(
        per_second=rc.get("per_second", float(per_second), _check_number),
        burst_count=rc.get("burst_count", float(burst), _check_number),
    )


def _login_limits(top: _Section) -> LoginRateLimitConfig:
    rc = top.section("rc_login")
    rc.warn_unknown({"address", "account", "failed_attempts"})
    return LoginRateLimitConfig(
        address=_rate_limit(rc, "address", 0.003, 5),
        account=_rate_limit(rc, "account", 0.003, 5),
        failed_attempts=_rate_limit(rc, "failed_attempts", 0.17, 3),
    )


def _join_limits(top: _Section) -> JoinRateLimitConfig:
    rc = top.section("rc_joins")
    rc.warn_unknown({"local", "remote"})
    return JoinRateLimitConfig(
        local=_rate_limit(rc, "local", 0.1, 10),
        remote=_rate_limit(rc, "remote", 0.01, 10),
    )


def _invite_limits(top: _Section) -> InviteRateLimitConfig:
    rc = top.section("rc_invites")
    rc.warn_unknown({"per_room", "per_user", "per_issuer"})
    return InviteRateLimitConfig(
        per_room=_rate_limit(rc, "per_room", 0.3, 10),
        per_user=_rate_limit(rc, "per_user", 0.003, 5),
        per_issuer=_rate_limit(rc, "per_issuer", 0.3, 10),
    )


# -- federation, presence, logging ------------------------------------------------------------


def _trusted_key_server(ctx: _Context, key: str, value: Any) -> TrustedKeyServer:
    entry = _item_section(ctx, key, value)
    entry.warn_unknown({"server_name", "verify_keys", "accept_keys_insecurely"})
    name = _check_str(ctx, entry.key("server_name"), entry.require("server_name"))
    problem = server_name_problem(name)
    if problem is not None:
        raise entry.error("server_name", f"{name!r} is not a valid server name: {problem}")
    keys = entry.section("verify_keys")
    verify_keys = {
        _check_str(ctx, keys.prefix, key_id): _check_str(ctx, keys.key(str(key_id)), public)
        for key_id, public in keys.data.items()
    }
    return TrustedKeyServer(
        server_name=name,
        verify_keys=MappingProxyType(verify_keys),
        accept_keys_insecurely=entry.get_bool("accept_keys_insecurely", False),
    )


def _old_signing_keys(top: _Section) -> Mapping[str, tuple[str, int]]:
    keys = top.section("old_signing_keys")
    old: dict[str, tuple[str, int]] = {}
    for key_id in keys.data:
        entry = keys.section(str(key_id))
        entry.warn_unknown({"key", "expired_ts"})
        public = entry.get_str("key")
        if not str(key_id).startswith("ed25519:") or not public:
            raise keys.error(str(key_id), "expected an ed25519 key ID with `key` and `expired_ts`")
        old[str(key_id)] = (public, entry.get_int("expired_ts", 0, lo=0))
    return MappingProxyType(old)


def _ip_ranges(top: _Section, name: str, default: Sequence[str]) -> tuple[IPNetwork, ...]:
    items = top.list_items(name)
    if items is None:
        items = [(name, cidr) for cidr in default]
    networks = []
    for key, value in items:
        try:
            networks.append(ipaddress.ip_network(_check_str(top.ctx, key, value), strict=False))
        except ValueError:
            raise top.ctx.error(
                key, f"expected an IP address or CIDR range, got {value!r}"
            ) from None
    return tuple(networks)


def _domain_whitelist(top: _Section) -> frozenset[str] | None:
    if not top.has("federation_domain_whitelist"):
        return None
    return frozenset(top.get_str_list("federation_domain_whitelist"))


def _publication_rules(top: _Section) -> tuple[Mapping[str, Any], ...]:
    # Kept raw for the room directory to interpret. Absent is not the same as empty: see
    # room_list_publication_default.
    items = top.list_items("room_list_publication_rules") or []
    return tuple(MappingProxyType(dict(_check_mapping(top.ctx, k, v))) for k, v in items)


def _presence_enabled(top: _Section) -> bool:
    # `use_presence` is the older spelling; `presence.enabled` wins when both are set.
    legacy = top.get_bool("use_presence", True)
    presence = top.section("presence")
    presence.warn_unknown({"enabled"})
    if presence.value("enabled") == "untracked":
        # Synapse's "enabled but not tracked from activity": the closest we have is enabled.
        return True
    return presence.get_bool("enabled", legacy)


def _log_level(top: _Section) -> str:
    level = top.get_str("log_level", "INFO") or "INFO"
    if level.upper() not in LOG_LEVELS:
        raise top.error("log_level", f"expected one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level.upper()


# -- media ------------------------------------------------------------------------------------

# Synapse's default thumbnail_sizes, which are also the sizes the spec recommends.
DEFAULT_THUMBNAIL_SIZES: tuple[ThumbnailSize, ...] = (
    ThumbnailSize(32, 32, "crop"),
    ThumbnailSize(96, 96, "crop"),
    ThumbnailSize(320, 240, "scale"),
    ThumbnailSize(640, 480, "scale"),
    ThumbnailSize(800, 600, "scale"),
)


def _thumbnail_size(ctx: _Context, key: str, value: Any) -> ThumbnailSize:
    entry = _item_section(ctx, key, value)
    entry.warn_unknown({"width", "height", "method"})
    method = entry.get_str("method", "scale")
    if method not in ("crop", "scale"):
        raise entry.error("method", f"expected 'crop' or 'scale', got {method!r}")
    width = _check_int(ctx, entry.key("width"), entry.require("width"), 1, 10000)
    height = _check_int(ctx, entry.key("height"), entry.require("height"), 1, 10000)
    return ThumbnailSize(width, height, method)  # type: ignore[arg-type]


def _media_config(top: _Section) -> MediaConfig:
    sizes = top.list_items("thumbnail_sizes")
    return MediaConfig(
        enable_authenticated_media=top.get_bool("enable_authenticated_media", True),
        thumbnail_sizes=DEFAULT_THUMBNAIL_SIZES
        if sizes is None
        else tuple(_thumbnail_size(top.ctx, k, v) for k, v in sizes),
        max_image_pixels=top.get("max_image_pixels", 32 * 1024**2, _check_size),
        max_pending_media_uploads=top.get_int("max_pending_media_uploads", 5, lo=1),
        unused_expiration_time_ms=top.get(
            "unused_expiration_time", 24 * 3600 * 1000, _check_duration
        ),
        rc_media_create=_rate_limit(top, "rc_media_create", 10, 50),
        max_spider_size=top.get("max_spider_size", 10 * 1024**2, _check_size),
        url_preview_ip_range_blacklist=_ip_ranges(
            top, "url_preview_ip_range_blacklist", DEFAULT_IP_RANGE_BLACKLIST
        ),
        url_preview_ip_range_whitelist=_ip_ranges(top, "url_preview_ip_range_whitelist", ()),
    )


_PUSH_KEYS = ("enabled", "include_content", "retry_initial_backoff", "retry_max_backoff")
_WEBPUSH_KEYS = ("enabled", "vapid_private_key_path", "vapid_contact")
_VAPID_CONTACT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://\S+)$")


def _push(top: _Section) -> PushConfig:
    push = top.section("push")
    push.warn_unknown(_PUSH_KEYS)
    initial = push.get("retry_initial_backoff", 1000, _check_duration)
    ceiling = push.get("retry_max_backoff", 10 * 60 * 1000, _check_duration)
    if initial <= 0 or ceiling < initial:
        raise push.error("retry_max_backoff", "backoffs must be positive, the ceiling no less "
                                              "than retry_initial_backoff")
    return PushConfig(push.get_bool("enabled", True), push.get_bool("include_content", True),
                      initial, ceiling)


def _webpush(top: _Section, server_name: str) -> WebPushConfig | None:
    webpush = top.section("webpush")
    webpush.warn_unknown(_WEBPUSH_KEYS)
    if not webpush.get_bool("enabled", False):
        return None
    path = webpush.get_path("vapid_private_key_path")
    if path is None:
        raise webpush.error("vapid_private_key_path", "required when webpush is enabled "
                                                      "(generate-config writes one)")
    contact = webpush.get_str("vapid_contact") or f"mailto:admin@{host_of(server_name)}"
    if not _VAPID_CONTACT.match(contact):
        raise webpush.error("vapid_contact", f"expected a mailto: or https: URL, got {contact!r}")
    return WebPushConfig(path, contact)


# Synapse keys accepted without a warning: their value is validated and kept, but nothing here
# reads them yet.
KNOWN_TOP_LEVEL_KEYS = {
    "server_name",
    "public_baseurl",
    "listeners",
    "tls_certificate_path",
    "tls_private_key_path",
    "database",
    "signing_key_path",
    "media_store_path",
    "max_upload_size",
    "max_request_body_size",
    "url_preview_enabled",
    "enable_authenticated_media",
    "thumbnail_sizes",
    "max_image_pixels",
    "max_pending_media_uploads",
    "unused_expiration_time",
    "rc_media_create",
    "max_spider_size",
    "url_preview_ip_range_blacklist",
    "url_preview_ip_range_whitelist",
    "enable_registration",
    "enable_registration_without_verification",
    "registrations_require_3pid",
    "request_token_inhibit_3pid_errors",
    "email",
    "push",
    "webpush",
    "registration_shared_secret",
    "registration_shared_secret_path",
    "bcrypt_rounds",
    "allow_guest_access",
    "refreshable_access_token_lifetime",
    "refresh_token_lifetime",
    "nonrefreshable_access_token_lifetime",
    "rc_message",
    "rc_registration",
    "rc_login",
    "rc_joins",
    "rc_invites",
    "rc_room_creation",
    "rc_3pid_validation",
    "default_room_version",
    "pagination_max_limit",
    "room_list_publication_rules",
    "allow_public_rooms_without_auth",
    "allow_public_rooms_over_federation",
    "log_config",
    "log_level",
    "serve_server_wellknown",
    "key_refresh_interval",
    "old_signing_keys",
    "suppress_key_server_warning",
    "trusted_key_servers",
    "federation_domain_whitelist",
    "federation_verify_certificates",
    "ip_range_blacklist",
    "ip_range_whitelist",
    "presence",
    "use_presence",
    "turn_uris",
    "turn_shared_secret",
    "turn_username",
    "turn_password",
    "turn_user_lifetime",
    "turn_allow_guests",
    "report_stats",
    "macaroon_secret_key",
    "form_secret",
    "pid_file",
}


def _nullable_duration(top: _Section, name: str) -> int | None:
    return top.get(name, None, _check_duration)


def parse_config(data: Any, config_path: str) -> HomeServerConfig:
    """Validates an already-parsed YAML document; `config_path` anchors relative paths and
    names the file in messages. Useful in tests to build a config from a dict."""
    ctx = _Context(config_path, os.path.dirname(os.path.abspath(config_path)))
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{config_path}: expected a mapping of config keys at the top level, "
            f"got {_describe(data)}"
        )
    top = _Section(ctx, data, "")
    top.warn_unknown(KNOWN_TOP_LEVEL_KEYS)
    server_name = _server_name(top)
    listeners = _listeners(top)
    tls_cert, tls_key = _tls_paths(top, listeners)
    email = _email(top)
    require_3pid = _registrations_require_3pid(top, email)
    enable_registration, without_verification = _check_registration(top, require_3pid)
    secret, secret_path = _shared_secret(top)
    return HomeServerConfig(
        config_path=os.path.abspath(config_path),
        config_dir=ctx.config_dir,
        server_name=server_name,
        public_baseurl=_public_baseurl(top, server_name),
        listeners=listeners,
        tls_certificate_path=tls_cert,
        tls_private_key_path=tls_key,
        database=_database(top),
        signing_key_path=top.get_path("signing_key_path")
        or ctx.resolve_path(f"{server_name}.signing.key"),
        media_store_path=top.get_path("media_store_path") or ctx.resolve_path("media_store"),
        max_upload_size=top.get("max_upload_size", 50 * 1024**2, _check_size),
        max_request_body_size=top.get("max_request_body_size", 10 * 1024**2, _check_size),
        url_preview_enabled=top.get_bool("url_preview_enabled", False),
        media=_media_config(top),
        enable_registration=enable_registration,
        enable_registration_without_verification=without_verification,
        registrations_require_3pid=require_3pid,
        registration_shared_secret=secret,
        registration_shared_secret_path=secret_path,
        bcrypt_rounds=top.get_int("bcrypt_rounds", 12, lo=4, hi=31),
        allow_guest_access=top.get_bool("allow_guest_access", False),
        refreshable_access_token_lifetime_ms=top.get(
            "refreshable_access_token_lifetime", 5 * 60 * 1000, _check_duration
        ),
        refresh_token_lifetime_ms=_nullable_duration(top, "refresh_token_lifetime"),
        nonrefreshable_access_token_lifetime_ms=_nullable_duration(
            top, "nonrefreshable_access_token_lifetime"
        ),
        rc_message=_rate_limit(top, "rc_message", 0.2, 10),
        rc_registration=_rate_limit(top, "rc_registration", 0.17, 3),
        rc_login=_login_limits(top),
        rc_joins=_join_limits(top),
        rc_invites=_invite_limits(top),
        rc_room_creation=_rate_limit(top, "rc_room_creation", 0.016, 10),
        rc_3pid_validation=_rate_limit(top, "rc_3pid_validation", 0.003, 5),
        default_room_version=_room_version(top),
        pagination_max_limit=top.get_int("pagination_max_limit", 1000, lo=1),
        room_list_publication_rules=_publication_rules(top),
        room_list_publication_default=not top.has("room_list_publication_rules"),
        allow_public_rooms_without_auth=top.get_bool("allow_public_rooms_without_auth", False),
        allow_public_rooms_over_federation=top.get_bool(
            "allow_public_rooms_over_federation", False
        ),
        log_config=top.get_path("log_config"),
        log_level=_log_level(top),
        serve_server_wellknown=top.get_bool("serve_server_wellknown", False),
        key_refresh_interval_ms=top.get(
            "key_refresh_interval", 24 * 3600 * 1000, _check_duration
        ),
        old_signing_keys=_old_signing_keys(top),
        suppress_key_server_warning=top.get_bool("suppress_key_server_warning", False),
        trusted_key_servers=tuple(
            _trusted_key_server(ctx, k, v) for k, v in top.list_items("trusted_key_servers") or []
        ),
        federation_domain_whitelist=_domain_whitelist(top),
        federation_verify_certificates=top.get_bool("federation_verify_certificates", True),
        ip_range_blacklist=_ip_ranges(top, "ip_range_blacklist", DEFAULT_IP_RANGE_BLACKLIST),
        ip_range_whitelist=_ip_ranges(top, "ip_range_whitelist", ()),
        presence_enabled=_presence_enabled(top),
        turn_uris=top.get_str_list("turn_uris"),
        turn_shared_secret=top.get_str("turn_shared_secret"),
        turn_username=top.get_str("turn_username"),
        turn_password=top.get_str("turn_password"),
        turn_user_lifetime_ms=top.get("turn_user_lifetime", 3600 * 1000, _check_duration),
        turn_allow_guests=top.get_bool("turn_allow_guests", True),
        email=email,
        push=_push(top),
        webpush=_webpush(top, server_name),
        request_token_inhibit_3pid_errors=top.get_bool(
            "request_token_inhibit_3pid_errors", False
        ),
        report_stats=top.get("report_stats", None, _check_bool),
        macaroon_secret_key=top.get_str("macaroon_secret_key"),
        form_secret=top.get_str("form_secret"),
        pid_file=top.get_path("pid_file"),
    )


def _read_yaml(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: the config file is not UTF-8 text: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None


def load_config(path: str) -> HomeServerConfig:
    """Reads and validates the YAML config file at `path`; raises ConfigError."""
    data = _read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: the config file is empty")
    return parse_config(data, path)


# --------------------------------------------------------------------------------------------
# Generating a starter config
# --------------------------------------------------------------------------------------------


def _yaml_scalar(value: str) -> str:
    # JSON strings are valid YAML double-quoted scalars, and quoting keeps "yes"/"1.0" strings.
    return json.dumps(value)


def _write_private(path: str, text: str) -> None:
    """Creates `path` readable only by its owner (it holds secrets); fails if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _write_signing_key(path: str) -> None:
    alphabet = string.ascii_letters + string.digits
    version = "a_" + "".join(secrets.choice(alphabet) for _ in range(4))
    key = signedjson.key.generate_signing_key(version)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        signedjson.key.write_signing_keys(f, [key])


def write_vapid_key(path: str) -> None:
    """A fresh P-256 key for Web Push (VAPID, RFC 8292), PEM, readable only by its owner."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(path, pem.decode("ascii"))


def _is_localhost(server_name: str) -> bool:
    return server_name.partition(":")[0] == "localhost"


_REGISTRATION_OPEN_COMMENT = """\
# Registration is OPEN: anyone who can reach this server can create an account. Fine for a
# local trial; on a server reachable from the internet it invites spam. To close it, set
# enable_registration (and enable_registration_without_verification) to false."""

_REGISTRATION_CLOSED_COMMENT = """\
# Registration is closed: only the registration_shared_secret can create accounts. For a
# local trial, open it by setting both of these keys to true. Opened that way there is no
# verification at all, so do not do it on a server reachable from the internet; require a
# validated email address instead (registrations_require_3pid, see sample_config.yaml)."""


def _render_config(
    server_name: str,
    data_dir: str,
    *,
    open_registration: bool,
    port: int,
    bind_addresses: Sequence[str],
) -> str:
    local = _is_localhost(server_name)
    baseurl = f"http://localhost:{port}/" if local else f"https://{server_name}/"
    bind_comment = (
        "Loopback only: a local trial is not reachable from the network."
        if local
        else "Every interface, IPv6 and IPv4 (Synapse's default)."
    )
    registration = "true" if open_registration else "false"
    join = os.path.join
    return f"""\
# Homeserver configuration, generated for {server_name}.
#
# Every key this server understands, with its default and an example, is documented in
# sample_config.yaml at the root of the source tree. Key names and meanings follow Synapse's
# homeserver.yaml, so Synapse's documentation applies wherever the keys match.

# The domain in your users' IDs (@alice:{server_name}). It cannot be changed later.
server_name: {_yaml_scalar(server_name)}

# The URL clients use to reach this server.
public_baseurl: {_yaml_scalar(baseurl)}

listeners:
  - port: {port}
    type: http
    # {bind_comment}
    bind_addresses: {json.dumps(list(bind_addresses))}
    tls: false
    # Set to true when running behind a reverse proxy that sets X-Forwarded-For.
    x_forwarded: false
    resources:
      - names: [client, federation, media]
        compress: false

database:
  name: sqlite3
  args:
    database: {_yaml_scalar(join(data_dir, "homeserver.db"))}

# This server's ed25519 signing key. Keep it secret and back it up: federation identifies the
# server by it.
signing_key_path: {_yaml_scalar(join(data_dir, f"{server_name}.signing.key"))}
media_store_path: {_yaml_scalar(join(data_dir, "media_store"))}

# Lets an admin create accounts through the shared-secret registration API (the one Synapse's
# register_new_matrix_user script uses), even while registration is closed. Keep it secret.
registration_shared_secret: {_yaml_scalar(secrets.token_urlsafe(32))}

{_REGISTRATION_OPEN_COMMENT if open_registration else _REGISTRATION_CLOSED_COMMENT}
enable_registration: {registration}
enable_registration_without_verification: {registration}

# Web Push straight to browsers (and UnifiedPush apps), with no push gateway in between.
# The key identifies this server to push services (VAPID); keep it, or every browser has to
# subscribe again.
webpush:
  enabled: true
  vapid_private_key_path: {_yaml_scalar(join(data_dir, f"{server_name}.vapid.pem"))}

# DEBUG, INFO, WARNING or ERROR. Set log_config to a Python logging YAML file for more control.
log_level: INFO
"""


def generate_config(
    server_name: str,
    config_path: str,
    data_dir: str | None = None,
    *,
    open_registration: bool = False,
    port: int = 8008,
    bind_addresses: Sequence[str] | None = None,
) -> None:
    """Writes a starter config file and a fresh signing key; never overwrites a config.

    `data_dir` (default: the config file's directory) holds the database, signing key and
    media. An existing signing key there is kept: replacing it would change the server's
    identity to other servers.
    """
    problem = server_name_problem(server_name)
    if problem is not None:
        raise ConfigError(f"server_name: {server_name!r} is not a valid server name: {problem}")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"port: expected an integer between 1 and 65535, got {port!r}")
    if os.path.lexists(config_path):
        raise ConfigError(f"{config_path}: already exists; refusing to overwrite it")
    config_dir = os.path.dirname(os.path.abspath(config_path))
    data_dir = os.path.abspath(data_dir if data_dir is not None else config_dir)
    os.makedirs(config_dir, exist_ok=True)
    os.makedirs(data_dir, exist_ok=True)
    if bind_addresses is None:
        # IPv4 loopback only for localhost: binding ::1 fails on hosts without IPv6.
        bind_addresses = ["127.0.0.1"] if _is_localhost(server_name) else DEFAULT_BIND_ADDRESSES
    key_path = os.path.join(data_dir, f"{server_name}.signing.key")
    if not os.path.exists(key_path):
        _write_signing_key(key_path)
    vapid_path = os.path.join(data_dir, f"{server_name}.vapid.pem")
    if not os.path.exists(vapid_path):
        write_vapid_key(vapid_path)
    text = _render_config(
        server_name,
        data_dir,
        open_registration=open_registration,
        port=port,
        bind_addresses=bind_addresses,
    )
    try:
        _write_private(config_path, text)
    except FileExistsError:
        raise ConfigError(f"{config_path}: already exists; refusing to overwrite it") from None
