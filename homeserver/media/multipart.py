"""multipart/mixed, as federation media downloads use it (RFC 2046 section 5.1), and the file
name in a Content-Disposition header (RFC 6266, with RFC 5987's filename*).

A federation download answers with exactly two parts: JSON metadata (`{}` for now), then the
media with its own Content-Type and Content-Disposition, or a Location to fetch it from.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

_BOUNDARY_PARAM = re.compile(r';\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;"]{1,70}))', re.I)
_FILENAME_STAR = re.compile(r";\s*filename\*\s*=\s*([^;\s]+)", re.I)
_FILENAME = re.compile(r';\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s"]+))', re.I)


class MultipartError(ValueError):
    """The body is not the two-part multipart/mixed that federation media is."""


@dataclass(frozen=True)
class MediaPart:
    """The second part of a federation download: the bytes, or where to fetch them."""

    metadata: dict[str, Any]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def build(metadata: dict[str, Any], part_headers: dict[str, str], body: bytes) -> tuple[str, bytes]:
    """(Content-Type, body) of a two-part multipart/mixed answer."""
    boundary = secrets.token_hex(16)
    delimiter = b"--" + boundary.encode("ascii")
    head = "".join(f"{name}: {value}\r\n" for name, value in part_headers.items())
    out = b"".join(
        (
            delimiter,
            b"\r\nContent-Type: application/json\r\n\r\n",
            json.dumps(metadata).encode("utf-8"),
            b"\r\n",
            delimiter,
            b"\r\n",
            head.encode("utf-8"),
            b"\r\n",
            body,
            b"\r\n",
            delimiter,
            b"--\r\n",
        )
    )
    return f"multipart/mixed; boundary={boundary}", out


def parse(content_type: str | None, body: bytes) -> MediaPart:
    """The metadata and the media part of a federation download; MultipartError if it is not
    a multipart/mixed body with a JSON object first and one more part after it."""
    if not content_type or content_type.split(";", 1)[0].strip().lower() != "multipart/mixed":
        raise MultipartError(f"not multipart/mixed: {content_type!r}")
    match = _BOUNDARY_PARAM.search(content_type)
    if match is None:
        raise MultipartError("multipart/mixed without a boundary")
    delimiter = b"\r\n--" + (match.group(1) or match.group(2)).encode("ascii", "replace")
    # A delimiter is CRLF "--" boundary; the first may also start the body.
    segments = (b"\r\n" + body).split(delimiter)
    parts = []
    closed = False
    for segment in segments[1:]:  # segments[0] is the preamble
        if segment.startswith(b"--"):
            closed = True
            break
        parts.append(_part(segment))
    if not closed or len(parts) < 2:
        raise MultipartError(f"expected two parts and a closing delimiter, found {len(parts)}")
    meta_headers, meta_body = parts[0]
    meta_type = meta_headers.get("content-type", "")
    if meta_type.split(";", 1)[0].strip().lower() != "application/json":
        raise MultipartError(f"the first part is {meta_type!r}, not application/json")
    try:
        metadata = json.loads(meta_body)
    except (ValueError, UnicodeDecodeError):
        raise MultipartError("the first part is not JSON") from None
    if not isinstance(metadata, dict):
        raise MultipartError("the first part is not a JSON object")
    headers, content = parts[1]
    return MediaPart(metadata, headers, content)


def _part(segment: bytes) -> tuple[dict[str, str], bytes]:
    # The rest of the delimiter line (transport padding), then headers, a blank line, the body.
    end_of_line = segment.find(b"\r\n")
    if end_of_line < 0 or segment[:end_of_line].strip(b" \t"):
        raise MultipartError("malformed delimiter line")
    rest = segment[end_of_line + 2 :]
    if rest.startswith(b"\r\n"):
        return {}, rest[2:]
    end_of_headers = rest.find(b"\r\n\r\n")
    if end_of_headers < 0:
        raise MultipartError("a part without the blank line after its headers")
    headers: dict[str, str] = {}
    for line in rest[:end_of_headers].split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise MultipartError("malformed part header")
        headers[name.strip().decode("latin-1").lower()] = _decode(value.strip())
    return headers, rest[end_of_headers + 4 :]


def _decode(value: bytes) -> str:
    # Header values are meant to be ASCII; UTF-8 file names are common enough to allow.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def filename_from_disposition(disposition: str | None) -> str | None:
    """The file name a Content-Disposition header gives, preferring RFC 5987's filename*."""
    if not disposition:
        return None
    star = _FILENAME_STAR.search(disposition)
    if star is not None:
        charset, quote_, encoded = star.group(1).partition("'")
        if quote_:
            _language, _, encoded = encoded.partition("'")
            try:
                name = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                name = None
            if name:
                return name
    plain = _FILENAME.search(disposition)
    if plain is None:
        return None
    if plain.group(1) is not None:
        name = re.sub(r"\\(.)", r"\1", plain.group(1))
    else:
        name = plain.group(2)
    return name or None
