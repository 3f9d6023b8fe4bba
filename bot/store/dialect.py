"""Everything specific to SQLite's flavour of SQL, in one place.

The statements elsewhere in the store are written in the SQL SQLite and PostgreSQL share
(`ON CONFLICT ... DO UPDATE SET x = excluded.x` and `ON CONFLICT DO NOTHING` included,
`?` placeholders, casts where a parameter's type cannot be inferred); what differs is
named here: connection settings, opening a write transaction, JSON functions, the
unique-violation error (`Dialect`), and SQLite's full-text search (FTS5 query syntax,
MATCH, bm25, highlight). PostgreSQL's versions are in `bot.store.postgres`.
"""

from __future__ import annotations

import sqlite3

from bot.text import WORD

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


class Dialect:
    """SQL that differs between backends, as the statements elsewhere use it. This class
    is SQLite's; `bot.store.postgres` subclasses it for PostgreSQL."""

    name = "sqlite"
    # Statements that open a write transaction. IMMEDIATE takes the write lock at once,
    # so transactions from other processes queue rather than fail halfway.
    begin: tuple[str, ...] = ("BEGIN IMMEDIATE",)
    unique_violation: type[Exception] = sqlite3.IntegrityError

    def json_elements(self, array: str, alias: str) -> str:
        """A FROM item with one row per element of a JSON array, its value in `alias.value`."""
        return f"json_each({array}) {alias}"

    def json_length(self, array: str) -> str:
        return f"json_array_length({array})"

    def joined(self, column: str, separator: str) -> str:
        """An aggregate joining the group's values into one string."""
        return f"group_concat({column}, '{separator}')"

    def json_list(self, *values: str) -> str:
        return f"json_array({', '.join(values)})"

    def json_value(self, text: str) -> str:
        """Stored JSON text used as a JSON value inside another JSON expression."""
        return f"json({text})"


SQLITE = Dialect()


# -- full-text search ---------------------------------------------------------------------

FTS_MATCH = "papers_fts MATCH ?"
HIGHLIGHT_START, HIGHLIGHT_END = "\x01", "\x02"


def highlight(column: int) -> str:
    """The column's text with matched terms between HIGHLIGHT_START and HIGHLIGHT_END."""
    start, end = ord(HIGHLIGHT_START), ord(HIGHLIGHT_END)
    return f"highlight(papers_fts, {column}, char({start}), char({end}))"


def fts_quote(term: str) -> str:
    """A term or phrase as an FTS5 string: no operator or column syntax can get through."""
    return '"' + term.replace('"', '""') + '"'


def fts_match(terms: list[str], author: str | None = None, any_term: bool = False) -> str:
    """FTS5 query text: every term (or any, with `any_term`), and the author's words."""
    parts = [fts_quote(t) for t in terms]
    expression = (" OR " if any_term else " AND ").join(parts)
    if any_term and len(parts) > 1:
        expression = f"({expression})"
    if author:
        names = [fts_quote(w) for w in WORD.findall(author)][:8]
        author_part = " AND ".join(f"authors : {n}" for n in names)
        expression = f"{expression} AND {author_part}" if expression else author_part
    return expression
