"""Several processes on one PostgreSQL database: gateway shards split between them, one
leader that posts, and a standby that takes over when the leader is killed."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.classify import load_classifier
from bot.config import StorageSettings, load_settings
from bot.digests.delivery import deliver_due
from bot.leadership import LockLeadership
from bot.models import ListOwner, WatchKind
from bot.pipeline import classify_pending
from bot.store import open_store
from bot.store.postgres import LeaderLock
from bot.store.transfer import TABLES
from bot.subscriptions import subscribe
from tests.fake_arxiv import FakeArxiv
from tests.fake_discord import GUILD_ID, FakeDiscord, text_channel
from tests.helpers import (
    database_with_due_digests,
    fixture_papers,
    make_paper,
    papers_shown,
    run_bot,
)
from tests.loopback import unused_port
from tests.postgres_server import PostgresServer, run_async
from tests.test_run_process import finished, start_service, wait_for
from tests.test_service import RecordingSender

pytestmark = pytest.mark.loopback

CHANNELS = [str(932000000000000000 + i) for i in range(6)]


def environment(url: str, arxiv: FakeArxiv, discord: FakeDiscord, name: str) -> dict:
    return {
        "DATABASE_URL": url,
        "PROCESS_NAME": name,
        "ARXIV_API_URL": arxiv.url,
        "ARXIV_DELAY_SECONDS": "0",
        "DISCORD_TOKEN": "scale-test-token",
        "DISCORD_API_BASE_URL": discord.api_base,
        "DISCORD_GUILD_ID": GUILD_ID,
        "LOG_LEVEL": "INFO",
    }


def test_the_standby_takes_over_a_killed_leaders_delivery_and_posts_nothing_twice(
    tmp_path: Path,
    postgres: PostgresServer,
    fake_arxiv: FakeArxiv,
    report_line: Callable[[str], None],
) -> None:
    discord = FakeDiscord(post_latency=1.0)  # a delivery long enough to kill in the middle
    for channel_id in CHANNELS:
        discord.channels[channel_id] = text_channel(channel_id, GUILD_ID, f"c{channel_id[-2:]}")
    discord.start()
    url = postgres.create_database(template=postgres.template)
    due = datetime.now(UTC).replace(second=0, microsecond=0)
    expected = run_async(database_with_due_digests(url, GUILD_ID, CHANNELS, due))
    assert expected
    database = url.rsplit("/", 1)[1]
    # Held back until both processes are up, so the leader is killed in the middle.
    postgres.psql("UPDATE subscriptions SET status = 'paused'", database=database)
    env_a = environment(url, fake_arxiv, discord, "alpha")
    env_b = environment(url, fake_arxiv, discord, "beta")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    leader, leader_logs = start_service(
        env_a, tmp_path / "a", "alpha", ["--shard-ids", "0", "--shard-count", "2"]
    )
    standby = None
    try:
        wait_for(lambda: "leading" in leader_logs()[0], 60)
        standby, standby_logs = start_service(
            env_b, tmp_path / "b", "beta", ["--shard-ids", "1", "--shard-count", "2"]
        )
        wait_for(lambda: "standby" in standby_logs()[0], 60)
        wait_for(lambda: {(0, 2), (1, 2)} <= set(discord.shards_identified), 60)
        postgres.psql("UPDATE subscriptions SET status = 'active'", database=database)
        # Kill the leader once a few messages are out and more are in flight.
        wait_for(lambda: sum(len(discord.posted(c)) for c in CHANNELS) >= 3, 90)
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        killed = time.monotonic()
        posted_at_kill = sum(len(discord.posted(c)) for c in CHANNELS)
        wait_for(lambda: "leading" in standby_logs()[0], 60)
        took_over = time.monotonic() - killed
        for channel_id in CHANNELS:
            wait_for(
                lambda c=channel_id: set().union(*map(papers_shown, discord.posted(c))) >= expected,
                60,
            )
        time.sleep(2)  # a second post of anything would have landed by now
        health = run_bot(["health"], tmp_path / "b", env_b)
        assert health.returncode == 0 and health.stdout.startswith("ok (leader)"), health.stdout
        standby.send_signal(signal.SIGTERM)
        assert finished(standby) == 0
    finally:
        for process in (leader, standby):
            if process is not None and process.poll() is None:
                process.kill()
        discord.stop()
    assert posted_at_kill < len(CHANNELS) * 3  # the leader died with work left
    assert took_over < 30  # the standby asks every 10 s
    for channel_id in CHANNELS:
        shown = Counter(p for m in discord.posted(channel_id) for p in papers_shown(m))
        assert set(shown) == expected and max(shown.values()) == 1  # all, each once
    assert "Traceback" not in standby_logs()[0] + standby_logs()[1]
    total = sum(len(discord.posted(c)) for c in CHANNELS)
    report_line(
        f"failover: leader killed after {posted_at_kill} of {total} messages;"
        f" the standby led {took_over:.1f} s later and finished, nothing lost or doubled"
    )


def test_shard_options_are_checked_before_anything_is_written(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.create_database()  # empty: any write would show as tables
    env = {"DATABASE_URL": url, "DISCORD_TOKEN": "t"}
    outside = run_bot(["run", "--shard-ids", "0,4", "--shard-count", "4"], tmp_path, env)
    assert outside.returncode == 2
    assert outside.stderr.strip() == (
        "error: --shard-ids 4 outside --shard-count 4 (shards are numbered 0 to 3)"
    )
    no_count = run_bot(["run", "--shard-ids", "0"], tmp_path, env)
    assert no_count.returncode == 2
    assert no_count.stderr.strip() == (
        "error: --shard-count must be given, 1 or more, with --shard-ids"
    )
    on_sqlite = run_bot(
        ["run", "--shard-ids", "0", "--shard-count", "2"],
        tmp_path,
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "DISCORD_TOKEN": "t"},
    )
    assert on_sqlite.returncode == 2 and len(on_sqlite.stderr.strip().splitlines()) == 1
    assert "need PostgreSQL" in on_sqlite.stderr
    assert not (tmp_path / "bot.db").exists()
    assert (
        postgres.psql(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            database=url.rsplit("/", 1)[1],
        )
        == "0"
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://postgres@127.0.0.1:{closed}/x", "cannot connect to PostgreSQL at"),
        # The password ("pa@ss-secret") holds an "@"; no part of it may reach the message.
        (
            "postgresql://postgres:pa@ss-secret@127.0.0.1:{closed}/x",
            "cannot connect to PostgreSQL at 127.0.0.1:",
        ),
        ("postgresql://nobody@127.0.0.1:{port}/postgres", "refused"),
        ("postgresql://postgres@127.0.0.1:{port}/no_such_db", "no such database"),
    ],
)
def test_a_database_that_cannot_be_used_gets_one_line_and_exit_2(
    tmp_path: Path, postgres: PostgresServer, url: str, says: str
) -> None:
    url = url.format(port=postgres.port, closed=unused_port())
    result = run_bot(["status"], tmp_path, {"DATABASE_URL": url})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr


def test_a_newer_schema_on_postgresql_is_refused_and_left_alone(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.create_database(template=postgres.template)
    name = url.rsplit("/", 1)[1]
    postgres.psql("INSERT INTO schema_migrations VALUES (999, '999_future', 'x')", database=name)
    result = run_bot(["status"], tmp_path, {"DATABASE_URL": url})
    assert result.returncode == 2
    assert "schema version 999" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert postgres.psql("SELECT max(version) FROM schema_migrations", database=name) == "999"


async def an_sqlite_install(path: Path) -> str:
    """A day's papers, classified, a delivered digest, a vote, a saved paper and a watch;
    returns a paper that digest showed."""
    settings = load_settings(database_url=f"sqlite:///{path}")
    async with await open_store(settings.storage) as store:
        await store.upsert_papers(fixture_papers("2025-11-12"))
        await classify_pending(store, load_classifier())
        past = datetime.now(UTC) - timedelta(days=1)
        await subscribe(
            store, settings.digests, GUILD_ID, CHANNELS[0], digest_time="00:00", now=past
        )
        sender = RecordingSender()
        await deliver_due(store, settings.digests, sender, datetime.now(UTC))
        shown = sorted(papers_shown([m for _, m in sender.posted]))
        await store.toggle_vote(GUILD_ID, CHANNELS[0], "42", shown[0], 1)
        await store.save_to_lists([ListOwner.user("42")], shown[0])
        await store.add_watch("42", GUILD_ID, CHANNELS[0], WatchKind.AUTHOR, "Hinton", True)
        return shown[0]


def test_migrate_to_copies_an_sqlite_install_and_the_bot_carries_on_there(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    database = tmp_path / "bot.db"
    voted = run_async(an_sqlite_install(database))
    url = postgres.create_database()
    sqlite_env = {"DATABASE_URL": f"sqlite:///{database}"}
    result = run_bot(["migrate-to", url], tmp_path, sqlite_env)
    assert result.returncode == 0, result.stderr
    assert "every table's count matches" in result.stdout
    name = url.rsplit("/", 1)[1]
    with sqlite3.connect(database) as source:
        for table in TABLES:
            rows = source.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert postgres.psql(f"SELECT count(*) FROM {table}", database=name) == str(rows)
            assert f"  {table}: {rows:,} rows" in result.stdout
    assert int(postgres.psql("SELECT count(*) FROM digest_papers", database=name)) > 0

    # The same answers from either database, and new rows get new ids.
    pg_env = {"DATABASE_URL": url}
    for query in (["search", "quantization"], ["search", voted], ["status"]):
        on_sqlite = run_bot(query, tmp_path, sqlite_env)
        on_postgres = run_bot(query, tmp_path, pg_env)
        assert on_postgres.returncode == 0, on_postgres.stderr
        if query[0] == "search":
            assert _ids(on_postgres.stdout) == _ids(on_sqlite.stdout) != set()

    async def after() -> None:
        async with await open_store(StorageSettings(url)) as store:
            assert (await store.toggle_vote(GUILD_ID, CHANNELS[0], "42", voted, 1)) == (1, None)
            await store.upsert_papers([make_paper("2612.00001", "A new paper on pruning")])
            assert await store.get_paper("2612.00001") is not None
            entries = await store.list_entries(ListOwner.user("42"))
            assert [e.paper.arxiv_id for e in entries] == [voted]

    run_async(after())

    again = run_bot(["migrate-to", url], tmp_path, sqlite_env)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        "error: the PostgreSQL database already holds data (table papers);"
        " migrate-to copies into an empty database"
    ]


def _ids(text: str) -> set[str]:
    return set(re.findall(r"\d{4}\.\d{5}", text))


def test_backup_on_postgresql_points_to_pg_dump(tmp_path: Path, postgres: PostgresServer) -> None:
    url = postgres.create_database(template=postgres.template)
    result = run_bot(["backup", str(tmp_path / "copy.db")], tmp_path, {"DATABASE_URL": url})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "pg_dump" in line and "README" in line
    assert not (tmp_path / "copy.db").exists()


def test_migrate_to_refuses_a_database_holding_tables_of_its_own(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    database = tmp_path / "bot.db"
    run_async(an_sqlite_install(database))
    url = postgres.create_database()
    postgres.psql("CREATE TABLE invoices (id int)", database=url.rsplit("/", 1)[1])
    result = run_bot(["migrate-to", url], tmp_path, {"DATABASE_URL": f"sqlite:///{database}"})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "tables this bot does not know (invoices)" in line
    tables = postgres.psql(
        "SELECT string_agg(table_name, ',') FROM information_schema.tables"
        " WHERE table_schema = 'public'",
        database=url.rsplit("/", 1)[1],
    )
    assert tables == "invoices"  # nothing written


async def test_a_leader_whose_lock_connection_dies_stops_leading_and_a_standby_takes_over(
    postgres: PostgresServer,
) -> None:
    """The leader checks its lock's connection; when the server ends it (here
    pg_terminate_backend, in life a restart or a network cut) it stops leading at once,
    and the standby asking next leads instead."""
    url = postgres.create_database()
    name = url.rsplit("/", 1)[1]
    first_lock = LeaderLock(url)
    first = LockLeadership(first_lock, retry_seconds=0.1, check_seconds=0.1)
    second = LockLeadership(LeaderLock(url), retry_seconds=0.1, check_seconds=0.1)
    try:
        await first.acquire()
        standby = asyncio.create_task(second.acquire())
        await asyncio.sleep(0.5)
        assert first.leading and not second.leading and not standby.done()

        ended = await asyncio.to_thread(
            postgres.psql,
            "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l JOIN pg_database d"
            f" ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = '{name}'",
        )
        assert ended == "1"
        async with asyncio.timeout(5):
            await first.lost()
            await standby
        assert not first.leading and second.leading
        assert not await first_lock.try_take()  # the lock is the standby's now
    finally:
        await first.close()
        await second.close()
