"""`python -m bot migrate-to postgresql://...`: an SQLite install copied into PostgreSQL.

Every table is copied row for row, ids included (so digests, votes and reading lists keep
pointing at the same papers), in one PostgreSQL transaction: a copy that fails halfway
leaves the target as it was. The counts are compared table by table before committing.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.store import Store
from bot.store.postgres import PostgresStore

# Parents before the tables that refer to them. A table the copy does not know stops it
# (a new migration must add its table here).
TABLES = (
    "papers",
    "paper_topics",
    "polls",
    "summaries",
    "summary_claims",
    "bot_state",
    "subscriptions",
    "digests",
    "digest_papers",
    "digest_messages",
    "judgements",
    "judgement_claims",
    "reading_list_entries",
    "votes",
    "watches",
    "watch_notices",
    "watch_hits",
)
_NOT_COPIED = {"schema_migrations"}  # each database records its own migrations
_BATCH = 5000


class TransferError(Exception):
    """The copy cannot start or did not match; the message says why."""


@dataclass(frozen=True, slots=True)
class Copied:
    table: str
    rows: int


async def check_empty(target: PostgresStore) -> None:
    """Raise TransferError unless `target` holds no tables, or only this bot's, empty."""
    async with target._conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() ORDER BY table_name"
    ) as cur:
        tables = [row[0] for row in await cur.fetchall()]
    foreign = [t for t in tables if t not in TABLES and t not in _NOT_COPIED]
    if foreign:
        raise TransferError(
            f"the PostgreSQL database holds tables this bot does not know ({', '.join(foreign)});"
            " migrate-to copies into an empty database"
        )
    for table in TABLES:
        if table not in tables:
            continue
        async with target._conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})") as cur:
            if (await cur.fetchone())[0]:
                raise TransferError(
                    f"the PostgreSQL database already holds data (table {table});"
                    " migrate-to copies into an empty database"
                )


async def copy_to_postgres(source: Store, target: PostgresStore) -> list[Copied]:
    """Copy every row of `source` (SQLite, migrated to the current schema) into `target`
    (PostgreSQL, migrated; `check_empty` passed before either was written)."""
    tables = await _sqlite_tables(source)
    unknown = sorted(set(tables) - set(TABLES) - _NOT_COPIED)
    if unknown:
        raise TransferError(f"the copy does not know the tables {', '.join(unknown)}")
    copied = []
    async with target._write_lock, target._db.pool.acquire() as raw, raw.transaction():
        for table in TABLES:
            columns = await _shared_columns(source, target, table)
            count = 0
            async with source._conn.execute(f"SELECT {', '.join(columns)} FROM {table}") as cur:
                while True:
                    rows = await cur.fetchmany(_BATCH)
                    if not rows:
                        break
                    await raw.copy_records_to_table(
                        table, records=[tuple(r) for r in rows], columns=columns
                    )
                    count += len(rows)
            if "id" in columns and count:
                await raw.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
            stored = await raw.fetchval(f"SELECT count(*) FROM {table}")
            if stored != count:
                raise TransferError(f"{table}: copied {count} rows but {stored} arrived")
            copied.append(Copied(table, count))
    return copied


async def _sqlite_tables(source: Store) -> list[str]:
    async with source._conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name NOT LIKE 'papers_fts%'"
    ) as cur:
        return [row[0] for row in await cur.fetchall()]


async def _shared_columns(source: Store, target: PostgresStore, table: str) -> list[str]:
    """The table's columns in SQLite that PostgreSQL stores (its generated ones aside)."""
    async with source._conn.execute(f"PRAGMA table_info({table})") as cur:
        ours = [row[1] for row in await cur.fetchall()]
    theirs = {
        row[0]
        for row in await target._db.pool.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = $1"
            " AND is_generated = 'NEVER'",
            table,
        )
    }
    missing = [c for c in ours if c not in theirs]
    if missing:
        raise TransferError(f"{table}: PostgreSQL lacks the columns {', '.join(missing)}")
    return ours
