"""Everything specific to SQLite's flavour of SQL that more than one statement relies on.

A second backend (PostgreSQL) would provide its own version of these.
"""

from __future__ import annotations

import sqlite3

# Connection settings: WAL for readers beside the writer, foreign keys enforced, and fewer
# WAL checkpoints with a bigger page cache (FTS5 segment merges rewrite many pages, and
# each checkpoint copies them once more).
PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA wal_autocheckpoint = 10000",
    "PRAGMA cache_size = -32768",
)

# Title matches count most, then authors, then the abstract.
BM25 = "bm25(papers_fts, 4.0, 1.0, 2.0)"


def split_statements(sql: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies whole."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in current.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {current[:80]!r}")
    return statements
