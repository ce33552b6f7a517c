"""Running `async def` test methods under trial."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from twisted.internet import defer


def async_test(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., defer.Deferred]:
    @wraps(fn)
    def wrapper(self: Any) -> defer.Deferred:
        return defer.ensureDeferred(fn(self))

    return wrapper
