"""Digest delivery to many channels, and the bot's memory at idle with a large archive.

    python bench/bench_delivery.py --channels 100 1000
    python bench/bench_delivery.py --idle-db bench/.corpus/bench-1000000.db

Delivery: the real bot (discord.py) posts one day's digest (the 2025-11-12 fixture, 15
papers) to N subscribed channels of a loopback Discord that answers after `--latency`
seconds, sends Discord's rate-limit headers and enforces its global limit of 50
requests/s with 429s; once one channel at a time and once at the default delivery
concurrency, in each layout: today's sections (layout messages, 3 per channel) and the
previous release's embeds (2 per channel), in the same run. Digests are recorded first;
only posting is timed. Idle: `python -m bot run` in its own
process against the given database; its RSS is read after login and 10 s idle.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bot.classify import load_classifier  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.digests.delivery import DELIVERY_CONCURRENCY, deliver_due  # noqa: E402
from bot.digests.render import (  # noqa: E402
    EMBED_COLOUR,
    escape,
    explain,
    first_authors,
    title_of,
)
from bot.digests.schedule import plan_digest  # noqa: E402
from bot.discord_bot.client import bot_for  # noqa: E402
from bot.models import OutgoingMessage, Paper, SummaryButton  # noqa: E402
from bot.pipeline import classify_pending  # noqa: E402
from bot.service import Service  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.subscriptions import subscribe  # noqa: E402
from tests.fake_discord import GUILD_ID, FakeDiscord, text_channel  # noqa: E402
from tests.helpers import fixture_papers  # noqa: E402


class BenchService(Service):
    """The service without its loops: the recorded digests are posted by the timed round
    alone, not also by the scheduler's own round."""

    def start(self, *args: object, **kwargs: object) -> None:
        return None


def embed_layout(papers: list[Paper]) -> list[OutgoingMessage]:
    """The digest as the previous release rendered it, for comparison in the same run: a
    header, one embed and a numbered Summary button per paper, ten papers a message. Such
    recorded digests are still posted as they were (`tests/discord_bot/test_upgrade.py`)."""
    messages = []
    for start in range(0, len(papers), 10):
        chunk = papers[start : start + 10]
        embeds = tuple(
            {
                "title": f"{start + n}. {escape(title_of(p))}"[:256],
                "url": p.abs_url,
                "description": "\n".join(
                    [escape(first_authors(p)), " ".join(f"`{t}`" for t in p.topics)]
                    + ([f"Why: {escape(explain(p))}"] if p.reason else [])
                ),
                "color": EMBED_COLOUR,
            }
            for n, p in enumerate(chunk, 1)
        )
        buttons = tuple(
            SummaryButton(f"Summary {start + n}", p.arxiv_id) for n, p in enumerate(chunk, 1)
        )
        content = "**arXiv efficiency digest**" if start == 0 else f"({start // 10 + 1}/2)"
        messages.append(OutgoingMessage(content, embeds, buttons))
    return messages


async def deliver_to(channels: int, latency: float, concurrency: int, layout: str) -> dict:
    # Discord answers in tens of milliseconds and allows 50 requests/s per bot.
    fake = FakeDiscord(post_latency=latency, global_limit_per_s=50)
    ids = [str(921000000000000000 + i) for i in range(channels)]
    for channel_id in ids:
        fake.channels[channel_id] = text_channel(channel_id, GUILD_ID, f"c{channel_id[-4:]}")
    fake.start()
    folder = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'bot.db'}",
        discord_token="bench-token",
        discord_api_base_url=fake.api_base,
        discord_guild_id=int(GUILD_ID),
    )
    store = await Store.open(settings.database_path)
    await store.upsert_papers(fixture_papers("2025-11-12"))
    await classify_pending(store, load_classifier())
    now = datetime.now(UTC) + timedelta(days=1, minutes=1)
    for channel_id in ids:
        subscription = await subscribe(store, settings.digests, GUILD_ID, channel_id)
        # Every digest is recorded before the clock starts: only posting is timed.
        if layout == "sections":
            await plan_digest(store, settings.digests, subscription, now, scheduled=True)
        else:
            papers = await store.digest_candidates(subscription, settings.relevance_threshold)
            papers = papers[: settings.digest_max_papers]
            await store.record_digest(
                subscription.id, "papers", papers, embed_layout(papers), now + timedelta(days=1)
            )
    bot = bot_for(settings, store, BenchService(store, settings, load_classifier()))
    task = asyncio.create_task(bot.start("bench-token"))
    await asyncio.wait_for(bot.wait_until_ready(), 30)
    began = time.perf_counter()
    posted = await deliver_due(
        store,
        settings.digests,
        bot.sender,
        now,
        concurrency=concurrency,
    )
    elapsed = time.perf_counter() - began
    await bot.close()
    await asyncio.gather(task, return_exceptions=True)
    await store.close()
    fake.stop()
    return {
        "layout": layout,
        "channels": channels,
        "messages": posted,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(posted / elapsed, 1),
    }


def idle_rss(db: Path) -> dict:
    fake = FakeDiscord().start()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db.resolve()}",
        "DISCORD_TOKEN": "bench-token",
        "DISCORD_API_BASE_URL": fake.api_base,
        "DISCORD_GUILD_ID": GUILD_ID,
        "ARXIV_API_URL": "http://127.0.0.1:9/api/query",  # nothing there: the poll fails fast
        "ARXIV_RETRIES": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=ROOT)
    try:
        fake.wait_ready(60)
        time.sleep(10)
        rss = psutil.Process(process.pid).memory_info().rss
    finally:
        process.terminate()
        process.wait(30)
        fake.stop()
    papers = sqlite_count(db)
    return {"idle_papers": papers, "idle_rss_mb": round(rss / 2**20)}


def sqlite_count(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM papers").fetchone()[0]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--latency", type=float, default=0.05, help="Discord's answer time")
    parser.add_argument("--idle-db", type=Path, help="database for the idle RSS figure")
    parser.add_argument(
        "--layouts", nargs="*", default=["sections", "embeds"], choices=["sections", "embeds"]
    )
    args = parser.parse_args()
    result: dict = {"bench": "delivery"}
    result["latency_s"] = args.latency
    for count in args.channels:
        for layout in args.layouts:
            for concurrency in (1, DELIVERY_CONCURRENCY):
                figures = await deliver_to(count, args.latency, concurrency, layout)
                print(json.dumps(figures), file=sys.stderr)
                result[f"{layout}_{count}_channels_c{concurrency}_s"] = figures["seconds"]
            result[f"{layout}_{count}_messages"] = figures["messages"]
    if args.idle_db:
        result.update(await asyncio.to_thread(idle_rss, args.idle_db))
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
