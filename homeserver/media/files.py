"""The content store: files under media_store_path, named by the SHA-256 of their bytes.

Naming by content means identical uploads (and identical thumbnails) are stored once, and a
file never changes once written, so readers need no locking. Every method that touches the
disk runs in a thread, off the reactor.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from typing import Any

from twisted.internet import threads

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class ContentStore:
    def __init__(self, root: str, reactor: Any) -> None:
        self.root = os.path.abspath(root)
        self.reactor = reactor
        self._content_dir = os.path.join(self.root, "content")
        # Files are written here first and renamed into place, so a crash or a concurrent
        # reader never sees half a file under its final name.
        self._tmp_dir = os.path.join(self.root, "tmp")

    def path_for(self, sha256: str) -> str:
        """Where the content with this hash lives: content/ab/cd/abcd…, to keep directories small."""
        if not _SHA256_HEX.match(sha256):
            # Hashes come from our own database; anything else is a bug, never a path.
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return os.path.join(self._content_dir, sha256[:2], sha256[2:4], sha256)

    async def write(self, data: bytes) -> str:
        """Stores `data` unless the same bytes are already there; returns its SHA-256."""
        return await self._in_thread(self.write_blocking, data)

    async def read(self, sha256: str) -> bytes:
        return await self._in_thread(self.read_blocking, sha256)

    def write_blocking(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha256)
        if os.path.exists(path):
            return sha256
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.makedirs(self._tmp_dir, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(dir=self._tmp_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            # Atomic: two writers of the same content both end with the same complete file.
            os.replace(tmp_path, path)
        except BaseException:
            _remove_quietly(tmp_path)
            raise
        return sha256

    def read_blocking(self, sha256: str) -> bytes:
        with open(self.path_for(sha256), "rb") as f:
            return f.read()

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), fn, *args
        )


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
