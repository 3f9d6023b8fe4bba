"""Fault soak: one day's digest to many channels while Discord misbehaves and the bot is
killed once.

    python bench/bench_fault_soak.py --channels 1000

`python -m bot run` in its own process posts one day's digest (the 2025-11-12 fixture) to N
subscribed channels of a loopback Discord that answers after 50 ms, enforces Discord's
global limit of 50 requests/s and message nonces, answers 5% of messages 500 the first
time they are tried and drops the connection of 1% of posts (half of them after storing
the message, so only the answer is lost). Once delivery is under way the process gets
SIGKILL at a random moment and is started again. The benchmark prints papers lost and
duplicate posts (both must be 0) and the time from the digests' due moment (the first
start) to the last message, against Discord's global-limit floor for as many messages.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_discord import GUILD_ID, FakeDiscord, text_channel  # noqa: E402
from tests.helpers import database_with_due_digests, papers_shown  # noqa: E402
from tests.test_run_process import start_service  # noqa: E402

GLOBAL_LIMIT_PER_S = 50


NO_ARXIV = "http://127.0.0.1:9/api/query"  # nothing listens: the poll fails at once


def run_env(database_url: str, fake: FakeDiscord, name: str) -> dict[str, str]:
    """`python -m bot run` against the loopback Discord, with no arXiv to poll."""
    return {
        "DATABASE_URL": database_url,
        "PROCESS_NAME": name,
        "DISCORD_TOKEN": "bench-token",
        "DISCORD_API_BASE_URL": fake.api_base,
        "DISCORD_GUILD_ID": GUILD_ID,
        "ARXIV_API_URL": NO_ARXIV,
        "ARXIV_RETRIES": "0",
        "LOG_LEVEL": "INFO",
    }


def tally(fake: FakeDiscord, channel_ids: list[str], expected: set[str]) -> dict[str, int]:
    """What Discord holds: messages, papers missing from a channel, papers shown twice."""
    lost = duplicates = messages = 0
    for channel_id in channel_ids:
        shown: Counter[str] = Counter()
        posts = fake.posted(channel_id)
        messages += len(posts)
        for message in posts:
            shown.update(papers_shown(message))
        lost += len(expected - set(shown))
        duplicates += sum(n - 1 for n in shown.values())
    return {"messages": messages, "papers_lost": lost, "duplicate_papers": duplicates}


def count_posts(fake: FakeDiscord, channel_ids: list[str]) -> int:
    return sum(len(fake.posted(c)) for c in channel_ids)


def soak(channels: int, error_rate: float, reset_rate: float, seed: int, limit_s: float) -> dict:
    rng = random.Random(seed)
    fake = FakeDiscord(
        post_latency=0.05,
        global_limit_per_s=GLOBAL_LIMIT_PER_S,
        post_error_rate=error_rate,
        post_reset_rate=reset_rate,
        fault_seed=seed,
    )
    channel_ids = [str(931000000000000000 + i) for i in range(channels)]
    for channel_id in channel_ids:
        fake.channels[channel_id] = text_channel(channel_id, GUILD_ID, f"c{channel_id[-4:]}")
    fake.start()
    folder = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    # Due a few seconds from now, so the first start finds every digest due at once.
    due = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    database = folder / "bot.db"
    expected = asyncio.run(database_with_due_digests(database, GUILD_ID, channel_ids, due))
    env = run_env(f"sqlite:///{database}", fake, "soak")
    per_channel = None
    wait = (due - datetime.now(UTC)).total_seconds()
    print(f"{channels} channels, due in {wait:.0f} s; {len(expected)} papers each", file=sys.stderr)
    time.sleep(max(0.0, wait))
    started = time.monotonic()
    process, first_logs = start_service(env, folder, "first")
    # Kill it somewhere inside the delivery: after 10% to 90% of the messages it will post.
    try:
        while not count_posts(fake, channel_ids):
            time.sleep(0.05)
        per_channel = len(fake.posted(next(c for c in channel_ids if fake.posted(c))))
        total = per_channel * channels
        kill_after = rng.randint(total // 10, total * 9 // 10)
        while count_posts(fake, channel_ids) < kill_after:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed_at = time.monotonic() - started
        posted_at_kill = count_posts(fake, channel_ids)
        print(f"SIGKILL at {killed_at:.1f} s, {posted_at_kill} posts", file=sys.stderr)
        process, second_logs = start_service(env, folder, "second")
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            done = all(
                set().union(*map(papers_shown, fake.posted(c))) >= expected for c in channel_ids
            )
            if done:
                break
            time.sleep(0.5)
        finished = fake.last_post_at - started
        time.sleep(5)  # anything posted late, twice, would show now
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(15)
    finally:
        if process.poll() is None:
            process.kill()
        fake.stop()
    counted = tally(fake, channel_ids, expected)
    lost, duplicates, messages = (
        counted["papers_lost"],
        counted["duplicate_papers"],
        counted["messages"],
    )
    with sqlite3.connect(database) as db:
        paused = db.execute("SELECT count(*) FROM subscriptions WHERE status != 'active'")
        not_active = paused.fetchone()[0]
    log = "".join(first_logs() + second_logs())
    floor = messages / GLOBAL_LIMIT_PER_S
    return {
        "channels": channels,
        "papers_per_channel": len(expected),
        "messages": messages,
        "papers_lost": lost,
        "duplicate_papers": duplicates,
        "killed_at_s": round(killed_at, 1),
        "posts_at_kill": posted_at_kill,
        "due_to_last_message_s": round(finished, 1),
        "global_limit_floor_s": round(floor, 1),
        "ratio_to_floor": round(finished / floor, 2),
        "subscriptions_paused": not_active,
        "faults_injected": dict(fake.faults_injected),
        "transient_failures_logged": log.count("retrying next tick"),
        "tracebacks": log.count("Traceback"),
        "final_exit_code": exit_code,
        "logs": str(folder),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--error-rate", type=float, default=0.05, help="posts answered 500 once")
    parser.add_argument("--reset-rate", type=float, default=0.01, help="connections reset")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=float, default=900, help="give up after these seconds")
    args = parser.parse_args()
    result = {"bench": "fault-soak"} | soak(
        args.channels, args.error_rate, args.reset_rate, args.seed, args.limit
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
