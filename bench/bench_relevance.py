"""Relevance: classification speed, model load time, and what the LLM judge costs.

    python bench/bench_relevance.py                      # 1,000-paper day + judge
    python bench/bench_relevance.py --corpus 1000000     # also the 1M-paper corpus

Classification is pure Python on one core (the service runs it in a worker thread):
features, the model's dot product and topic tags, per paper. The 1,000-paper day is
the first 1,000 real papers of the labelled fixture days; the 1M corpus is the
synthetic one of bench_store.py (generated and kept in bench/.corpus/ if missing).

The judge part runs the whole leave-one-day-out evaluation over the ten labelled
days, then asks a loopback OpenAI-compatible server for a verdict on every paper
whose held-out score falls in the band, JUDGE_BATCH_SIZE per request, and counts
requests and tokens (prompt characters / 4, as the server reports them). The
loopback server answers with the labels, so the F1 it prints is the ceiling a
perfect judge would reach, not a model's quality. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_store import CORPUS, generate_corpus, read_corpus  # noqa: E402

from bot.classify import load_classifier, load_model  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.judge import measure_judge  # noqa: E402
from bot.training import cross_validate, load_labelled_days  # noqa: E402
from bot.vocabulary import load_vocabulary  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402

LABELS = ROOT / "tests" / "fixtures" / "arxiv"
PRICE_PER_MILLION = {"prompt": 0.15, "completion": 0.60}  # gpt-4o-mini, USD


def classify_rate(texts: list[tuple[str, str]]) -> float:
    classifier = load_classifier()
    began = time.process_time()
    for title, abstract in texts:
        classifier.classify(title, abstract)
    return len(texts) / (time.process_time() - began)


def bench_day() -> dict:
    papers = [p for day in load_labelled_days(LABELS) for p in day.papers][:1000]
    began = time.perf_counter()
    load_model()
    load_vocabulary()
    load_seconds = time.perf_counter() - began
    rate = classify_rate([(p.title, p.abstract) for p in papers])
    print(
        f"1,000-paper day: {rate:,.0f} papers/s per core; model load {load_seconds * 1000:.0f} ms"
    )
    return {"day_papers_per_second": round(rate), "model_load_ms": round(load_seconds * 1000)}


def bench_corpus(size: int) -> dict:
    corpus = CORPUS / f"corpus-{size}.jsonl.gz"
    if not corpus.exists():
        print(f"generating {corpus.name} ...", file=sys.stderr)
        generate_corpus(size, corpus)
    classifier = load_classifier()
    done = 0
    began = time.process_time()
    for batch in read_corpus(corpus, 10_000):
        for paper in batch:
            classifier.classify(paper.title, paper.abstract)
        done += len(batch)
    seconds = time.process_time() - began  # includes reading the gzip file
    rate = done / seconds
    print(f"{done:,}-paper corpus: {rate:,.0f} papers/s per core ({seconds / 60:.1f} CPU minutes)")
    return {"corpus_papers": done, "corpus_papers_per_second": round(rate)}


async def bench_judge() -> dict:
    days = load_labelled_days(LABELS)
    results = cross_validate(days, load_vocabulary())
    truth = {p.arxiv_id: p.relevant for d in days for p in d.papers}
    server = FakeOpenAI().start()
    server.verdict_for = lambda arxiv_id, title: (truth[arxiv_id], [], "labelled")
    settings = load_settings(
        database_url="sqlite:///unused.db",
        openai_api_key="sk-bench",
        openai_base_url=server.base_url,
        openai_model="fake-judge",
    )
    try:
        measured = await measure_judge(settings.llm, settings.judge, results)
    finally:
        server.stop()
    for line in measured.lines():
        print(line)
    prompt, completion = measured.prompt_tokens, measured.completion_tokens
    cost = prompt * PRICE_PER_MILLION["prompt"] + completion * PRICE_PER_MILLION["completion"]
    print(f"At gpt-4o-mini prices the ten days' close calls cost ${cost / 1e6:.4f}.")
    return {
        "judge_papers": measured.band,
        "judge_requests": measured.requests,
        "judge_prompt_tokens": prompt,
        "judge_completion_tokens": completion,
        "judge_cost_usd": round(cost / 1e6, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=int, default=0, help="also classify an N-paper corpus")
    parser.add_argument("--no-judge", action="store_true")
    args = parser.parse_args()
    figures = bench_day()
    if args.corpus:
        figures |= bench_corpus(args.corpus)
    if not args.no_judge:
        figures |= asyncio.run(bench_judge())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
