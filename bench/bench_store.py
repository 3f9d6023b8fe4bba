"""Store benchmark: ingest rate, search latency against plain bm25, bytes per paper, peak RSS.

    python bench/bench_store.py --papers 100000
    python bench/bench_store.py --papers 1000000

Generates N synthetic papers whose words follow the fixtures' own word
frequencies (titles and abstracts separately), authors and categories drawn from
the fixtures, spread over the years; the corpus is kept in bench/.corpus/ and
reused. Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import re
import resource
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.listing import announcement_date  # noqa: E402
from bot.models import Paper, SearchQuery  # noqa: E402
from bot.search import SearchMode, query_terms, search_papers  # noqa: E402
from bot.store import Store, TextQuery  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "arxiv"
CORPUS = ROOT / "bench" / ".corpus"
WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]*")

# Fixed query set: rare and selective words, everyday words of the field that
# match much of the archive, phrases, and filters, as people type them.
QUERIES: list[dict[str, str]] = [
    {"text": "speculative decoding"},
    {"text": "quantization"},
    {"text": "pruning"},
    {"text": "knowledge distillation"},
    {"text": "LoRA"},
    {"text": "mixture of experts"},
    {"text": "kv cache"},
    {"text": "sparse attention"},
    {"text": "state space"},
    {"text": "low-rank"},
    {"text": '"language models"'},
    {"text": "learning"},
    {"text": "model"},
    {"text": "neural network"},
    {"text": "the"},
    {"text": "data"},
    {"text": "large language models reasoning"},
    {"text": "efficient inference"},
    {"text": "training"},
    {"text": "transformer"},
    {"text": "benchmark evaluation"},
    {"text": "graph neural networks"},
    {"text": "diffusion"},
    {"text": "reinforcement learning agents"},
    {"text": "vision language"},
    {"text": "retrieval augmented generation"},
    {"text": "optimization", "category": "cs.LG"},
    {"text": "model", "since": "2025-01-01"},
    {"text": "learning", "author": "Wang"},
    {"text": "memory"},
]


def _fixture_rows() -> list[dict]:
    rows = []
    for path in sorted(FIXTURES.glob("*.jsonl")):
        rows.extend(json.loads(line) for line in path.read_text().splitlines())
    return rows


def _weights(texts: list[str]) -> tuple[list[str], list[float]]:
    counts = Counter(w for text in texts for w in WORD.findall(text))
    words = list(counts)
    cumulative, total = [], 0.0
    for word in words:
        total += counts[word]
        cumulative.append(total)
    return words, cumulative


def generate_corpus(n: int, path: Path, seed: int = 7) -> None:
    rows = _fixture_rows()
    rng = random.Random(seed)
    title_words, title_cw = _weights([r["title"] for r in rows])
    abstract_words, abstract_cw = _weights([r["summary"] for r in rows])
    authors = sorted({a for r in rows for a in r["authors"]})
    categories = [r["categories"] for r in rows]
    start = datetime(2019, 1, 1, tzinfo=UTC)
    span_minutes = int((datetime(2025, 11, 12, tzinfo=UTC) - start).total_seconds() // 60)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with gzip.open(partial, "wt", encoding="utf-8", compresslevel=1) as out:
        minutes = sorted(rng.randrange(span_minutes) for _ in range(n))
        for index, minute in enumerate(minutes):
            when = start + timedelta(minutes=minute)
            title = " ".join(rng.choices(title_words, cum_weights=title_cw, k=rng.randint(6, 16)))
            abstract = " ".join(
                rng.choices(abstract_words, cum_weights=abstract_cw, k=rng.randint(120, 250))
            )
            row = {
                "id": f"{when:%y%m}.{index % 100000:05d}",
                "title": title.capitalize(),
                "summary": abstract,
                "authors": rng.sample(authors, rng.randint(1, 8)),
                "categories": [c for c in rng.choice(categories) if " " not in c],
                "when": when.isoformat(),
            }
            out.write(json.dumps(row) + "\n")
    partial.replace(path)


def read_corpus(path: Path, batch: int):
    with gzip.open(path, "rt", encoding="utf-8") as source:
        papers: list[Paper] = []
        seen: set[str] = set()
        for line in source:
            row = json.loads(line)
            when = datetime.fromisoformat(row["when"])
            arxiv_id = row["id"]
            while arxiv_id in seen:  # synthetic ids can collide; keep every paper
                arxiv_id = arxiv_id[:-1] + str((int(arxiv_id[-1]) + 1) % 10) + "x"
            seen.add(arxiv_id)
            papers.append(
                Paper(
                    arxiv_id=arxiv_id,
                    version=1,
                    title=row["title"],
                    abstract=row["summary"],
                    authors=tuple(row["authors"]),
                    categories=tuple(row["categories"]),
                    published=when,
                    updated=when,
                    announced=announcement_date(when),
                )
            )
            if len(papers) == batch:
                yield papers
                papers = []
        if papers:
            yield papers


def _title_hit_share(text: str, papers: list[Paper]) -> float:
    words = {w[:5] for w in re.findall(r"\w+", text.lower())}
    hits = [words <= {w[:5] for w in re.findall(r"\w+", p.title.lower())} for p in papers]
    return sum(hits) / len(hits) if hits else 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def bench_search(store: Store, rounds: int) -> dict:
    from datetime import date

    ours: list[float] = []
    reference: list[float] = []
    overlap: dict[str, list[float]] = {"exact": [], "windowed": []}
    # Share of the top 10 whose title holds every query word: do results stay *about*
    # the query? bm25 weighs titles 4x, so the reference scores well here.
    title_hits: dict[str, list[float]] = {"ours": [], "reference": []}
    for _ in range(rounds):
        for spec in QUERIES:
            query = SearchQuery(
                text=spec["text"],
                category=spec.get("category"),
                author=spec.get("author"),
                since=date.fromisoformat(spec["since"]) if "since" in spec else None,
                limit=10,
            )
            began = time.perf_counter()
            result = await search_papers(store, query)
            ours.append(time.perf_counter() - began)
            # The reference: the same MATCH expression, every match ranked by bm25.
            match = TextQuery(tuple(query_terms(spec["text"])), spec.get("author"))
            began = time.perf_counter()
            best = await store.search_reference_bm25(match, 10)
            reference.append(time.perf_counter() - began)
            if spec.keys() == {"text"} and result.mode is not SearchMode.ANY_TERM:
                got = {p.arxiv_id for p in result.papers}
                share = len(got & set(best)) / max(1, len(best))
                key = "windowed" if result.mode is SearchMode.NEWEST_RANKED else "exact"
                overlap[key].append(share)
                if key == "windowed":
                    reference_papers = [await store.get_paper(i) for i in best]
                    title_hits["ours"].append(_title_hit_share(spec["text"], result.papers))
                    title_hits["reference"].append(
                        _title_hit_share(spec["text"], [p for p in reference_papers if p])
                    )
    ms = lambda values, q: round(percentile(values, q) * 1000, 1)  # noqa: E731
    return {
        "search_p50_ms": ms(ours, 50),
        "search_p95_ms": ms(ours, 95),
        "search_p99_ms": ms(ours, 99),
        "reference_p50_ms": ms(reference, 50),
        "reference_p95_ms": ms(reference, 95),
        "reference_p99_ms": ms(reference, 99),
        "p95_speedup": round(percentile(reference, 95) / percentile(ours, 95), 1),
        "top10_overlap_exact_queries": round(statistics.mean(overlap["exact"]), 3)
        if overlap["exact"]
        else None,
        "top10_overlap_windowed_queries": round(statistics.mean(overlap["windowed"]), 3)
        if overlap["windowed"]
        else None,
        "windowed_queries": len(overlap["windowed"]) // rounds,
        "windowed_title_hit_at10_ours": round(statistics.mean(title_hits["ours"]), 3)
        if title_hits["ours"]
        else None,
        "windowed_title_hit_at10_reference": round(statistics.mean(title_hits["reference"]), 3)
        if title_hits["reference"]
        else None,
        "queries": len(QUERIES),
    }


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _database_bytes(path: Path) -> int:
    files = [Path(f"{path}{suffix}") for suffix in ("", "-wal")]
    return sum(f.stat().st_size for f in files if f.exists())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000, help="papers per transaction")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the query set")
    parser.add_argument("--reuse-db", action="store_true", help="skip ingest if the db exists")
    args = parser.parse_args()

    corpus = CORPUS / f"corpus-{args.papers}.jsonl.gz"
    if not corpus.exists():
        began = time.perf_counter()
        generate_corpus(args.papers, corpus)
        print(f"generated {corpus.name} in {time.perf_counter() - began:.0f}s", file=sys.stderr)
    db_path = CORPUS / f"bench-{args.papers}.db"
    ingest_rate = None
    if not (args.reuse_db and db_path.exists()):
        _remove_database(db_path)
        store = await Store.open(db_path)
        spent, stored = 0.0, 0
        for batch in read_corpus(corpus, args.batch):
            began = time.perf_counter()
            counts = await store.upsert_papers(batch)
            spent += time.perf_counter() - began
            stored += counts.new
            if stored % 100_000 < args.batch:
                print(f"  ingested {stored:,} ({stored / spent:,.0f}/s)", file=sys.stderr)
        ingest_rate = round(stored / spent)
        await store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        await store.close()
    size = _database_bytes(db_path)
    store = await Store.open(db_path)
    papers = await store.count_papers()
    figures = await bench_search(store, args.rounds)
    await store.close()
    result = {
        "bench": "store",
        "papers": papers,
        "ingest_papers_per_s": ingest_rate,
        **figures,
        "db_bytes_per_paper": round(size / papers),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
