"""The database: migrations, upserts and the full-text index kept in sync by the schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.config import Settings
from bot.models import SearchQuery
from bot.search import search_papers
from bot.store import DatabaseTooNewError, Store, load_migrations
from tests.helpers import make_paper
from tests.postgres_server import PostgresServer

BOTH_BACKENDS = True
STAMP = "2025-01-01T00:00:00+00:00"  # each database test runs on SQLite and on PostgreSQL


async def test_migrations_are_recorded_and_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "bot.db"  # parent folders are created
    store = await Store.open(path)
    assert await store.migrate() == []  # nothing left to apply
    await store.close()
    with sqlite3.connect(path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == [m.version for m in load_migrations()]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, '999_future', 'later')")
    with pytest.raises(DatabaseTooNewError, match="schema version 999"):
        await Store.open(path)


async def test_a_failing_migration_leaves_nothing_half_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    latest = max(m.version for m in load_migrations())
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for migration in load_migrations():
        (migrations / f"{migration.name}.sql").write_text(migration.sql)
    (migrations / "900_broken.sql").write_text(
        "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
    )
    monkeypatch.setattr("bot.store.connection._migrations_dir", lambda: migrations)
    with pytest.raises(sqlite3.OperationalError):
        await Store.open(tmp_path / "bot.db")
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "half_done" not in tables
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == latest


async def test_upsert_counts_new_updated_unchanged(store: Store) -> None:
    first = make_paper("2511.00001", "Sparse attention for long documents")
    counts = await store.upsert_papers([first, make_paper("2511.00002", "Other")])
    assert (counts.new, counts.updated, counts.unchanged) == (2, 0, 0)
    newer = make_paper("2511.00001", "Sparse attention, revisited", version=2)
    counts = await store.upsert_papers([newer, make_paper("2511.00002", "Other")])
    assert (counts.new, counts.updated, counts.unchanged) == (0, 1, 1)
    older = make_paper("2511.00001", "An old copy arriving late", version=1)
    counts = await store.upsert_papers([older])
    assert counts.unchanged == 1
    paper = await store.get_paper("2511.00001")
    assert paper is not None and paper.title == "Sparse attention, revisited"


async def test_fts_index_follows_updates_and_deletes_without_python_help(
    store: Store, backend: str
) -> None:
    await store.upsert_papers([make_paper("2511.00003", "Quokka pruning")])
    assert len((await search_papers(store, SearchQuery(text="quokka"))).papers) == 1
    # A write that bypasses the Python layer still keeps the index in sync.
    conn = store._conn
    await conn.execute("UPDATE papers SET title = 'Wombat pruning' WHERE arxiv_id = '2511.00003'")
    assert (await search_papers(store, SearchQuery(text="quokka"))).papers == []
    assert len((await search_papers(store, SearchQuery(text="wombat"))).papers) == 1
    await conn.execute("DELETE FROM papers WHERE arxiv_id = '2511.00003'")
    assert (await search_papers(store, SearchQuery(text="wombat"))).papers == []
    if backend == "postgresql":
        return  # the tsvector is a generated column: PostgreSQL keeps it by definition
    async with conn.execute("INSERT INTO papers_fts(papers_fts) VALUES('integrity-check')"):
        pass


async def test_cancelled_writes_never_leave_the_connection_in_a_transaction(store: Store) -> None:
    # Shutdown cancels tasks wherever they are, including while BEGIN is queued on
    # aiosqlite's thread; every later write must still work.
    import asyncio

    for ticks in range(12):
        task = asyncio.create_task(store.set_state("heartbeat", str(ticks)))
        for _ in range(ticks):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.set_state("after", str(ticks))
    state = await store.get_state("after")
    assert state is not None and state[0] == "11"


async def test_a_dropped_postgresql_connection_is_replaced_and_nothing_is_half_written(
    store: Store, backend: str, postgres_server_for_test: PostgresServer | None
) -> None:
    """The server ends the store's connection (a restart, an admin, a failover): the next
    reads reconnect by themselves, and a write cut off mid-transaction left nothing."""
    if backend != "postgresql":
        pytest.skip("SQLite has no server to lose")
    assert postgres_server_for_test is not None
    await store.set_state("before", "1")
    async with store._conn.execute("SELECT current_database()") as cur:
        database = (await cur.fetchone())[0]

    def drop_connections() -> None:
        postgres_server_for_test.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )

    drop_connections()
    assert (await store.get_state("before") or ("",))[0] == "1"  # read: reconnected

    # A write whose transaction the drop cuts off fails, and none of it lands.
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        async with store._transaction() as conn:
            await conn.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES ('half', '1', ?)", (STAMP,)
            )
            drop_connections()
            await conn.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES ('other', '1', ?)", (STAMP,)
            )
    assert await store.get_state("half") is None
    await store.set_state("after", "2")  # and writes work again
    assert (await store.get_state("after") or ("",))[0] == "2"


async def test_top_papers_count_likes_and_dislikes(store: Store) -> None:
    from datetime import UTC, datetime, timedelta

    await store.upsert_papers(
        [make_paper("2511.00011", "Liked"), make_paper("2511.00012", "Disliked")]
    )
    guild, channel = "910000000000000001", "920000000000000001"
    for user in ("1", "2", "3"):
        await store.toggle_vote(guild, channel, user, "2511.00011", 1)
    await store.toggle_vote(guild, channel, "4", "2511.00011", -1)
    await store.toggle_vote(guild, channel, "1", "2511.00012", -1)
    since = datetime.now(UTC) - timedelta(days=7)
    top = await store.top_papers(guild, since, 10)
    assert [(p.arxiv_id, likes, dislikes) for p, likes, dislikes in top] == [("2511.00011", 3, 1)]


async def test_a_failing_read_elsewhere_never_touches_a_writers_transaction(
    store: Store, backend: str
) -> None:
    """Other tasks read while a write is open (a poll storing papers while someone runs
    /top): a read that fails, or is cancelled, leaves the writer's transaction whole."""
    import asyncio

    async with store._transaction() as conn:
        await conn.execute(
            "INSERT INTO bot_state (key, value, updated_at) VALUES ('w1', '1', ?)", (STAMP,)
        )
        with pytest.raises(Exception):  # noqa: B017 - each backend words it its own way
            async with store._conn.execute("SELECT * FROM no_such_table"):
                pass
        reader = asyncio.create_task(store.get_state("w1"))
        await asyncio.sleep(0)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await conn.execute(
            "INSERT INTO bot_state (key, value, updated_at) VALUES ('w2', '1', ?)", (STAMP,)
        )
    assert await store.get_state("w1") is not None
    assert await store.get_state("w2") is not None


async def test_a_takeover_frees_the_dead_leaders_leases_and_no_others(
    store: Store, settings: Settings
) -> None:
    from bot.subscriptions import subscribe

    ids = []
    for channel in ("920000000000000001", "920000000000000002"):
        subscription = await subscribe(store, settings.digests, "910000000000000001", channel)
        ids.append(subscription.id)
    assert await store.claim_delivery(ids[0], "deadleader:1")
    assert await store.claim_delivery(ids[1], "otherprocess:2")  # a /digest now elsewhere
    await store.clear_delivery_leases(["deadleader:"])
    assert await store.claim_delivery(ids[0], "newleader:3")  # freed
    assert not await store.claim_delivery(ids[1], "newleader:4")  # still held
    await store.clear_delivery_leases()  # SQLite's one process: every lease
    assert await store.claim_delivery(ids[1], "newleader:5")
