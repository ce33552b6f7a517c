"""`python -m homeserver register-user`: create an account on a running server.

It talks to the server's shared-secret registration API (client_api/servlets/admin.py) over
HTTP, like Synapse's register_new_matrix_user, so it works whether or not public registration
is open and never touches the database behind the server's back. Blocking urllib is fine here:
this is a one-shot command line tool, not the reactor.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

from homeserver.config import HomeServerConfig, ListenerConfig
from homeserver.identifiers import split_id

_TIMEOUT_S = 30
_PATH = "/_synapse/admin/v1/register"


class _CommandError(Exception):
    pass


def registration_mac(
    secret: str, nonce: str, username: str, password: str, admin: bool, user_type: str | None
) -> str:
    """The hex HMAC-SHA1 that proves knowledge of the shared secret, in Synapse's exact byte
    layout (nonce NUL username NUL password NUL admin|notadmin [NUL user_type]), so Synapse's
    register_new_matrix_user works against us. The server computes it too, to compare."""
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
    for part in (nonce, username, password):
        mac.update(part.encode("utf-8"))
        mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    if user_type:
        mac.update(b"\x00")
        mac.update(user_type.encode("utf-8"))
    return mac.hexdigest()


def register_user_command(
    config: HomeServerConfig, user: str, password: str | None, admin: bool, url: str | None
) -> int:
    """Returns the process exit code; messages go to stdout (success) or stderr (failure)."""
    try:
        secret = config.registration_shared_secret
        if not secret:
            raise _CommandError(
                "registration_shared_secret is not set in the config: the server cannot "
                "accept shared-secret registration"
            )
        localpart = _localpart(user, config.server_name)
        if password is None:
            password = _prompt_password()
        base_url, context = _server_url(config, url)
        result = _register(base_url, context, secret, localpart, password, admin)
    except _CommandError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    print(f"Success! Registered {result.get('user_id')}{' as an admin' if admin else ''}.")
    return 0


def _localpart(user: str, server_name: str) -> str:
    if not user.startswith("@"):
        return user
    try:
        localpart, server = split_id(user, "@")
    except ValueError:
        raise _CommandError(f"{user!r} is not a valid user ID") from None
    if server != server_name:
        raise _CommandError(f"{user} is not on this server ({server_name})")
    return localpart


def _prompt_password() -> str:
    password = getpass.getpass("Password: ")
    if not password:
        raise _CommandError("the password must not be empty")
    if getpass.getpass("Confirm password: ") != password:
        raise _CommandError("the passwords do not match")
    return password


def _client_listener(config: HomeServerConfig) -> ListenerConfig:
    for listener in config.listeners:
        if "client" in listener.resource_names:
            return listener
    if not config.listeners:
        raise _CommandError("the config has no listeners; pass --url")
    return config.listeners[0]


def _server_url(config: HomeServerConfig, url: str | None) -> tuple[str, ssl.SSLContext | None]:
    if url:
        return url.rstrip("/"), None
    listener = _client_listener(config)
    if not listener.tls:
        return f"http://127.0.0.1:{listener.port}", None
    # Our own listener over loopback: its certificate names the public host, not 127.0.0.1.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return f"https://127.0.0.1:{listener.port}", context


def _register(
    base_url: str,
    context: ssl.SSLContext | None,
    secret: str,
    localpart: str,
    password: str,
    admin: bool,
) -> dict[str, Any]:
    nonce = _call(base_url + _PATH, context, None).get("nonce")
    if not isinstance(nonce, str):
        raise _CommandError("the server did not hand out a nonce")
    body = {
        "nonce": nonce,
        "username": localpart,
        "password": password,
        "admin": admin,
        "mac": registration_mac(secret, nonce, localpart, password, admin, None),
    }
    return _call(base_url + _PATH, context, body)


def _call(url: str, context: ssl.SSLContext | None, body: dict[str, Any] | None) -> dict:
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S, context=context) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raise _CommandError(_describe_http_error(error)) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise _CommandError(f"cannot reach the server at {url}: {reason}") from None
    except ValueError:
        raise _CommandError(f"the server at {url} did not answer with JSON") from None


def _describe_http_error(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read())
        return f"{error.code} {body.get('errcode')}: {body.get('error')}"
    except (ValueError, AttributeError):
        return f"HTTP {error.code} {error.reason}"
