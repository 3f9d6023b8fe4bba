"""Each channel learns: does a channel's model put its readers' topic first, and what do
fitting and scoring cost?

    python bench/bench_channel_taste.py

Quality: for every topic, a channel whose simulated readers like only that topic votes 50
times on its first digest (six labelled days, in listing order: 👍 when the paper has the
topic, 👎 otherwise); then four more days arrive and the next digest is chosen, by the
channel's model and by the global score. Printed: how many of the first five papers have
the topic, each way, and how many papers of the topic the next days hold at all.
Cost: a channel with 1,000 votes (on papers of all ten days): the model's fit, and the
scoring of a 100-paper pool. Ends with one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.channel_taste import TASTE_FLOOR, ChannelTastes  # noqa: E402
from bot.classify import TOPICS, load_classifier  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.digests.schedule import choose_papers  # noqa: E402
from bot.pipeline import classify_pending  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.helpers import (  # noqa: E402
    LABELLED_DAYS,
    fixture_papers,
    readers_who_like_one_topic,
)


async def quality(folder: Path) -> list[dict]:
    settings = load_settings(database_url=f"sqlite:///{folder / 'quality.db'}")
    store = await Store.open(settings.database_path)
    classifier = load_classifier()
    for day in LABELLED_DAYS[:6]:
        await store.upsert_papers(fixture_papers(day))
    await classify_pending(store, classifier)
    likes = {}
    for n, topic in enumerate(TOPICS):
        likes[topic] = await readers_who_like_one_topic(store, f"c{n}", topic, votes=50)
    for day in LABELLED_DAYS[6:]:
        await store.upsert_papers(fixture_papers(day))
    await classify_pending(store, classifier)
    tastes = ChannelTastes(classifier, votes_to_learn=20)
    rows = []
    for n, topic in enumerate(TOPICS):
        subscription = await store.subscription_for_channel(f"c{n}")
        assert subscription is not None
        mine = await choose_papers(store, settings.digests, subscription, tastes)
        shared = await choose_papers(store, settings.digests, subscription, None)
        pool = await store.digest_candidates(subscription, 0.5, TASTE_FLOOR)
        rows.append(
            {
                "topic": topic,
                "likes_in_50_votes": likes[topic],
                "top5_global": sum(topic in p.topics for p in shared[:5]),
                "top5_channel": sum(topic in p.topics for p in mine[:5]),
                "topic_papers_available": sum(topic in p.topics for p in pool),
            }
        )
    await store.close()
    return rows


async def cost(folder: Path) -> dict:
    settings = load_settings(database_url=f"sqlite:///{folder / 'cost.db'}")
    store = await Store.open(settings.database_path)
    classifier = load_classifier()
    for day in LABELLED_DAYS:
        await store.upsert_papers(fixture_papers(day))
    await classify_pending(store, classifier)
    papers = [p for day in LABELLED_DAYS for p in fixture_papers(day)][:1000]
    for index, paper in enumerate(papers):
        stored = await store.get_paper(paper.arxiv_id)
        assert stored is not None
        value = 1 if "pruning" in stored.topics or index % 5 == 0 else -1
        await store.toggle_vote("g", "busy", f"u{index % 40}", paper.arxiv_id, value)
    tastes = ChannelTastes(classifier, votes_to_learn=20)
    began = time.perf_counter()
    taste = await tastes.for_channel(store, "busy")
    fitted = time.perf_counter() - began
    assert taste is not None
    began = time.perf_counter()
    cached = await tastes.for_channel(store, "busy")
    again = time.perf_counter() - began
    assert cached is taste
    pool = [p for day in LABELLED_DAYS[-1:] for p in fixture_papers(day)][:100]
    stored_pool = [await store.get_paper(p.arxiv_id) for p in pool]
    began = time.perf_counter()
    tastes.rank(taste, [p for p in stored_pool if p is not None], 0.5)
    scored = time.perf_counter() - began
    await store.close()
    return {
        "votes": taste.votes,
        "weights": len(taste.weights),
        "fit_s": round(fitted, 2),
        "cached_lookup_ms": round(again * 1000, 1),
        "score_100_papers_ms": round(scored * 1000, 1),
    }


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-taste-"))
    rows = await quality(folder)
    for row in rows:
        print(json.dumps(row), file=sys.stderr)
    figures = await cost(folder)
    print(json.dumps({"bench": "channel-taste", "quality": rows, "cost_1000_votes": figures}))


if __name__ == "__main__":
    asyncio.run(main())
