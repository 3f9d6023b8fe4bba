"""Building papers and filled stores for tests, from the real fixtures."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bot.arxiv_ids import split_version
from bot.listing import announcement_date
from bot.models import Paper

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent
_SETTING_PREFIXES = (
    "ARXIV_",
    "DATABASE_",
    "DISCORD_",
    "OPENAI_",
    "SUMMARY_",
    "DIGEST_",
    "RELEVANCE_",
    "JUDGE_",
)


def bot_environment(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """This machine's environment without any bot setting, plus `overrides`: a test
    process sees only the settings the test gives it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(_SETTING_PREFIXES)}
    environment["PYTHONPATH"] = str(ROOT)
    environment.update(overrides or {})
    return environment


def run_bot(
    args: list[str], cwd: Path, overrides: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` as a user runs it, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=bot_environment(overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def make_paper(
    arxiv_id: str,
    title: str,
    abstract: str = "An abstract.",
    *,
    authors: tuple[str, ...] = ("Ada Lovelace",),
    categories: tuple[str, ...] = ("cs.LG",),
    day: date = date(2025, 11, 12),
    version: int = 1,
) -> Paper:
    # Submitted on the previous weekday, before arXiv's 14:00 ET cutoff: listed on `day`.
    before = day - timedelta(days=1)
    while before.weekday() >= 5:
        before -= timedelta(days=1)
    submitted = datetime(before.year, before.month, before.day, 13, tzinfo=UTC)
    assert announcement_date(submitted) == day, f"{day} is not a listing day"
    return Paper(
        arxiv_id=arxiv_id,
        version=version,
        title=title,
        abstract=abstract,
        authors=authors,
        categories=categories,
        published=submitted,
        updated=submitted,
        announced=announcement_date(submitted),
    )


def fixture_papers(day: str) -> list[Paper]:
    """The labelled day's papers as the poller would store them."""
    papers = []
    for index, line in enumerate((FIXTURES / "arxiv" / f"{day}.jsonl").read_text().splitlines()):
        row = json.loads(line)
        arxiv_id, version = split_version(row["id"])
        submitted = datetime.fromisoformat(day).replace(tzinfo=UTC) - timedelta(
            days=1, hours=-13, minutes=-index
        )
        papers.append(
            Paper(
                arxiv_id=arxiv_id,
                version=version,
                title=" ".join(row["title"].split()),
                abstract=" ".join(row["summary"].split()),
                authors=tuple(row["authors"]),
                categories=tuple(c for c in row["categories"] if " " not in c),
                published=submitted,
                updated=submitted,
                announced=announcement_date(submitted),
                comment=row["comment"],
            )
        )
    return papers


def fixture_labels(day: str) -> dict[str, tuple[bool, tuple[str, ...]]]:
    labels = {}
    lines = (FIXTURES / "arxiv" / f"labels-{day}.tsv").read_text().splitlines()[1:]
    for line in lines:
        arxiv_id, relevant, *topics = line.split("\t")
        tags = tuple(t for t in (topics[0].split(",") if topics else []) if t)
        labels[arxiv_id] = (relevant == "1", tags)
    return labels


_ABS_LINK = re.compile(r"arxiv\.org/abs/(\d{4}\.\d{4,5})")


def papers_shown(message: object) -> set[str]:
    """The arXiv ids a posted (or rendered) message shows, each once however many links
    it has to a paper."""
    return set(_ABS_LINK.findall(json.dumps(message, default=repr)))


async def database_with_due_digests(
    database: Path | str,
    guild_id: str,
    channel_ids: list[str],
    due: datetime,
    day: str = "2025-11-12",
) -> set[str]:
    """A database (a SQLite file, or any database URL) holding a labelled day, classified,
    with every channel subscribed and its digest falling due at `due` (a whole minute);
    returns the papers each digest must show."""
    from bot.classify import load_classifier
    from bot.config import load_settings
    from bot.digests.schedule import preview_digest
    from bot.pipeline import classify_pending
    from bot.store import open_store
    from bot.subscriptions import subscribe

    url = database if isinstance(database, str) else f"sqlite:///{database}"
    settings = load_settings(database_url=url)
    store = await open_store(settings.storage)
    try:
        await store.upsert_papers(fixture_papers(day))
        await classify_pending(store, load_classifier())
        for channel_id in channel_ids:
            # Subscribed a day before at the due minute: the next digest falls due at `due`.
            subscription = await subscribe(
                store,
                settings.digests,
                guild_id,
                channel_id,
                digest_time=due.strftime("%H:%M"),
                now=due - timedelta(days=1),
            )
        messages = await preview_digest(store, settings.digests, subscription)
    finally:
        await store.close()
    return set().union(*(papers_shown(m) for m in messages))


LABELLED_DAYS = [
    "2025-04-16",
    "2025-06-18",
    "2025-08-20",
    "2025-09-17",
    "2025-10-03",
    "2025-11-12",
    "2025-12-10",
    "2026-01-21",
    "2026-03-18",
    "2026-05-20",
]


async def readers_who_like_one_topic(
    store: object, channel_id: str, topic: str, votes: int, first_days: int = 6
) -> int:
    """A channel subscribed from the first labelled day, sent one digest of the first
    `first_days` days, whose readers vote on the papers it received in listing order:
    👍 when the paper has `topic`, 👎 otherwise, until `votes` votes. Returns the 👍."""
    from bot.config import load_settings
    from bot.digests.schedule import plan_digest
    from bot.store import Store

    assert isinstance(store, Store)
    settings = load_settings()
    start = date.fromisoformat(LABELLED_DAYS[0])
    subscription = await store.save_subscription(
        "910000000000000001", channel_id, (), "08:00", 0.5, False, start, datetime.now(UTC)
    )
    await plan_digest(store, settings.digests, subscription, datetime.now(UTC), scheduled=False)
    last = date.fromisoformat(LABELLED_DAYS[first_days - 1])
    received = [
        p
        for p in await store.relevant_papers(start, last, 0.0)
        if await store.channel_received(channel_id, p.arxiv_id)
    ]
    received.sort(key=lambda p: (p.announced, p.arxiv_id))
    likes = 0
    for index, paper in enumerate(received[:votes]):
        liked = topic in paper.topics
        likes += liked
        await store.toggle_vote(
            "910000000000000001",
            channel_id,
            f"reader{index % 7}",
            paper.arxiv_id,
            1 if liked else -1,
        )
    return likes
