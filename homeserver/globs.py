"""Glob-style patterns as the spec's appendix defines them: `*` any run of characters, `?` one."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=4096)
def glob_to_regex(glob: str) -> re.Pattern[str]:
    """A case-insensitive regex matching the whole of a string against `glob`.

    Use it with `fullmatch`; compiled patterns are cached because the same globs (ACL entries,
    push rule patterns) are matched again and again.
    """
    parts = []
    for char in glob:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)
