"""PostgreSQL as the store's backend, for installs that outgrow one process.

The store's statements are shared SQL with `?` placeholders; `PgConnection` gives them
the small part of aiosqlite's interface the store uses (execute as a cursor or a context
manager, executemany, rowcount), over one asyncpg connection. Write transactions take a
transaction-scoped advisory lock, so writers in different processes take turns as they
do on SQLite, and no read-then-write in the store needs rethinking. Full-text search
uses the `tsvector` column of migration 001 and its GIN index.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Self

import asyncpg

from bot.config import StorageSettings
from bot.models import Paper
from bot.store import Store
from bot.store.dialect import HIGHLIGHT_END, HIGHLIGHT_START, Dialect
from bot.store.rows import paper_from_row
from bot.store.search import SearchFilters, TextQuery
from bot.text import WORD

# Advisory lock keys (any 64-bit numbers, fixed for this application).
WRITE_LOCK_KEY = 0x61727869_76000001  # held by every write transaction
LEADER_LOCK_KEY = 0x61727869_76000002  # held by the leader's session while it leads

CONNECT_TIMEOUT_SECONDS = 10.0
_RANK_WEIGHTS = "'{0.1, 0.5, 0.25, 1.0}'"  # D, C (abstract), B (authors), A (title)
_HEADLINE = f"StartSel={HIGHLIGHT_START}, StopSel={HIGHLIGHT_END}, HighlightAll=true"


class DatabaseUnreachable(Exception):
    """The PostgreSQL server cannot be reached or refuses us; the message says why."""


class PostgresDialect(Dialect):
    name = "postgresql"
    begin = ("BEGIN", f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
    unique_violation = asyncpg.UniqueViolationError

    def json_elements(self, array: str, alias: str) -> str:
        return f"jsonb_array_elements_text(({array})::jsonb) AS {alias}(value)"

    def json_length(self, array: str) -> str:
        return f"jsonb_array_length(({array})::jsonb)"

    def joined(self, column: str, separator: str) -> str:
        return f"string_agg({column}, '{separator}')"

    def json_list(self, *values: str) -> str:
        return f"json_build_array({', '.join(values)})::text"

    def json_value(self, text: str) -> str:
        return f"({text})::json"


POSTGRES = PostgresDialect()


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """`?` placeholders (outside quoted text) as PostgreSQL's `$1`, `$2`, ..."""
    out, number, quote = [], 0, ""
    for char in sql:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "?":
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)


_RETURNS_ROWS = re.compile(r"^\s*\(?\s*(SELECT|WITH|VALUES|SHOW)\b|\bRETURNING\b", re.I)


class PgCursor:
    def __init__(self, rows: Sequence[Any], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    async def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchall(self) -> list[Any]:
        rest = list(self._rows[self._next :])
        self._next = len(self._rows)
        return rest

    async def __aiter__(self) -> AsyncIterator[Any]:
        for row in await self.fetchall():
            yield row


class _Pending:
    """What `execute` returns: awaitable, or `async with ... as cursor`, like aiosqlite's."""

    def __init__(self, running: Any) -> None:
        self._running = running

    def __await__(self) -> Any:
        return self._running.__await__()

    async def __aenter__(self) -> PgCursor:
        cursor: PgCursor = await self._running
        return cursor

    async def __aexit__(self, *exc: object) -> None:
        return None


class PgConnection:
    """One asyncpg connection shared by the store's tasks, one statement at a time. A
    connection the server dropped (a restart, a failover) is replaced on the next
    statement; a read or a BEGIN that met the drop is tried once more on the new one,
    anything inside a transaction fails as it must (its transaction is gone)."""

    def __init__(self, conn: asyncpg.Connection, url: str) -> None:
        self.raw = conn
        self._url = url
        self._lock = asyncio.Lock()

    def execute(self, sql: str, parameters: Iterable[Any] = (), /) -> _Pending:
        return _Pending(self._execute(sql, tuple(parameters)))

    async def _execute(self, sql: str, parameters: tuple[Any, ...]) -> PgCursor:
        query = translate(sql)
        rows = _RETURNS_ROWS.search(query) is not None
        async with self._lock:
            for attempt in range(2):
                await self._reopen_if_closed()
                in_transaction = self.raw.is_in_transaction()
                try:
                    if rows:
                        found = await self.raw.fetch(query, *parameters)
                        return PgCursor(found, len(found))
                    status = await self.raw.execute(query, *parameters)
                    break
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                    if self.raw.is_closed():
                        safe = not in_transaction and _repeatable(query)
                        if attempt == 0 and safe:
                            continue
                        raise DatabaseUnreachable(f"lost the PostgreSQL connection: {exc}") from exc
                    await self._end_failed_transaction()
                    raise
        count = status.rsplit(" ", 1)[-1]
        return PgCursor((), int(count) if count.isdigit() else -1)

    async def _reopen_if_closed(self) -> None:
        if self.raw.is_closed():
            self.raw = await connect(self._url)

    async def _end_failed_transaction(self) -> None:
        # PostgreSQL refuses every statement after a failed one until ROLLBACK; other
        # tasks share this connection, so end it now rather than when the writer's
        # handler gets round to it (its ROLLBACK then finds nothing to undo).
        if not self.raw.is_closed() and self.raw.is_in_transaction():
            await self.raw.execute("ROLLBACK")

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> None:
        rows = [tuple(row) for row in parameters]
        if not rows:
            return
        async with self._lock:
            await self._reopen_if_closed()
            try:
                await self.raw.executemany(translate(sql), rows)
            except asyncpg.PostgresError:
                await self._end_failed_transaction()
                raise

    async def execute_script(self, sql: str) -> None:
        """Several statements in one go (a migration): the simple query protocol."""
        async with self._lock:
            await self._reopen_if_closed()
            try:
                await self.raw.execute(sql)
            except asyncpg.PostgresError:
                await self._end_failed_transaction()
                raise

    async def close(self) -> None:
        await self.raw.close()


def _repeatable(query: str) -> bool:
    """A statement that changes nothing by itself: safe to send again after a drop."""
    head = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
    return head in {"SELECT", "BEGIN", "ROLLBACK", "WITH", "VALUES", "SHOW"} and not (
        head == "WITH" and re.search(r"\b(INSERT|UPDATE|DELETE)\b", query, re.I)
    )


async def connect(url: str) -> asyncpg.Connection:
    """A connection, or DatabaseUnreachable with one line saying why."""
    where = StorageSettings(url).display_name
    try:
        return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    except asyncpg.InvalidPasswordError:
        raise DatabaseUnreachable(f"{where} refused the user name or password") from None
    except asyncpg.InvalidCatalogNameError:
        raise DatabaseUnreachable(f"{where}: no such database (create it first)") from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise DatabaseUnreachable(f"{where} refused the connection: {exc}") from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = str(exc) or type(exc).__name__
        raise DatabaseUnreachable(f"cannot connect to {where}: {reason}") from None
    except ValueError as exc:  # a malformed URL
        raise DatabaseUnreachable(f"DATABASE_URL is not a usable PostgreSQL URL: {exc}") from None


def tsquery_text(query: TextQuery) -> str:
    """`to_tsquery` input: each phrase's words in order (`<->`), all terms (`&`) or any
    (`|`), and the author's words in the authors' field (weight B). Every word is quoted,
    so nothing the user typed is read as an operator."""

    def word(text: str, weight: str = "") -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'" + weight

    terms = [
        "(" + " <-> ".join(word(w) for w in term.split()) + ")"
        for term in query.terms
        if term.split()
    ]
    expression = (" | " if query.any_term else " & ").join(terms)
    if query.any_term and len(terms) > 1:
        expression = f"({expression})"
    if query.author:
        names = [word(w, ":B") for w in WORD.findall(query.author)][:8]
        author = " & ".join(names)
        expression = f"{expression} & {author}" if expression and author else expression or author
    return expression


_TSQUERY = "to_tsquery('papers_text', ?)"


class PostgresStore(Store):
    """The store on PostgreSQL. Search keeps SQLite's behaviour (words all required, then
    any; phrases; ranking title above abstract above authors) over `tsvector`."""

    _pg: PgConnection

    @classmethod
    async def connect(cls, url: str, *, migrate: bool = True) -> Self:
        raw = await connect(url)
        conn = PgConnection(raw, url)
        try:
            store = cls(conn, POSTGRES)
            store._pg = conn
            if migrate:
                await store.migrate()
            else:
                await store.check_schema_current()
        except BaseException:
            await raw.close()
            raise
        return store

    async def _has_table(self, name: str) -> bool:
        async with self._conn.execute("SELECT to_regclass(?) IS NOT NULL", (name,)) as cur:
            row = await cur.fetchone()
        return bool(row[0])

    async def _run_script(self, conn: Any, sql: str) -> None:
        await self._pg.execute_script(sql)

    async def _rollback(self) -> None:
        await self._conn.execute("ROLLBACK")

    # -- search -------------------------------------------------------------------------

    async def nth_newest_match(
        self, query: TextQuery, filters: SearchFilters, n: int
    ) -> int | None:
        where, params = filters.sql()
        async with self._conn.execute(
            f"SELECT p.id FROM papers p WHERE p.tsv @@ {_TSQUERY}{where}"
            " ORDER BY p.id DESC LIMIT 1 OFFSET ?",
            [tsquery_text(query), *params, n - 1],
        ) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    async def search_ranked(
        self,
        query: TextQuery,
        filters: SearchFilters,
        limit: int,
        offset: int,
        min_rowid: int | None = None,
    ) -> list[Paper]:
        where, params = filters.sql()
        if min_rowid is not None:
            where += " AND p.id >= ?"
            params.append(min_rowid)
        async with self._conn.execute(
            f"SELECT {self._paper_columns} FROM"
            f" (SELECT p.id, ts_rank({_RANK_WEIGHTS}, p.tsv, q) AS score"
            f"   FROM papers p, {_TSQUERY} q WHERE p.tsv @@ q{where}"
            "   ORDER BY score DESC, p.id DESC LIMIT ? OFFSET ?) m"
            " JOIN papers p ON p.id = m.id ORDER BY m.score DESC, p.id DESC",
            [tsquery_text(query), *params, limit, offset],
        ) as cur:
            return [paper_from_row(row) for row in await cur.fetchall()]

    async def search_reference_bm25(self, query: TextQuery, limit: int) -> list[str]:
        """Plain ts_rank over every match: the baseline `bench/` compares against."""
        async with self._conn.execute(
            f"SELECT p.arxiv_id FROM papers p, {_TSQUERY} q WHERE p.tsv @@ q"
            f" ORDER BY ts_rank({_RANK_WEIGHTS}, p.tsv, q) DESC LIMIT ?",
            (tsquery_text(query), limit),
        ) as cur:
            return [row[0] for row in await cur.fetchall()]

    async def count_matches(self, query: TextQuery, cap: int) -> int:
        async with self._conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM papers p WHERE p.tsv @@ {_TSQUERY} LIMIT ?) c",
            (tsquery_text(query), cap),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def newest_matches_marked(
        self, query: TextQuery, filters: SearchFilters, limit: int, with_abstract: bool
    ) -> list[tuple[int, str, str, str | None]]:
        where, params = filters.sql()
        abstract = "ts_headline('papers_text', p.abstract, q, ?)" if with_abstract else "NULL"
        text = tsquery_text(query)
        # Marks are drawn for the rows returned only: the newest matches are picked first.
        async with self._conn.execute(
            "SELECT p.id, ts_headline('papers_text', p.title, q, ?),"
            f" ts_headline('papers_text', p.authors, q, ?), {abstract}"
            f" FROM (SELECT p.id FROM papers p WHERE p.tsv @@ {_TSQUERY}{where}"
            "   ORDER BY p.id DESC LIMIT ?) m"
            f" JOIN papers p ON p.id = m.id CROSS JOIN {_TSQUERY} q ORDER BY p.id DESC",
            [
                _HEADLINE,
                _HEADLINE,
                *([_HEADLINE] if with_abstract else []),
                text,
                *params,
                limit,
                text,
            ],
        ) as cur:
            return [(row[0], row[1], row[2], row[3]) for row in await cur.fetchall()]

    async def backup_to(self, target: Any) -> None:
        raise BackupOnPostgres(
            "backup copies SQLite databases; on PostgreSQL use pg_dump"
            " (README, 'Backups on PostgreSQL')"
        )


class BackupOnPostgres(Exception):
    """`backup` was asked of a PostgreSQL store."""
