"""Every route the client listener serves, fed malformed requests: none may answer 500.

The project rule: bad input gets a Matrix error (`errcode` + `error`, 4xx) and changes nothing.
This test walks the listener's own router (so new routes are covered as soon as they exist) and,
for each route, sends a battery of malformed requests as alice (and once without a token):

* path parameters filled with plausible-but-wrong values (a real room, a missing room, "%2F",
  unicode, NUL, invalid UTF-8, a 10k-character segment, ...);
* bodies that are not JSON, not an object, or an object whose keys -- taken from the request
  body schema in the Matrix spec's OpenAPI files, or from the event schemas for event content --
  hold the wrong types;
* query strings with wrong values for the usual and the spec-listed parameters.

Every response must be < 500, and every >= 400 response a JSON object with string `errcode`
and `error` (an interactive-auth 401 carrying `flows` is the one spec-sanctioned exception; the
pages that links in mails open answer people's browsers with HTML, failures included).
All problems are collected and reported together, with any traceback the server logged while
handling the offending request. Set MATRIX_SPEC_DIR to a matrix-spec checkout's `data` folder to
use another copy of the spec; without one only generic keys are tried.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import treq
import yaml

from client_api.http import Route, Router
from client_api.servlets.threepids import HTML_PAGE_PATHS
from client_api.site import build_router
from tests.asyncutil import async_test
from tests.client.client_testing import V3, ClientTestCase

SPEC_DATA = Path(os.environ.get("MATRIX_SPEC_DIR", "/work/shared/matrix-spec/data"))
PASSWORD = "correct horse"  # what TestClient.register gives every user
REQUEST_TIMEOUT = 15.0
_BODY_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})

# -- the malformed values ------------------------------------------------------------------------

HUGE = "x" * 65_536
LONG_SEGMENT = "x" * 10_000


def _wrong_values() -> list[tuple[str, Any]]:
    """(label, value) pairs of the wrong type for nearly any key; JSON-encodable."""
    return [
        ("null", None),
        ("number", 12345),
        ("negative", -1),
        ("float", 1.5),
        ("bigint", 2**70),
        ("bool", True),
        ("list", [1, "two", None, {}]),
        ("object", {"nested": {"deep": [None, {"x": 1}]}}),
        ("huge string", HUGE),
        ("empty string", ""),
        ("lone surrogate", "\ud800"),
    ]


# The subset tried key by key (the full set is tried with every key at once).
_PER_KEY_LABELS = ("null", "number", "list", "object", "huge string", "lone surrogate")
# The subset tried one level down, inside object- and list-of-object-valued keys.
_NESTED_LABELS = ("null", "number", "list", "object")

# Raw bodies that are not a JSON object at all, or JSON no server should accept.
RAW_BODIES: list[tuple[str, bytes]] = [
    ("not JSON", b"this is not json"),
    ("JSON array", b'[1, 2, {"a": 3}]'),
    ("JSON string", b'"a json string"'),
    ("JSON number", b"42"),
    ("JSON null", b"null"),
    ("empty", b""),
    ("truncated", b'{"a": '),
    ("invalid UTF-8", b'{"a": "\xff\xfe"}'),
    ("NaN", b'{"a": NaN}'),
    ("infinity", b'{"a": 1e400}'),
    ("deep nesting", b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
]

# Query parameters most list-like endpoints read, with wrong values. Values are pre-encoded.
GENERIC_QUERY: list[tuple[str, str]] = [
    ("limit", "abc"),
    ("limit", "-1"),
    ("limit", "99999999999999999999"),
    ("limit", "1.5"),
    ("dir", "x"),
    ("from", "garbage"),
    ("from", "%FF"),
    ("to", "garbage"),
    ("since", "garbage"),
    ("timeout", "-5"),
    ("timeout", "abc"),
    ("filter", quote("{bad")),
    ("filter", quote("[]")),
    ("filter", quote('{"room": {"timeline": {"limit": "x"}}, "event_fields": 5}')),
    ("filter", "999999"),
]
_SPEC_QUERY_VALUES = {
    "integer": ["abc", "-1", "99999999999999999999"],
    "boolean": ["maybe"],
}
_SPEC_QUERY_DEFAULT = ["", "garbage", "%FF"]

# Plausible values for body keys that commonly name things, so that a single wrong key is
# looked at with its siblings valid. Never credentials: nothing here can log alice out.
_PLAUSIBLE_KEYS = {
    "event_id": "{event_id}",
    "room_id": "{room_id}",
    "user_id": "{bob}",
    "rel_type": "m.annotation",
    "key": "k",
    "msgtype": "m.text",
    "body": "hello",
    "membership": "join",
    "reason": "because",
    "displayname": "Alice",
}

# Keys the server reads from message content beyond the m.room.message schema (relations).
_MESSAGE_EXTRA_KEYS: dict[str, list[str]] = {
    "m.relates_to": ["rel_type", "event_id", "key", "m.in_reply_to", "is_falling_back"],
    "m.new_content": ["msgtype", "body"],
}
# Message-like event types whose content the server looks into, walked on the send routes.
_SEND_EVENT_TYPES = ("m.room.message", "m.reaction", "m.room.redaction", "m.room.encrypted")
# Account data types the server interprets, walked on the account-data routes.
_ACCOUNT_DATA_TYPES = ("m.ignored_user_list", "m.direct", "m.fully_read", "m.tag", "m.push_rules")


# -- the spec ------------------------------------------------------------------------------------


class Spec:
    """The client-server OpenAPI files and event schemas, with `$ref`s followed lazily."""

    def __init__(self, data_dir: Path) -> None:
        self._docs: dict[Path, Any] = {}
        self.operations: dict[tuple[str, tuple[str, ...]], list[tuple[dict, Path]]] = {}
        api = data_dir / "api" / "client-server"
        for path in sorted(api.glob("*.yaml")):
            doc = self._load(path)
            servers = doc.get("servers") or [{}]
            base = servers[0].get("variables", {}).get("basePath", {}).get("default", "")
            for template, item in (doc.get("paths") or {}).items():
                item, item_file = self.resolve(item, path)
                for method, op in item.items():
                    if method == "parameters" or not isinstance(op, dict):
                        continue
                    op = dict(op)
                    op["parameters"] = list(item.get("parameters", [])) + list(
                        op.get("parameters", [])
                    )
                    # Some templates carry stray whitespace ("/rooms/{roomId}/invite ").
                    key = (method.upper(), _shape(base + template.strip()))
                    self.operations.setdefault(key, []).append((op, item_file))
        self.event_schemas = data_dir / "event-schemas" / "schema"

    def _load(self, path: Path) -> Any:
        path = path.resolve()
        if path not in self._docs:
            with open(path, encoding="utf-8") as f:
                self._docs[path] = yaml.safe_load(f)
        return self._docs[path]

    def resolve(self, node: Any, base: Path) -> tuple[Any, Path]:
        for _ in range(20):
            if not (isinstance(node, dict) and "$ref" in node):
                break
            file, _, fragment = node["$ref"].partition("#")
            base = (base.parent / file).resolve() if file else base
            node = self._load(base)
            for part in [p for p in fragment.split("/") if p]:
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node, base

    def properties(self, schema: Any, base: Path, depth: int = 0) -> dict[str, tuple[Any, Path]]:
        """The properties an object schema may have, through allOf/oneOf/anyOf."""
        schema, base = self.resolve(schema, base)
        if not isinstance(schema, dict) or depth > 8:
            return {}
        found: dict[str, tuple[Any, Path]] = {}
        for combinator in ("allOf", "oneOf", "anyOf"):
            for sub in schema.get(combinator) or []:
                found.update(self.properties(sub, base, depth + 1))
        for name, sub in (schema.get("properties") or {}).items():
            found[name] = (sub, base)
        return found

    def nested_keys(self, schema: Any, base: Path) -> tuple[str, list[str]] | None:
        """("object" | "list", keys) when a property holds objects with known keys."""
        schema, base = self.resolve(schema, base)
        keys = list(self.properties(schema, base))
        if keys:
            return "object", keys
        if isinstance(schema, dict) and schema.get("items") is not None:
            keys = list(self.properties(schema["items"], base))
            if keys:
                return "list", keys
        return None

    def operations_for(self, route: Route) -> list[tuple[dict, Path]]:
        """The spec's operations for a route: same literal segments, the version aside."""
        segments = route.pattern.split("/")[1:]
        for candidate in _version_candidates(segments):
            ops = self.operations.get((route.method, _shape("/" + "/".join(candidate))))
            if ops:
                return ops
        return []

    def _json_body_schema(self, op: dict, base: Path) -> tuple[Any, Path] | None:
        body, body_base = self.resolve(op.get("requestBody"), base)
        content = (body or {}).get("content") or {}
        schema = (content.get("application/json") or {}).get("schema")
        return None if schema is None else (schema, body_base)

    def body_keys(self, route: Route) -> dict[str, list[str]]:
        """Top-level request body keys, each with the keys one level down (if any)."""
        keys: dict[str, list[str]] = {}
        for op, base in self.operations_for(route):
            schema = self._json_body_schema(op, base)
            if schema is None:
                continue
            for name, (sub, sub_base) in self.properties(*schema).items():
                nested = self.nested_keys(sub, sub_base)
                keys.setdefault(name, nested[1] if nested else [])
        return keys

    def all_body_keys(self) -> list[str]:
        """Every top-level request body key of every operation: for routes the spec lacks."""
        keys: set[str] = set()
        for ops in self.operations.values():
            for op, base in ops:
                schema = self._json_body_schema(op, base)
                if schema is not None:
                    keys.update(self.properties(*schema))
        return sorted(keys)

    def query_params(self, route: Route) -> dict[str, str]:
        """Query parameter name -> schema type, as the spec lists them for the route."""
        params: dict[str, str] = {}
        for op, base in self.operations_for(route):
            for param in op.get("parameters") or []:
                param, _ = self.resolve(param, base)
                if isinstance(param, dict) and param.get("in") == "query":
                    schema = param.get("schema") or {}
                    params[param["name"]] = str(schema.get("type", "string"))
        return params

    def event_content_keys(self, event_type: str) -> dict[str, list[str]]:
        path = self.event_schemas / f"{event_type}.yaml"
        if not path.exists():
            return {}
        props = self.properties(self._load(path), path)
        if "content" not in props:
            return {}
        keys: dict[str, list[str]] = {}
        for name, (sub, sub_base) in self.properties(*props["content"]).items():
            nested = self.nested_keys(sub, sub_base)
            keys[name] = nested[1] if nested else []
        return keys

    def state_event_types(self) -> list[str]:
        """Every m.room.* / m.space.* state event type the spec has a schema for."""
        found = []
        for path in sorted(self.event_schemas.glob("m.*.yaml")):
            name = path.name[: -len(".yaml")]
            if "$" in name or not name.startswith(("m.room.", "m.space.")):
                continue
            refs = [s.get("$ref", "") for s in self._load(path).get("allOf") or []]
            if any(r.endswith("state_event.yaml") for r in refs):
                found.append(name)
        return found


def _shape(path: str) -> tuple[str, ...]:
    """A path template with every {param} made anonymous, for matching across naming."""
    return tuple("{}" if s.startswith("{") else s for s in path.split("/")[1:])


def _version_candidates(segments: list[str]) -> Iterator[list[str]]:
    yield segments
    if len(segments) > 2 and segments[0] == "_matrix" and segments[1] in ("client", "media"):
        if segments[2] == "r0" or (segments[2][:1] == "v" and segments[2][1:].isdigit()):
            for version in ("v3", "v1"):
                if version != segments[2]:
                    yield [*segments[:2], version, *segments[3:]]


class _NoSpec:
    """Stands in for Spec when the spec is not available: no keys, no parameters."""

    def body_keys(self, route: Route) -> dict[str, list[str]]:
        return {}

    def all_body_keys(self) -> list[str]:
        return []

    def query_params(self, route: Route) -> dict[str, str]:
        return {}

    def event_content_keys(self, event_type: str) -> dict[str, list[str]]:
        return {}

    def state_event_types(self) -> list[str]:
        return ["m.room.power_levels", "m.room.member", "m.room.join_rules", "m.room.create"]


_spec_cache: list[Spec | _NoSpec] = []


def load_spec() -> Spec | _NoSpec:
    if not _spec_cache:
        exists = (SPEC_DATA / "api" / "client-server").is_dir()
        _spec_cache.append(Spec(SPEC_DATA) if exists else _NoSpec())
    return _spec_cache[0]


# -- requests, results and the server's log --------------------------------------------------------


@dataclass
class Probe:
    method: str
    path: str  # percent-encoded, query string included
    body: bytes | None = None
    token: bool = True


@dataclass
class Outcome:
    probe: Probe
    status: int
    content: bytes
    problem: str | None
    logs: list[str] = field(default_factory=list)


class _LogCapture(logging.Handler):
    """Keeps every WARNING+ record, with its traceback, for matching to requests."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[0] is not None:
            text += "\n" + _trim_traceback(traceback.format_exception(*record.exc_info))
        self.records.append(text)


def _trim_traceback(formatted: list[str]) -> str:
    """A traceback without the 3.11+ "^^^" marker lines and without library frames."""
    kept: list[str] = []
    skipping = False
    for line in "".join(formatted).splitlines():
        if not line.strip(" ^~"):
            continue
        if line.startswith("  File "):
            skipping = "site-packages" in line
        elif not line.startswith("    "):
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def judge(status: int, content: bytes, html_page: bool = False) -> str | None:
    """What is wrong with a response, if anything. `html_page`: the route is a page people
    open from a mail, whose failures are HTML pages too."""
    if status >= 500:
        return f"server error {status}"
    if status < 400:
        return None
    if html_page and content.lstrip().startswith(b"<!DOCTYPE html>"):
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return "error response is not JSON"
    if not isinstance(body, dict):
        return "error response is not a JSON object"
    if status == 401 and "flows" in body and "errcode" not in body:
        return None  # the first step of interactive auth: no errcode, per the spec
    if not isinstance(body.get("errcode"), str) or not isinstance(body.get("error"), str):
        return "error response lacks string 'errcode' and 'error'"
    return None


def _short(value: bytes | str | None, limit: int = 300) -> str:
    if value is None:
        return "-"
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} chars)"


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def _segment(value: str) -> str:
    return quote(value, safe="")


def _canonical_key(route: Route) -> tuple[Any, ...]:
    """Routes that differ only by API version and share a handler get one full battery."""
    segments = route.pattern.split("/")[1:]
    if len(segments) > 2 and segments[0] == "_matrix" and segments[1] in ("client", "media"):
        segments[2] = "*"
    return (route.method, route.handler, tuple(segments))


def _version_rank(route: Route) -> tuple[int, str]:
    segments = route.pattern.split("/")
    version = segments[3] if len(segments) > 3 else ""
    return ({"v3": 0, "v1": 1}.get(version, 2), route.pattern)


# -- the test ------------------------------------------------------------------------------------


class _Abort(Exception):
    """alice can no longer be used: stop walking, report what was found."""


class BadInputTests(ClientTestCase):
    @async_test
    async def test_no_route_answers_bad_input_with_a_server_error(self) -> None:
        self.capture = _LogCapture()
        logging.getLogger().addHandler(self.capture)
        self.addCleanup(logging.getLogger().removeHandler, self.capture)
        self.spec = load_spec()
        self.outcomes: list[Outcome] = []
        self.notes: list[str] = []
        self.txn = 0
        started = time.monotonic()

        await self.make_fixtures()
        routes = self.listener_routes()
        groups: dict[tuple[Any, ...], list[Route]] = {}
        for route in sorted(routes, key=lambda r: (r.pattern, r.method)):
            groups.setdefault(_canonical_key(route), []).append(route)
        try:
            for group in groups.values():
                first, *aliases = sorted(group, key=_version_rank)
                await self.walk_route(first, full=True)
                for alias in aliases:
                    await self.walk_route(alias, full=False)
            await self.walk_typed_bodies([min(g, key=_version_rank) for g in groups.values()])
            await self.final_sweep(routes)
        except _Abort as e:
            self.notes.append(f"walk aborted: {e}")

        for failure in self.flushLoggedErrors():
            self.notes.append(f"Twisted logged an error:\n{failure.getTraceback()}")
        self.report(len(routes), time.monotonic() - started)

    # -- fixtures ------------------------------------------------------------------------------

    async def make_fixtures(self) -> None:
        """A real room with a message, an alias, a filter and a media item, all alice's."""
        self.token = self.alice_token
        self.device = await self.whoami_device()
        self.room_id = await self.create_room()
        await self.must("POST", f"/rooms/{_segment(self.room_id)}/invite", {"user_id": self.bob})
        self.event_id = (
            await self.must(
                "PUT",
                f"/rooms/{_segment(self.room_id)}/send/m.room.message/fixture",
                {"msgtype": "m.text", "body": "hello"},
            )
        )["event_id"]
        self.alias = "#bad-input:test.local"
        await self.must("PUT", f"/directory/room/{_segment(self.alias)}", {"room_id": self.room_id})
        self.filter_id = (await self.must("POST", f"/user/{_segment(self.alice)}/filter", {}))[
            "filter_id"
        ]
        upload = await self.send_raw(
            Probe("POST", "/_matrix/media/v3/upload?filename=a.txt", b"hello media"),
            headers={"Content-Type": "text/plain"},
        )
        if upload[0] == 404:
            # A listener without the media repository: media IDs are just unknown ones.
            self.media_server, self.media_id = "test.local", "unknown"
            return
        assert upload[0] == 200, upload
        self.media_server, self.media_id = (
            json.loads(upload[1])["content_uri"].removeprefix("mxc://").split("/", 1)
        )

    async def create_room(self) -> str:
        body = {"preset": "public_chat", "name": "bad input"}
        return (await self.must("POST", "/createRoom", body))["room_id"]

    async def must(self, method: str, path: str, body: Any) -> Any:
        status, content = await self.send_raw(Probe(method, V3 + path, _encode(body)))
        assert status == 200, (method, path, status, content)
        return json.loads(content)

    async def whoami_device(self) -> str | None:
        status, content = await self.send_raw(Probe("GET", f"{V3}/account/whoami"))
        return json.loads(content).get("device_id") if status == 200 else None

    def listener_routes(self) -> list[Route]:
        """What the listener serves: its site's router, or one built the way the site builds it."""
        router: Router | None = None
        for port in self.server.hs.ports:
            router = getattr(getattr(port.factory, "resource", None), "router", None)
            if isinstance(router, Router):
                break
        if not isinstance(router, Router):
            names = self.server.config.listeners[0].resource_names
            router = build_router(self.server.hs, frozenset(names))
        return router.routes()

    # -- sending -------------------------------------------------------------------------------

    async def send_raw(
        self, probe: Probe, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        all_headers = {"Content-Type": "application/json"}
        if probe.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        try:
            response = await treq.request(
                probe.method,
                self.server.base_url + probe.path,
                data=probe.body,
                headers={k: [v] for k, v in all_headers.items()},
                persistent=False,
                allow_redirects=False,
                timeout=REQUEST_TIMEOUT,
            )
            return response.code, await response.content()
        except Exception as e:  # a dropped connection or a timeout is a finding, not a crash
            return 0, f"no response: {e!r}".encode()

    async def send(self, probe: Probe) -> Outcome:
        """Sends one probe and judges the answer; re-logs alice in if a probe logged her out."""
        mark = len(self.capture.records)
        status, content = await self.send_raw(probe)
        if probe.token and status == 401 and _errcode(content) == "M_UNKNOWN_TOKEN":
            await self.relogin(probe)
            mark = len(self.capture.records)
            status, content = await self.send_raw(probe)
        html_page = probe.path.split("?")[0] in HTML_PAGE_PATHS
        problem = judge(status, content, html_page) if status else content.decode()
        outcome = Outcome(probe, status, content, problem, self.capture.records[mark:])
        self.outcomes.append(outcome)
        return outcome

    async def relogin(self, after: Probe) -> None:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": PASSWORD,
        }
        status, content = await self.send_raw(
            Probe("POST", f"{V3}/login", _encode(body), token=False)
        )
        if status != 200:
            raise _Abort(
                f"alice cannot log in any more ({status} {_short(content)}) after "
                f"{after.method} {_short(after.path)} body={_short(after.body)}"
            )
        self.token = json.loads(content)["access_token"]
        self.device = await self.whoami_device()

    # -- path parameters -----------------------------------------------------------------------

    def good_value(self, name: str, route: Route) -> str:
        """A plausible value for a path parameter, percent-encoded."""
        lowered = name.lower()
        pattern = route.pattern
        if lowered == "txnid":
            self.txn += 1
            return f"txn{self.txn}"
        if lowered == "eventtype":
            return "m.room.topic" if "/state/" in pattern else "m.room.message"
        if lowered == "statekey":
            return ""
        if lowered == "roomalias":
            return _segment(self.alias)
        if "room" in lowered:  # roomId, roomIdOrAlias
            return _segment(self.room_id)
        if "event" in lowered:
            return _segment(self.event_id)
        if "user" in lowered:
            return _segment(self.alice)
        if "device" in lowered:
            return _segment(self.device or "NODEVICE")
        if "filter" in lowered:
            return _segment(self.filter_id)
        if lowered == "servername":
            return _segment(self.media_server)
        if lowered == "mediaid":
            return _segment(self.media_id)
        if lowered == "keyname":
            return "displayname"
        if lowered == "reltype":
            return "m.annotation"
        if lowered == "type":
            return "org.example.bad_input"
        if lowered == "tag":
            return "u.bad_input"
        return "x"

    def bad_values(self) -> list[tuple[str, str]]:
        """(label, percent-encoded segment) pairs that are wrong for almost any parameter."""
        return [
            ("real room", _segment(self.room_id)),
            ("missing room", _segment("!doesnotexist:test.local")),
            ("missing v12 room", _segment("!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
            ("real event", _segment(self.event_id)),
            ("other user", _segment(self.bob)),
            ("slash", "a%2Fb"),
            ("unicode", _segment("✓ünï€ødé 🎉")),
            ("long", LONG_SEGMENT),
            ("empty", ""),
            ("NUL", "a%00b"),
            ("invalid UTF-8", "%FF%FE"),
            ("surrogate", "%ED%A0%80"),
            ("bad escape", "%ZZ"),
        ]

    def fill(self, route: Route, overrides: dict[str, str] | None = None) -> str:
        """The route's path with plausible parameters; `overrides` by lower-cased name."""
        overrides = {k.lower(): v for k, v in (overrides or {}).items()}
        segments = route.pattern.split("/")[1:]
        for index, name in route.params:
            if name.lower() in overrides:
                segments[index] = overrides[name.lower()]
            else:
                segments[index] = self.good_value(name, route)
        return "/" + "/".join(segments)

    # -- bodies --------------------------------------------------------------------------------

    def body_keys(self, route: Route) -> tuple[dict[str, list[str]], bool]:
        """The keys to set wrong, and whether they are the route's own (worth one at a time).

        The spec's request body keys; for event routes the content keys of the event type; for
        profile fields the field itself; otherwise every body key the spec knows, all at once.
        """
        keys = self.spec.body_keys(route)
        if keys:
            return keys, True
        names = {name.lower() for _, name in route.params}
        if "eventtype" in names:
            event_type = "m.room.topic" if "/state/" in route.pattern else "m.room.message"
            return self.content_keys(event_type), True
        if "keyname" in names:
            return {"displayname": []}, True
        return dict.fromkeys(self.spec.all_body_keys() or ["x"], []), False

    def content_keys(self, event_type: str) -> dict[str, list[str]]:
        keys = dict(self.spec.event_content_keys(event_type))
        if event_type in ("m.room.message", "m.room.encrypted"):
            for name, sub in _MESSAGE_EXTRA_KEYS.items():
                keys.setdefault(name, sub)
        return keys

    def plausible(self, key: str) -> Any:
        value = _PLAUSIBLE_KEYS.get(key)
        if isinstance(value, str):
            return value.format(event_id=self.event_id, room_id=self.room_id, bob=self.bob)
        return value

    def wrong_bodies(
        self, keys: dict[str, list[str]], *, full: bool = True, one_by_one: bool = True
    ) -> Iterator[bytes]:
        values = _wrong_values()
        if not full:
            yield _encode(dict.fromkeys(keys or ["x"], None))
            return
        # Every key wrong at once.
        for _, value in values:
            yield _encode(dict.fromkeys(keys or ["x"], value))
        if not one_by_one:
            return
        # One key wrong at a time, its siblings plausible where we know a plausible value.
        base = {k: self.plausible(k) for k in keys if k in _PLAUSIBLE_KEYS}
        per_key = [v for label, v in values if label in _PER_KEY_LABELS]
        nested = [v for label, v in values if label in _NESTED_LABELS]
        for key, subkeys in keys.items():
            for value in per_key:
                yield _encode({**base, key: value})
            if not subkeys:
                continue
            sub_base = {k: self.plausible(k) for k in subkeys if k in _PLAUSIBLE_KEYS}
            for subkey in subkeys:
                for value in nested:
                    inner = {**sub_base, subkey: value}
                    yield _encode({**base, key: inner})
                    yield _encode({**base, key: [inner]})

    # -- the walk ------------------------------------------------------------------------------

    async def walk_route(self, route: Route, *, full: bool) -> None:
        has_body = route.method in _BODY_METHODS
        empty = b"{}" if has_body else None
        before = len(self.outcomes)

        await self.send(Probe(route.method, self.fill(route), empty, token=False))
        bad_token = f"{self.fill(route)}?access_token=not-a-token%00"
        await self.send(Probe(route.method, bad_token, empty, token=False))
        await self.send(Probe(route.method, self.fill(route), empty))

        bad_values = self.bad_values() if full else [("slash", "a%2Fb"), ("long", LONG_SEGMENT)]
        for _, name in route.params:
            for _, value in bad_values:
                await self.send(Probe(route.method, self.fill(route, {name: value}), empty))

        for query in self.queries(route, full):
            await self.send(Probe(route.method, f"{self.fill(route)}?{query}", empty))

        if has_body:
            raw = RAW_BODIES if full else RAW_BODIES[:2]
            for _, body in raw:
                await self.send(Probe(route.method, self.fill(route), body))
            keys, own = self.body_keys(route)
            for body in self.wrong_bodies(keys, full=full, one_by_one=own):
                await self.send(Probe(route.method, self.fill(route), body))

        await self.check_invariants(route, self.outcomes[before:])

    def queries(self, route: Route, full: bool) -> Iterator[str]:
        spec_params = self.spec.query_params(route)
        if not full:
            yield "&".join(f"{k}={v}" for k, v in GENERIC_QUERY[:6])
            return
        if route.method in ("GET", "HEAD"):
            for name, value in GENERIC_QUERY:
                yield f"{name}={value}"
        else:
            yield "&".join(f"{k}={v}" for k, v in GENERIC_QUERY)
        generic = {name for name, _ in GENERIC_QUERY}
        for name, kind in sorted(spec_params.items()):
            if name in generic:
                continue
            for value in _SPEC_QUERY_VALUES.get(kind, _SPEC_QUERY_DEFAULT):
                yield f"{_segment(name)}={value}"

    async def walk_typed_bodies(self, routes: Iterable[Route]) -> None:
        """Wrong-typed content for the event, account data and profile field types the server
        interprets, on the routes whose path names the type."""
        routes = list(routes)

        def with_params(*names: str) -> list[Route]:
            return [
                r
                for r in routes
                if r.method == "PUT" and set(names) <= {n.lower() for _, n in r.params}
            ]

        state_routes = [r for r in with_params("roomid", "eventtype") if "/state/" in r.pattern]
        send_routes = with_params("roomid", "eventtype", "txnid")
        data_routes = [r for r in with_params("type") if "/account_data/" in r.pattern]
        profile_routes = with_params("keyname")
        for event_type in self.spec.state_event_types():
            keys = self.content_keys(event_type)
            if not keys:
                continue
            # A fresh room per type: a wrongly accepted power levels event must not spoil the rest.
            room = await self.create_room()
            state_key = self.alice if event_type == "m.room.member" else ""
            for route in state_routes:
                overrides = {"eventtype": event_type, "roomid": _segment(room)}
                if any(name.lower() == "statekey" for _, name in route.params):
                    overrides["statekey"] = _segment(state_key)
                elif state_key:
                    continue
                path = self.fill(route, overrides)
                for body in self.wrong_bodies(keys):
                    await self.send(Probe("PUT", path, body))
        for event_type in _SEND_EVENT_TYPES:
            keys = self.content_keys(event_type) or {"x": []}
            for route in send_routes:
                for body in self.wrong_bodies(keys):
                    await self.send(Probe("PUT", self.fill(route, {"eventtype": event_type}), body))
        for data_type in _ACCOUNT_DATA_TYPES:
            # Types keyed by user ID (m.direct) have no fixed keys: use a user ID.
            keys = self.content_keys(data_type) or {self.bob: []}
            for route in data_routes:
                path = self.fill(route, {"type": data_type})
                for body in self.wrong_bodies(keys):
                    await self.send(Probe("PUT", path, body))
        for field_name in ("displayname", "avatar_url"):
            for route in profile_routes:
                path = self.fill(route, {"keyname": field_name})
                for body in self.wrong_bodies({field_name: []}):
                    await self.send(Probe("PUT", path, body))

    async def final_sweep(self, routes: list[Route]) -> None:
        """Every GET once more with good input: wrongly accepted writes must not break reads."""
        for route in sorted(routes, key=lambda r: (r.pattern, r.method)):
            if route.method == "GET":
                await self.send(Probe("GET", self.fill(route)))

    async def check_invariants(self, route: Route, outcomes: list[Outcome]) -> None:
        """After a route whose every answer was an error, alice must still be in her room."""
        status, content = await self.send_raw(Probe("GET", f"{V3}/joined_rooms"))
        if status == 401:
            await self.relogin(Probe(route.method, route.pattern))
            status, content = await self.send_raw(Probe("GET", f"{V3}/joined_rooms"))
        joined = status == 200 and self.room_id in json.loads(content).get("joined_rooms", [])
        if joined:
            return
        if all(o.status >= 400 for o in outcomes):
            self.notes.append(
                f"{route.method} {route.pattern}: alice left her room although every request "
                "to the route was refused"
            )
        await self.send_raw(Probe("POST", f"{V3}/join/{_segment(self.room_id)}", b"{}"))

    # -- the report ----------------------------------------------------------------------------

    def report(self, route_count: int, elapsed: float) -> None:
        """Every offending request, grouped by what the server logged while answering it."""
        bad = [o for o in self.outcomes if o.problem]
        if not bad and not self.notes:
            return
        groups: dict[tuple[str, ...], tuple[str, list[Outcome]]] = {}
        for o in bad:
            key = tuple(k for record in o.logs for k in _traceback_key(record)) or (o.problem,)
            logs = "\n".join(o.logs) if o.logs else "(nothing logged)"
            groups.setdefault(key, (logs, []))[1].append(o)
        lines = [
            f"{len(bad)} of {len(self.outcomes)} requests to {route_count} routes went wrong "
            f"in {elapsed:.1f}s, {len(groups)} distinct problems:"
        ]
        for number, (logs, outcomes) in enumerate(groups.values(), 1):
            lines.append(f"\n=== problem {number}: {len(outcomes)} requests; server log:")
            lines.append("    " + logs.replace("\n", "\n    "))
            for o in outcomes:
                p = o.probe
                lines.append(
                    f"  {p.method} {_short(p.path, 200)} token={'alice' if p.token else 'none'}\n"
                    f"    body: {_short(p.body, 200)}\n"
                    f"    -> {o.status} ({o.problem}): {_short(o.content, 300)}"
                )
        lines.extend(f"\n{note}" for note in self.notes)
        self.fail("\n".join(lines))


def _traceback_key(record: str) -> tuple[str, ...]:
    """What makes two logged errors the same: where they were raised, and the exception type."""
    lines = record.splitlines()
    frames = tuple(line.strip() for line in lines if line.strip().startswith("File "))
    if not frames:
        return (record,)
    return (*frames, lines[-1].split(":", 1)[0])


def _errcode(content: bytes) -> str | None:
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return body.get("errcode") if isinstance(body, dict) else None
