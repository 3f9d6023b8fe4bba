"""Summary throughput and cost against a local OpenAI-compatible server with fixed latency.

    python bench/bench_summaries.py --latency 0.5

Loads both labelled fixture days, classifies them, then summarizes every relevant
paper through the real `openai` client: once with one request at a time, once at
the default SUMMARY_CONCURRENCY, then a second poll to show the cache. Token counts
come from the server's `usage` (prompt characters / 4, the usual estimate for
English); the cost uses gpt-4o-mini's list prices. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.classify import load_classifier  # noqa: E402
from bot.config import Settings, load_settings  # noqa: E402
from bot.pipeline import classify_pending  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.summarize import Summarizer, summarize_pending  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402
from tests.helpers import fixture_papers  # noqa: E402

DAYS = ("2025-10-03", "2025-11-12")
PRICE_PER_MILLION = {"prompt": 0.15, "completion": 0.60}  # gpt-4o-mini, USD


async def summarize_all(settings: Settings, folder: Path, name: str) -> tuple[int, float, Store]:
    store = await Store.open(folder / f"{name}.db")
    await store.upsert_papers([p for day in DAYS for p in fixture_papers(day)])
    await classify_pending(store, load_classifier())
    summarizer = Summarizer(settings.llm)
    began = time.perf_counter()
    run = await summarize_pending(store, settings.summaries, summarizer)
    elapsed = time.perf_counter() - began
    await summarizer.close()
    return run.summarized, elapsed, store


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per model call")
    args = parser.parse_args()
    server = FakeOpenAI(latency=args.latency).start()
    folder = Path(tempfile.mkdtemp(prefix="bench-summaries-"))
    base = load_settings(
        database_url=f"sqlite:///{folder / 'unused.db'}",
        openai_api_key="sk-bench",
        openai_base_url=server.base_url,
        openai_model="fake-mini",
    )
    default_concurrency = base.summary_concurrency
    serial = base.model_copy(update={"summary_concurrency": 1})
    count_serial, time_serial, store = await summarize_all(serial, folder, "serial")
    await store.close()

    requests_before = len(server.requests)
    count, elapsed, store = await summarize_all(base, folder, "concurrent")
    calls_first = len(server.requests) - requests_before
    summarizer = Summarizer(base.llm)
    again = await summarize_pending(store, base.summaries, summarizer)
    await summarizer.close()
    calls_second = len(server.requests) - requests_before - calls_first
    spend = await store.summary_spend()
    await store.close()
    server.stop()

    prompt_tokens = sum(row[2] for row in spend)
    completion_tokens = sum(row[3] for row in spend)
    cost = (
        prompt_tokens * PRICE_PER_MILLION["prompt"]
        + completion_tokens * PRICE_PER_MILLION["completion"]
    ) / 1e6
    result = {
        "bench": "summaries",
        "latency_s": args.latency,
        "papers_summarized": count,
        "serial_per_min": round(count_serial / time_serial * 60, 1),
        "concurrency": default_concurrency,
        "concurrent_per_min": round(count / elapsed * 60, 1),
        "speedup": round((count / elapsed) / (count_serial / time_serial), 2),
        "calls_first_poll": calls_first,
        "calls_second_poll": calls_second,
        "second_poll_summarized": again.summarized,
        "days": len(DAYS),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "usd_gpt_4o_mini_both_days": round(cost, 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
