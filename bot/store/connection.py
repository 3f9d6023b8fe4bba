"""Opening the database, transactions, migrations and backups: what every part of the
store stands on. Its concern-specific parts (papers, search, ...) are mixins over this."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, Self

import aiosqlite

from bot.store.dialect import PRAGMAS, SQLITE, Dialect, split_statements
from bot.store.rows import paper_columns
from bot.store.times import now_iso

log = logging.getLogger("bot.store")

_MIGRATION_NAME = re.compile(r"^(\d{3,})_[\w\-]+\.sql$")


class DatabaseTooNewError(Exception):
    """The database was migrated by a newer release than this code."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def _migrations_dir() -> Path:
    # In a wheel the SQL ships inside the package; in a checkout it sits at the repo root.
    packaged = Path(str(resources.files("bot"))) / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


def load_migrations(directory: Path | None = None, dialect: str = "sqlite") -> list[Migration]:
    """The numbered migrations; for PostgreSQL, a file of the same number under
    `postgresql/` replaces one whose SQL differs there."""
    directory = directory or _migrations_dir()
    shared = _read_migrations(directory)
    if dialect == "sqlite":
        return list(shared)
    own = {m.version: m for m in _read_migrations(directory / dialect, allow_empty=True)}
    unknown = set(own) - {m.version for m in shared}
    if unknown:
        raise RuntimeError(f"{dialect} migrations {sorted(unknown)} have no shared counterpart")
    return [own.get(m.version, m) for m in shared]


@functools.cache
def _read_migrations(directory: Path, allow_empty: bool = False) -> tuple[Migration, ...]:
    """The files never change while the process runs: read them once."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), path.stem, path.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number in {directory}")
    if not found and not allow_empty:
        raise RuntimeError(f"no migrations found in {directory}")
    return tuple(found)


class Connection(Protocol):
    """What the store asks of a connection: aiosqlite's, or `bot.store.postgres`'s."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any:
        """Awaitable for a cursor, and usable as `async with ... as cursor`."""

    async def executemany(self, sql: str, parameters: Any, /) -> Any: ...

    async def close(self) -> None: ...


class StoreBase:
    """An open database connection shared by concurrent tasks."""

    def __init__(self, conn: Connection, dialect: Dialect = SQLITE) -> None:
        self._conn = conn
        self._sql = dialect
        self._paper_columns = paper_columns(dialect)
        # One connection is shared by concurrent tasks: writes take turns, each in its
        # own transaction, so one task's rollback never takes another's write with it.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> Self:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            for pragma in PRAGMAS:
                await conn.execute(pragma)
            store = cls(conn)
            if migrate:
                await store.migrate()
            else:
                await store.check_schema_current()
        except BaseException:
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        async with self._write_lock, self._transaction_connection() as conn:
            try:
                # Inside the try: a task cancelled while awaiting BEGIN still has it run on
                # aiosqlite's thread, and must not leave the connection in a transaction.
                for statement in self._sql.begin:
                    await conn.execute(statement)
                yield conn
            except BaseException:
                await asyncio.shield(self._rollback(conn))
                raise
            await conn.execute("COMMIT")

    @asynccontextmanager
    async def _transaction_connection(self) -> AsyncIterator[Connection]:
        """The connection a transaction runs on: SQLite's one connection."""
        yield self._conn

    async def _rollback(self, conn: Connection) -> None:
        try:
            await conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:  # BEGIN itself failed: nothing to undo
            if "no transaction is active" not in str(exc):
                raise

    @staticmethod
    async def _insert_id(conn: Connection, sql: str, parameters: Any) -> int:
        """Run an INSERT of one row and return its new id (RETURNING: both backends)."""
        async with conn.execute(sql + " RETURNING id", parameters) as cur:
            row = await cur.fetchone()
        return int(row[0])

    async def _run_script(self, conn: Connection, sql: str) -> None:
        """A migration's statements, inside the caller's transaction."""
        for statement in split_statements(sql):
            await conn.execute(statement)

    # -- migrations and backup ---------------------------------------------------------

    async def schema_versions(self) -> tuple[int, int]:
        """(version of the database, newest version this code knows)."""
        latest = max(m.version for m in load_migrations(dialect=self._sql.name))
        if not await self._has_table("schema_migrations"):
            return 0, latest
        async with self._conn.execute("SELECT max(version) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        current = row[0] if row and row[0] is not None else 0
        return current, latest

    async def _has_table(self, name: str) -> bool:
        async with self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ) as cur:
            return await cur.fetchone() is not None

    async def check_schema_current(self) -> None:
        current, latest = await self.schema_versions()
        if current > latest:
            raise DatabaseTooNewError(
                f"the database is at schema version {current} but this release knows only "
                f"up to {latest}; upgrade the bot or restore a backup made by this version"
            )
        if current < latest:
            raise DatabaseTooNewError(
                f"the database is at schema version {current}; run `python -m bot migrate`"
            )

    async def migrate(self) -> list[str]:
        """Apply pending migrations, each with its bookkeeping row in one transaction."""
        current, latest = await self.schema_versions()
        if current > latest:
            await self.check_schema_current()
        applied = []
        for migration in load_migrations(dialect=self._sql.name):
            if migration.version <= current:
                continue
            async with self._transaction() as conn:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                # Another process may have applied it since we looked: the write lock
                # BEGIN took makes this check and the migration one step.
                async with conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                ) as cur:
                    if await cur.fetchone() is not None:
                        continue
                await self._run_script(conn, migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, now_iso()),
                )
            log.info("applied migration %s", migration.name)
            applied.append(migration.name)
        return applied

    async def backup_to(self, target: Path) -> None:
        """A consistent copy of the live database (SQLite's online backup: safe while the
        service writes), written next to `target` and renamed into place."""
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        async with aiosqlite.connect(partial) as copy:
            assert isinstance(self._conn, aiosqlite.Connection)
            await self._conn.backup(copy)
            async with copy.execute("PRAGMA integrity_check") as cur:
                row = await cur.fetchone()
            if not row or row[0] != "ok":
                raise RuntimeError(f"the backup failed its integrity check: {row}")
        partial.replace(target)
