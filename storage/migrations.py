"""Numbered schema migrations, applied in order at start-up.

`storage/schema/NNN_name.sql` runs on every engine; `NNN_name.sqlite.sql` or
`NNN_name.postgres.sql` run only on that engine (for the rare statement that cannot be written
portably, such as full-text search). Within a number, portable files run before engine-specific
ones. Each applied file is recorded by name in `applied_migrations`, so a migration added with a
number below ones already applied (work that landed in another order) still runs.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from storage.database import Database, Txn

logger = logging.getLogger(__name__)

SCHEMA_DIR = Path(__file__).parent / "schema"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+(?:\.(sqlite|postgres))?\.sql$")


def migrations_for(engine_name: str) -> list[Path]:
    """Every migration file that applies to the engine, in the order they run."""
    found = []
    for path in SCHEMA_DIR.iterdir():
        match = _NAME.match(path.name)
        if match and match.group(2) in (None, engine_name):
            found.append((int(match.group(1)), match.group(2) is not None, path.name, path))
    return [path for *_, path in sorted(found)]


def _statements(script: str) -> list[str]:
    # Migrations contain no semicolons inside literals, so a split is enough.
    without_comments = "\n".join(
        line for line in script.splitlines() if not line.strip().startswith("--")
    )
    return [s.strip() for s in without_comments.split(";") if s.strip()]


def _apply(txn: Txn, engine_name: str) -> list[str]:
    txn.execute("CREATE TABLE IF NOT EXISTS applied_migrations (name TEXT PRIMARY KEY)")
    applied = {row[0] for row in txn.query("SELECT name FROM applied_migrations")}
    done = []
    for path in migrations_for(engine_name):
        if path.name in applied:
            continue
        for statement in _statements(path.read_text()):
            txn.execute(statement)
        txn.execute("INSERT INTO applied_migrations (name) VALUES (?)", (path.name,))
        done.append(path.name)
    return done


def apply_migrations(database: Database) -> None:
    """Blocking: runs before the reactor starts serving."""
    done = database.run_blocking(_apply, database.engine_name)
    if done:
        logger.info("applied schema migrations %s", done)
