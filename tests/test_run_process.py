"""`python -m bot run` as a container runs it: a real process against loopback arXiv,
OpenAI and Discord servers; signals, health, backup, and logs that keep secrets."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fake_arxiv import FakeArxiv, Fault
from tests.fake_discord import CHANNEL_ID, GUILD_ID, SECOND_CHANNEL_ID, FakeDiscord
from tests.fake_openai import FakeOpenAI
from tests.helpers import bot_environment, database_with_due_digests, papers_shown, run_bot

pytestmark = pytest.mark.loopback

DISCORD_SECRET = "MTAwMDAwMDAwMDAwMDAwMDAw.discord-secret-token"
OPENAI_SECRET = "sk-proj-secret-openai-key-0123456789"


@pytest.fixture
def servers(fake_arxiv: FakeArxiv) -> Iterator[tuple[FakeArxiv, FakeDiscord, FakeOpenAI]]:
    discord_server = FakeDiscord().start()
    openai_server = FakeOpenAI().start()
    yield fake_arxiv, discord_server, openai_server
    discord_server.stop()
    openai_server.stop()


def service_env(tmp_path: Path, arxiv: FakeArxiv, discord: FakeDiscord, llm: FakeOpenAI) -> dict:
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'arxiv-bot.db'}",
        "ARXIV_API_URL": arxiv.url,
        "ARXIV_DELAY_SECONDS": "0",
        "ARXIV_LOOKBACK_DAYS": "3650",
        "ARXIV_PAGE_SIZE": "50",
        "DISCORD_TOKEN": DISCORD_SECRET,
        "DISCORD_API_BASE_URL": discord.api_base,
        "DISCORD_GUILD_ID": GUILD_ID,
        "OPENAI_API_KEY": OPENAI_SECRET,
        "OPENAI_BASE_URL": llm.base_url,
        "LOG_LEVEL": "DEBUG",  # the most a log can say: secrets must still not appear
    }


def start_service(
    env: dict, cwd: Path, name: str, options: list[str] | None = None
) -> tuple[subprocess.Popen, Callable[[], tuple[str, str]]]:
    """Start `python -m bot run` with its output in files (a pipe nobody reads would
    fill up and block the service)."""
    out_path, err_path = cwd / f"{name}.out", cwd / f"{name}.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", *(options or [])],
            env=bot_environment(env),
            cwd=cwd,
            stdout=out,
            stderr=err,
        )
    return process, lambda: (out_path.read_text(), err_path.read_text())


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not met")


def test_full_run_sigterm_mid_poll_health_backup_and_no_secrets_in_logs(
    tmp_path: Path, servers: tuple[FakeArxiv, FakeDiscord, FakeOpenAI]
) -> None:
    arxiv, discord, llm = servers
    arxiv.add_day("2025-10-03")
    arxiv.add_day("2025-11-12")
    env = service_env(tmp_path, arxiv, discord, llm)
    # Before the service ever ran: health says so, and creates nothing.
    before = run_bot(["health"], tmp_path, env)
    assert before.returncode == 1 and before.stdout.startswith("not running")
    assert not (tmp_path / "data").exists()

    # First run: a complete poll, summaries, then SIGTERM while idle.
    service, read_logs = start_service(env, tmp_path, "first")
    try:
        discord.wait_ready(30)
        wait_for(lambda: len(llm.requests) >= 5, 30)
        wait_for(lambda: run_bot(["health"], tmp_path, env).returncode == 0, 30)
        healthy = run_bot(["health"], tmp_path, env)
        assert healthy.stdout.startswith("ok: Discord heartbeat")
        backup = run_bot(["backup", str(tmp_path / "backups" / "copy.db")], tmp_path, env)
        assert backup.returncode == 0, backup.stderr
        with sqlite3.connect(tmp_path / "backups" / "copy.db") as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert copy.execute("SELECT count(*) FROM papers").fetchone()[0] > 0
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=10)
    finally:
        if service.poll() is None:
            service.kill()
    out, err = read_logs()
    assert service.returncode == 0, err[-2000:]
    logs = out + err
    for secret in (DISCORD_SECRET, OPENAI_SECRET):
        assert secret not in logs
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines and all(
        any(f" {level} " in line for level in ("DEBUG", "INFO", "WARNING", "ERROR"))
        for line in lines
    )
    assert any("service stopped" in line for line in lines)

    # Second run, on a fresh database: SIGTERM while a slow backfill is reading pages.
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'data2' / 'arxiv-bot.db'}"
    arxiv.fail_next(Fault(), *[Fault(delay=2.0)] * 10)
    requests_before = len(arxiv.requests)
    service, read_logs = start_service(env, tmp_path, "second")
    try:
        wait_for(lambda: len(arxiv.requests) >= requests_before + 2, 30)  # mid-poll
        began = time.monotonic()
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=10)
        took = time.monotonic() - began
    finally:
        if service.poll() is None:
            service.kill()
    out, err = read_logs()
    assert service.returncode == 0, err[-2000:]
    assert took < 10
    for secret in (DISCORD_SECRET, OPENAI_SECRET):
        assert secret not in out + err
    with sqlite3.connect(tmp_path / "data2" / "arxiv-bot.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM polls WHERE outcome = 'running'").fetchone()[0] == 0
        last = db.execute("SELECT outcome, reason FROM polls ORDER BY id DESC LIMIT 1").fetchone()
        assert last[0] == "failed" and "interrupted" in last[1]
        stored = db.execute("SELECT count(*) FROM papers").fetchone()[0]
        assert 50 <= stored < 351  # the pages read before the signal were kept
        db.execute("INSERT INTO papers_fts(papers_fts) VALUES('integrity-check')")


# -- never crash, never loop --------------------------------------------------------------


def finished(process: subprocess.Popen, seconds: float = 10.0) -> int:
    """The exit code, which must come within `seconds`."""
    return process.wait(timeout=seconds)


def test_a_refused_token_exits_2_with_one_line(
    tmp_path: Path, servers: tuple[FakeArxiv, FakeDiscord, FakeOpenAI]
) -> None:
    arxiv, discord, llm = servers
    discord.refuse_token = True
    process, read_logs = start_service(service_env(tmp_path, arxiv, discord, llm), tmp_path, "401")
    assert finished(process, 20) == 2
    _, err = read_logs()
    assert err.strip().splitlines()[-1] == (
        "error: Discord refused DISCORD_TOKEN (401): check the bot's token"
    )
    assert "Traceback" not in err


def test_gateway_close_4004_exits_2(
    tmp_path: Path, servers: tuple[FakeArxiv, FakeDiscord, FakeOpenAI]
) -> None:
    arxiv, discord, llm = servers
    discord.close_codes = [4004]
    process, read_logs = start_service(service_env(tmp_path, arxiv, discord, llm), tmp_path, "4004")
    assert finished(process, 20) == 2
    assert "gateway close 4004" in read_logs()[1].strip().splitlines()[-1]


def test_a_refused_gateway_is_retried_in_process_and_a_close_reconnects(
    tmp_path: Path, servers: tuple[FakeArxiv, FakeDiscord, FakeOpenAI]
) -> None:
    """The gateway refuses connections twice (discord.py 2.7 then raises AttributeError),
    then drops the session without a close frame (1006) and closes it with 4000: the
    process stays up, connects, reconnects twice, and exits 0 on SIGTERM."""
    arxiv, discord, llm = servers
    discord.gateway_refusals = 2
    discord.close_codes = [1006, 4000]
    process, read_logs = start_service(service_env(tmp_path, arxiv, discord, llm), tmp_path, "gw")
    try:
        wait_for(lambda: discord.readies >= 3 or process.poll() is not None, 60)
        assert process.poll() is None  # connected, dropped (1006), closed (4000), connected
        out, _ = read_logs()
        assert out.count("could not reach Discord") == 2
        assert "'NoneType' object has no attribute 'sequence'" in out  # the guarded bug
    finally:
        process.send_signal(signal.SIGTERM)
    assert finished(process) == 0


@pytest.mark.parametrize("moment", ["login", "gateway retry"])
def test_sigterm_at_any_moment_exits_0_within_10_seconds(
    tmp_path: Path, servers: tuple[FakeArxiv, FakeDiscord, FakeOpenAI], moment: str
) -> None:
    arxiv, discord, llm = servers
    if moment == "login":
        discord.rest_delay = 5.0  # the process is inside login when the signal comes
    else:
        discord.gateway_refusals = 1000  # the process is waiting to retry the gateway
    process, read_logs = start_service(service_env(tmp_path, arxiv, discord, llm), tmp_path, "t")
    time.sleep(3.0)
    assert process.poll() is None
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert finished(process) == 0
    assert time.monotonic() - started < 10
    assert "Traceback" not in read_logs()[1]


def due_now(tmp_path: Path, env: dict) -> tuple[Path, set[str]]:
    """Both of the fake guild's channels subscribed, their digests due this minute."""
    database = tmp_path / "data" / "arxiv-bot.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    due = datetime.now(UTC).replace(second=0, microsecond=0)
    expected = asyncio.run(
        database_with_due_digests(database, GUILD_ID, [CHANNEL_ID, SECOND_CHANNEL_ID], due)
    )
    assert env["DATABASE_URL"] == f"sqlite:///{database}"
    return database, expected


def test_sigterm_during_a_delivery_exits_0_and_the_restart_posts_nothing_twice(
    tmp_path: Path, servers: tuple[FakeArxiv, FakeDiscord, FakeOpenAI]
) -> None:
    arxiv, discord, llm = servers
    discord.post_latency = 1.0  # each post is in flight for a second
    env = service_env(tmp_path, arxiv, discord, llm)
    _, expected = due_now(tmp_path, env)
    assert expected
    process, read_logs = start_service(env, tmp_path, "delivering")
    try:
        wait_for(lambda: any(r.path.endswith("/messages") for r in discord.requests), 30)
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert finished(process) == 0
        assert time.monotonic() - began < 10
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in read_logs()[1]
    posted_before = sum(len(discord.posted(c)) for c in (CHANNEL_ID, SECOND_CHANNEL_ID))
    assert posted_before < 4

    process, read_logs = start_service(env, tmp_path, "resumed")
    try:
        for channel_id in (CHANNEL_ID, SECOND_CHANNEL_ID):
            wait_for(
                lambda c=channel_id: set().union(*map(papers_shown, discord.posted(c))) >= expected,
                30,
            )
        time.sleep(1.5)  # a second post of anything would have landed by now
    finally:
        process.send_signal(signal.SIGTERM)
    assert finished(process) == 0
    for channel_id in (CHANNEL_ID, SECOND_CHANNEL_ID):
        shown = [paper for m in discord.posted(channel_id) for paper in papers_shown(m)]
        assert sorted(shown) == sorted(expected)  # every paper, each once


def test_sigterm_during_a_backup_exits_0_and_the_backup_completes(
    tmp_path: Path, servers: tuple[FakeArxiv, FakeDiscord, FakeOpenAI]
) -> None:
    """SQLite's online backup (what `python -m bot backup` runs), copying page by page in
    another process's connection while the service gets SIGTERM and writes its last rows."""
    arxiv, discord, llm = servers
    env = service_env(tmp_path, arxiv, discord, llm)
    database, _ = due_now(tmp_path, env)
    process, read_logs = start_service(env, tmp_path, "backup")
    copied: list[int] = []
    try:
        discord.wait_ready(30)

        def slowly(status: int, remaining: int, total: int) -> None:
            copied.append(total - remaining)
            time.sleep(0.002)

        source = sqlite3.connect(database, check_same_thread=False)
        target = sqlite3.connect(tmp_path / "copy.db", check_same_thread=False)
        backup = threading.Thread(
            target=source.backup, args=(target,), kwargs={"pages": 1, "progress": slowly}
        )
        backup.start()
        wait_for(lambda: len(copied) > 20)
        assert backup.is_alive()  # the copy is under way
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert finished(process) == 0
        assert time.monotonic() - began < 10
        backup.join(120)
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in read_logs()[1]
    assert target.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert target.execute("SELECT count(*) FROM papers").fetchone()[0] > 0


def test_a_sigterm_while_the_program_still_loads_stops_it_cleanly(
    tmp_path: Path, servers: tuple[FakeArxiv, FakeDiscord, FakeOpenAI]
) -> None:
    """`docker stop` right after `docker start`: the signal lands while Python imports the
    command line (a second or more), before the service has handlers of its own."""
    arxiv, discord, llm = servers
    env = service_env(tmp_path, arxiv, discord, llm)
    process, read_logs = start_service(env, tmp_path, "early")
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    assert finished(process) == 0
    assert "Traceback" not in read_logs()[1]
