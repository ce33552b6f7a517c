"""Matrix errors: raised anywhere, rendered by the HTTP layer as {"errcode", "error"}."""

from __future__ import annotations

from typing import Any


class Codes:
    FORBIDDEN = "M_FORBIDDEN"
    UNKNOWN_TOKEN = "M_UNKNOWN_TOKEN"
    MISSING_TOKEN = "M_MISSING_TOKEN"
    BAD_JSON = "M_BAD_JSON"
    NOT_JSON = "M_NOT_JSON"
    NOT_FOUND = "M_NOT_FOUND"
    LIMIT_EXCEEDED = "M_LIMIT_EXCEEDED"
    UNRECOGNIZED = "M_UNRECOGNIZED"
    UNKNOWN = "M_UNKNOWN"
    UNAUTHORIZED = "M_UNAUTHORIZED"
    USER_DEACTIVATED = "M_USER_DEACTIVATED"
    USER_IN_USE = "M_USER_IN_USE"
    INVALID_USERNAME = "M_INVALID_USERNAME"
    ROOM_IN_USE = "M_ROOM_IN_USE"
    INVALID_ROOM_STATE = "M_INVALID_ROOM_STATE"
    UNSUPPORTED_ROOM_VERSION = "M_UNSUPPORTED_ROOM_VERSION"
    INCOMPATIBLE_ROOM_VERSION = "M_INCOMPATIBLE_ROOM_VERSION"
    BAD_STATE = "M_BAD_STATE"
    GUEST_ACCESS_FORBIDDEN = "M_GUEST_ACCESS_FORBIDDEN"
    CAPTCHA_NEEDED = "M_CAPTCHA_NEEDED"
    MISSING_PARAM = "M_MISSING_PARAM"
    INVALID_PARAM = "M_INVALID_PARAM"
    TOO_LARGE = "M_TOO_LARGE"
    EXCLUSIVE = "M_EXCLUSIVE"
    THREEPID_AUTH_FAILED = "M_THREEPID_AUTH_FAILED"
    THREEPID_IN_USE = "M_THREEPID_IN_USE"
    THREEPID_NOT_FOUND = "M_THREEPID_NOT_FOUND"
    THREEPID_MEDIUM_NOT_SUPPORTED = "M_THREEPID_MEDIUM_NOT_SUPPORTED"
    WEAK_PASSWORD = "M_WEAK_PASSWORD"
    INVALID_SIGNATURE = "M_INVALID_SIGNATURE"
    USER_LOCKED = "M_USER_LOCKED"
    NOT_YET_UPLOADED = "M_NOT_YET_UPLOADED"


class MatrixError(Exception):
    """An error with an HTTP status and a Matrix errcode, safe to show to the client."""

    def __init__(
        self,
        http_status: int,
        errcode: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.errcode = errcode
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def to_json(self) -> dict[str, Any]:
        body = {"errcode": self.errcode, "error": self.message}
        body.update(self.extra)
        return body


class AuthError(MatrixError):
    """The rules of a room refuse an event (403 M_FORBIDDEN unless said otherwise)."""

    def __init__(self, message: str, errcode: str = Codes.FORBIDDEN, http_status: int = 403):
        super().__init__(http_status, errcode, message)


class LimitExceeded(MatrixError):
    def __init__(self, retry_after_ms: int) -> None:
        seconds = max(1, (retry_after_ms + 999) // 1000)
        super().__init__(
            429,
            Codes.LIMIT_EXCEEDED,
            "Too many requests",
            extra={"retry_after_ms": retry_after_ms},
            headers={"Retry-After": str(seconds)},
        )


class InteractiveAuthRequired(Exception):
    """401 with the user-interactive auth flows; the body is not an error object."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__("interactive auth required")
        self.body = body


def bad_json(message: str) -> MatrixError:
    return MatrixError(400, Codes.BAD_JSON, message)


def not_found(message: str) -> MatrixError:
    return MatrixError(404, Codes.NOT_FOUND, message)


def forbidden(message: str) -> MatrixError:
    return MatrixError(403, Codes.FORBIDDEN, message)
