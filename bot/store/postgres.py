"""PostgreSQL as the store's backend, for installs that outgrow one process.

The store's statements are shared SQL with `?` placeholders; `PgDatabase` and
`PgTransaction` give them the small part of aiosqlite's interface the store uses (execute
as a cursor or a context manager, executemany, rowcount), over a small asyncpg pool.
Write transactions take a
transaction-scoped advisory lock, so writers in different processes take turns as they
do on SQLite, and no read-then-write in the store needs rethinking. Full-text search
uses the `tsvector` column of migration 001 and its GIN index.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
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


async def _run(raw: asyncpg.Connection, query: str, parameters: tuple[Any, ...]) -> PgCursor:
    if _RETURNS_ROWS.search(query):
        found = await raw.fetch(query, *parameters)
        return PgCursor(found, len(found))
    status = await raw.execute(query, *parameters)
    count = status.rsplit(" ", 1)[-1]
    return PgCursor((), int(count) if count.isdigit() else -1)


_DROPPED = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError)


class PgTransaction:
    """One transaction's connection, held from BEGIN to COMMIT. A connection the server
    drops mid-transaction fails every later statement: the transaction is gone, and
    nothing after the drop may run outside it."""

    def __init__(self, raw: asyncpg.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Iterable[Any] = (), /) -> _Pending:
        return _Pending(self._execute(translate(sql), tuple(parameters)))

    async def _execute(self, query: str, parameters: tuple[Any, ...]) -> PgCursor:
        try:
            return await _run(self.raw, query, parameters)
        except _DROPPED as exc:
            raise DatabaseUnreachable(f"lost the PostgreSQL connection: {exc}") from exc

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> None:
        rows = [tuple(row) for row in parameters]
        if rows:
            try:
                await self.raw.executemany(translate(sql), rows)
            except _DROPPED as exc:
                raise DatabaseUnreachable(f"lost the PostgreSQL connection: {exc}") from exc

    async def execute_script(self, sql: str) -> None:
        """Several statements in one go (a migration): the simple query protocol."""
        await self.raw.execute(sql)

    async def close(self) -> None:
        return None


class PgDatabase:
    """The store's connection to PostgreSQL: a small pool. A statement outside a
    transaction runs on any pooled connection, so readers never wait for a writer, nor
    see (or break) its transaction; a transaction takes a connection of its own. A read
    that meets a dropped connection is tried once more on a fresh one."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def execute(self, sql: str, parameters: Iterable[Any] = (), /) -> _Pending:
        return _Pending(self._execute(translate(sql), tuple(parameters)))

    async def _execute(self, query: str, parameters: tuple[Any, ...]) -> PgCursor:
        for attempt in range(2):
            try:
                async with self.pool.acquire() as raw:
                    return await _run(raw, query, parameters)
            except _DROPPED as exc:
                if attempt == 0 and _repeatable(query):
                    continue
                raise DatabaseUnreachable(f"lost the PostgreSQL connection: {exc}") from exc
        raise AssertionError("unreachable")

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> None:
        async with self.pool.acquire() as raw:
            await PgTransaction(raw).executemany(sql, parameters)

    async def close(self) -> None:
        await asyncio.wait_for(self.pool.close(), 10)


def _repeatable(query: str) -> bool:
    """A statement that changes nothing: safe to send again after a drop."""
    head = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
    return head in {"SELECT", "VALUES", "SHOW"}


# Store connections: the server notices a client machine that vanished (and frees its
# locks) within a minute, a transaction left idle is ended, and a writer that cannot get
# the write lock for a minute gives up with an error rather than hang. Every statement is
# planned for its own parameters: asyncpg prepares statements, and PostgreSQL's generic
# plan for "newest matches of $1" cannot tell a word in 90% of papers from a rare one
# (it sorted every match of "model": 5 s at 1M papers, against 50 ms planned for it).
SESSION_SETTINGS = {
    "plan_cache_mode": "force_custom_plan",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "idle_in_transaction_session_timeout": "60000",
    "lock_timeout": "60000",
}
POOL_SIZE = 4


async def connect(url: str, **options: Any) -> Any:
    """A connection (or, with `pool=True`, a pool), or DatabaseUnreachable with one line
    saying why."""
    where = StorageSettings(url).display_name
    try:
        if options.pop("pool", False):
            return await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=POOL_SIZE,
                timeout=CONNECT_TIMEOUT_SECONDS,
                server_settings=SESSION_SETTINGS,
                **options,
            )
        return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS, **options)
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

    _db: PgDatabase

    @classmethod
    async def connect(cls, url: str, *, migrate: bool | None = True) -> Self:
        """Connected and migrated (True), checked to be current (False), or as it is
        (None: `migrate-to` looks before it writes)."""
        database = PgDatabase(await connect(url, pool=True))
        try:
            store = cls(database, POSTGRES)
            store._db = database
            if migrate:
                await store.migrate()
            elif migrate is not None:
                await store.check_schema_current()
        except BaseException:
            await database.close()
            raise
        return store

    @asynccontextmanager
    async def _transaction_connection(self) -> AsyncIterator[Any]:
        try:
            async with self._db.pool.acquire() as raw:
                yield PgTransaction(raw)
        except _DROPPED as exc:  # acquiring it, or giving back a dropped one
            raise DatabaseUnreachable(f"lost the PostgreSQL connection: {exc}") from exc

    async def _has_table(self, name: str) -> bool:
        async with self._conn.execute("SELECT to_regclass(?) IS NOT NULL", (name,)) as cur:
            row = await cur.fetchone()
        return bool(row[0])

    async def _run_script(self, conn: Any, sql: str) -> None:
        await conn.execute_script(sql)

    async def _rollback(self, conn: Any) -> None:
        if not conn.raw.is_closed():  # a dropped connection took its transaction along
            await conn.raw.execute("ROLLBACK")

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


class LeaderLock:
    """PostgreSQL's session-level advisory lock on a connection of its own: held while
    this process leads. The server frees it the moment that connection ends; keepalives
    make it notice a client machine that vanished within about half a minute."""

    def __init__(self, url: str, key: int = LEADER_LOCK_KEY) -> None:
        self._url = url
        self._key = key
        self._raw: Any = None

    async def try_take(self) -> bool:
        """True once held; False while another session holds it. Raises
        DatabaseUnreachable when the server cannot be reached."""
        try:
            if self._raw is None or self._raw.is_closed():
                self._raw = await connect(self._url, server_settings=_LOCK_KEEPALIVE)
            return bool(await self._raw.fetchval("SELECT pg_try_advisory_lock($1)", self._key))
        except (*_DROPPED, asyncpg.PostgresError) as exc:
            self.drop()
            raise DatabaseUnreachable(f"cannot ask for leadership: {exc}") from exc

    async def still_held(self) -> bool:
        """Whether the lock's connection is alive (and so the lock held). The caller
        bounds how long it may take: cancelled, the connection is given up too."""
        try:
            await self._raw.fetchval("SELECT 1")
            return True
        except (*_DROPPED, asyncpg.PostgresError, AttributeError):
            self.drop()
            return False
        except asyncio.CancelledError:
            self.drop()
            raise

    def drop(self) -> None:
        if self._raw is not None:
            self._raw.terminate()
        self._raw = None

    async def release(self) -> None:
        if self._raw is not None and not self._raw.is_closed():
            try:
                await asyncio.wait_for(self._raw.close(), 5)
            except (*_DROPPED, asyncpg.PostgresError, TimeoutError):
                self._raw.terminate()
        self._raw = None


_LOCK_KEEPALIVE = {k: v for k, v in SESSION_SETTINGS.items() if k.startswith("tcp_")}


class BackupOnPostgres(Exception):
    """`backup` was asked of a PostgreSQL store."""
