"""SQLite against PostgreSQL in one run: ingest, search, delivery, leader failover.

    python bench/bench_postgres.py --papers 20000 --channels 200
    python bench/bench_postgres.py --papers 1000000 --parts store
    python bench/bench_postgres.py --channels 10000 --parts delivery

One PostgreSQL server (tests/postgres_server.py's, started with fsync, full-page writes and
synchronous commit ON unless `--no-durable`: SQLite runs WAL with synchronous=NORMAL, which
is crash-safe, so a server without fsync would flatter PostgreSQL) serves every part.

- store: bench_store's corpus of N papers (reused from bench/.corpus/, else generated into
  the scratch folder) goes batch by batch into a SQLite store and a PostgreSQL store in
  turn, through `upsert_papers` (only that call is timed); then `VACUUM ANALYZE` (PostgreSQL)
  and a WAL checkpoint (SQLite), timed apart. Then bench_store's 30 queries, `--rounds`
  times, each query on both backends in turn through `bot.search.search_papers`; p50/p95
  overall and per query. The statements of the query slowest on PostgreSQL relative to
  SQLite are traced and the slowest one is run again under EXPLAIN (ANALYZE, BUFFERS).
- delivery: one day's digest (the 2025-11-12 fixture) due in C channels of the loopback
  Discord (50 ms answers, the global limit of 50 requests/s); one `python -m bot run`
  process on SQLite, then one on PostgreSQL (it leads: nobody else holds the lock). Time
  from the process start (the digests are already due) to the last message, against
  the global-limit floor (messages / 50); papers lost and posted twice are counted.
- failover: two `run` processes (shards 0 and 1 of 2) on one PostgreSQL database; once
  the first leads, the second stands by and a third of the digests are out, the leader
  gets SIGKILL. Time to the standby's "leading" line and to its first message (a standby
  asks every 10 s, so expect 0 to 10 s plus start-up of its loops), then to the end.

Scratch (databases, logs, the server's data and the EXPLAIN output) goes to --scratch.
Prints a table to stderr and ends with one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import asyncpg  # noqa: E402
from bench_fault_soak import (  # noqa: E402
    GLOBAL_LIMIT_PER_S,
    count_posts,
    run_env,
    tally,
)
from bench_store import (  # noqa: E402
    CORPUS,
    QUERIES,
    _database_bytes,
    _remove_database,
    generate_corpus,
    percentile,
    read_corpus,
)

from bot.config import StorageSettings  # noqa: E402
from bot.models import SearchQuery  # noqa: E402
from bot.search import search_papers  # noqa: E402
from bot.store import Store, open_store  # noqa: E402
from bot.store.postgres import translate  # noqa: E402
from tests.fake_discord import GUILD_ID, FakeDiscord, text_channel  # noqa: E402
from tests.helpers import database_with_due_digests, papers_shown  # noqa: E402
from tests.postgres_server import PostgresServer  # noqa: E402
from tests.test_run_process import start_service, wait_for  # noqa: E402


def log(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


class BenchServer(PostgresServer):
    """The tests' server with its data in the scratch folder and, when `durable`, fsync,
    synchronous commit and full-page writes on (PostgreSQL's defaults)."""

    def __init__(self, scratch: Path, durable: bool) -> None:
        super().__init__(durable=durable, parent=scratch)

    def settings(self) -> dict[str, str]:
        names = (
            "fsync synchronous_commit full_page_writes shared_buffers max_wal_size server_version"
        )
        return {n: self.psql(f"SHOW {n}") for n in names.split()}


# -- ingest and search ------------------------------------------------------------------


def corpus_path(papers: int, scratch: Path) -> Path:
    for folder in (CORPUS, scratch / "corpus"):
        path = folder / f"corpus-{papers}.jsonl.gz"
        if path.exists():
            return path
    path = scratch / "corpus" / f"corpus-{papers}.jsonl.gz"
    began = time.perf_counter()
    generate_corpus(papers, path)
    log(f"generated {path} in {time.perf_counter() - began:.0f}s")
    return path


def query_of(spec: dict[str, str]) -> SearchQuery:
    return SearchQuery(
        text=spec["text"],
        category=spec.get("category"),
        author=spec.get("author"),
        since=date.fromisoformat(spec["since"]) if "since" in spec else None,
        limit=10,
    )


def label(spec: dict[str, str]) -> str:
    extra = " ".join(f"{k}={v}" for k, v in spec.items() if k != "text")
    return f"{spec['text']} {extra}".strip()


async def ingest(stores: dict[str, Store], corpus: Path, batch: int) -> dict[str, Any]:
    spent = dict.fromkeys(stores, 0.0)
    stored = dict.fromkeys(stores, 0)
    for papers in read_corpus(corpus, batch):
        for name, store in stores.items():
            began = time.perf_counter()
            counts = await store.upsert_papers(papers)
            spent[name] += time.perf_counter() - began
            stored[name] += counts.new
        done = stored["sqlite"]
        if done % 50_000 < batch:
            rates = ", ".join(f"{n} {stored[n] / spent[n]:,.0f}/s" for n in stores)
            log(f"  ingested {done:,}: {rates}; load {os.getloadavg()[0]:.1f}")
    return {n: {"papers": stored[n], "seconds": spent[n]} for n in stores}


async def time_searches(stores: dict[str, Store], rounds: int) -> dict[str, dict[str, list]]:
    """Seconds per (backend, query), each query on both backends in turn."""
    times: dict[str, dict[str, list]] = {n: {label(q): [] for q in QUERIES} for n in stores}
    for _ in range(rounds):
        for spec in QUERIES:
            for name, store in stores.items():
                began = time.perf_counter()
                await search_papers(store, query_of(spec))
                times[name][label(spec)].append(time.perf_counter() - began)
    return times


class _Timed:
    """A statement the store runs, timed: awaitable or `async with`, like what it wraps."""

    def __init__(self, pending: Any, sql: str, parameters: Any, trace: list) -> None:
        self._pending, self._sql, self._parameters, self._trace = pending, sql, parameters, trace

    async def _run(self) -> Any:
        began = time.perf_counter()
        result = await self._pending
        self._trace.append((time.perf_counter() - began, self._sql, tuple(self._parameters)))
        return result

    def __await__(self) -> Any:
        return self._run().__await__()

    async def __aenter__(self) -> Any:
        return await self._run()

    async def __aexit__(self, *exc: object) -> None:
        return None


async def explain_slowest(store: Store, url: str, spec: dict[str, str], out: Path) -> str:
    """Trace the statements one search issues on PostgreSQL; EXPLAIN ANALYZE the slowest,
    with the plan PostgreSQL makes for these words and the generic plan it may switch to
    after five runs of a prepared statement (asyncpg prepares and caches every one)."""
    conn: Any = store._conn
    original = conn.execute
    trace: list[tuple[float, str, tuple]] = []
    conn.execute = lambda sql, parameters=(), /: _Timed(
        original(sql, parameters), sql, parameters, trace
    )
    try:
        await search_papers(store, query_of(spec))
    finally:
        del conn.execute
    lines = [f"query {label(spec)!r}: {len(trace)} statements"]
    lines += [f"  {s * 1000:8.1f} ms  {' '.join(sql.split())[:150]}" for s, sql, _ in trace]
    seconds, sql, parameters = max(trace, key=lambda t: t[0])
    lines += ["", f"slowest ({seconds * 1000:.1f} ms): {' '.join(sql.split())}", f"  {parameters}"]
    raw = await asyncpg.connect(url)
    try:
        again = []
        for _ in range(8):  # a fresh connection: custom plans first, then perhaps generic
            began = time.perf_counter()
            await raw.fetch(translate(sql), *parameters)
            again.append(round((time.perf_counter() - began) * 1000, 1))
        lines.append(f"  8 runs of it as a prepared statement on a new connection, ms: {again}")
        literals = ", ".join(
            str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"
            for v in parameters
        )
        for mode in ("force_custom_plan", "force_generic_plan"):
            await raw.execute(f"SET plan_cache_mode = {mode}")
            await raw.execute(f"PREPARE bench_explain AS {translate(sql)}")
            plan = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_explain({literals})")
            await raw.execute("DEALLOCATE bench_explain")
            lines += ["", f"plan_cache_mode = {mode}:"] + [row[0] for row in plan]
    finally:
        await raw.close()
    text = "\n".join(lines)
    await asyncio.to_thread(out.write_text, text + "\n")
    return text


async def bench_store_parts(args: argparse.Namespace, server: BenchServer) -> dict[str, Any]:
    corpus = corpus_path(args.papers, args.scratch)
    db_path = args.scratch / f"sqlite-{args.papers}.db"
    _remove_database(db_path)
    url = server.create_database("ingest")
    stores: dict[str, Store] = {
        "sqlite": await Store.open(db_path),
        "postgresql": await open_store(StorageSettings(url)),
    }
    log(f"ingest: {corpus.name}, batches of {args.batch}, both backends in turn")
    figures = await ingest(stores, corpus, args.batch)
    began = time.perf_counter()
    await stores["sqlite"]._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    figures["sqlite"]["after_s"] = time.perf_counter() - began
    began = time.perf_counter()
    raw = await asyncpg.connect(url)
    await raw.execute("VACUUM (ANALYZE) papers")
    figures["postgresql"]["after_s"] = time.perf_counter() - began
    figures["sqlite"]["bytes"] = _database_bytes(db_path)
    figures["postgresql"]["bytes"] = await raw.fetchval(
        "SELECT pg_database_size(current_database())"
    )
    await raw.close()
    log(f"search: {len(QUERIES)} queries x {args.rounds} rounds, load {os.getloadavg()[0]:.1f}")
    times = await time_searches(stores, args.rounds)
    ratios = {
        q: statistics.median(times["postgresql"][q]) / statistics.median(times["sqlite"][q])
        for q in times["sqlite"]
    }
    worst = max(QUERIES, key=lambda spec: ratios[label(spec)])
    explained = await explain_slowest(
        stores["postgresql"], url, worst, args.scratch / "explain.txt"
    )
    for store in stores.values():
        await store.close()

    ms = lambda values, q: round(percentile(values, q) * 1000, 1)  # noqa: E731
    result: dict[str, Any] = {"papers": figures["sqlite"]["papers"], "batch": args.batch}
    log("")
    log(f"{'':24}{'SQLite':>14}{'PostgreSQL':>14}")
    for name in stores:
        f = figures[name]
        every = [t for ts in times[name].values() for t in ts]
        result[f"{name}_ingest_papers_per_s"] = round(f["papers"] / f["seconds"])
        result[f"{name}_after_ingest_s"] = round(f["after_s"], 1)
        result[f"{name}_bytes_per_paper"] = round(f["bytes"] / max(1, f["papers"]))
        result[f"{name}_search_p50_ms"] = ms(every, 50)
        result[f"{name}_search_p95_ms"] = ms(every, 95)
    rows = [
        ("papers ingested", "{:,}", "papers"),
        ("ingest papers/s", "{:,}", "ingest_papers_per_s"),
        ("checkpoint / VACUUM s", "{}", "after_ingest_s"),
        ("bytes per paper", "{:,}", "bytes_per_paper"),
        ("search p50 ms", "{}", "search_p50_ms"),
        ("search p95 ms", "{}", "search_p95_ms"),
    ]
    for title, fmt, key in rows:
        cells = [
            fmt.format(result[key] if key == "papers" else result[f"{n}_{key}"]) for n in stores
        ]
        log(f"{title:24}{cells[0]:>14}{cells[1]:>14}")
    log("")
    log(f"per query, median ms over {args.rounds} rounds:")
    log(f"  {'query':40}{'SQLite':>10}{'PostgreSQL':>12}{'ratio':>8}")
    per_query = {}
    for spec in QUERIES:
        q = label(spec)
        a, b = (statistics.median(times[n][q]) * 1000 for n in stores)
        per_query[q] = [round(a, 1), round(b, 1)]
        log(f"  {q[:40]:40}{a:10.1f}{b:12.1f}{b / a:8.1f}")
    log("")
    log(explained)
    result["per_query_median_ms_sqlite_pg"] = per_query
    result["worst_query_on_postgresql"] = label(worst)
    return result


# -- delivery and failover --------------------------------------------------------------


def channel_ids(count: int, base: int) -> list[str]:
    return [str(base + i) for i in range(count)]


def loopback_discord(ids: list[str], latency: float) -> FakeDiscord:
    fake = FakeDiscord(post_latency=latency, global_limit_per_s=GLOBAL_LIMIT_PER_S)
    for channel_id in ids:
        fake.channels[channel_id] = text_channel(channel_id, GUILD_ID, f"c{channel_id[-4:]}")
    return fake.start()


class Completion:
    """Which channels show every expected paper, rechecking only the unfinished ones."""

    def __init__(self, fake: FakeDiscord, ids: list[str], expected: set[str]) -> None:
        self.fake, self.left, self.expected = fake, set(ids), expected

    def __call__(self) -> bool:
        for channel_id in list(self.left):
            posts = self.fake.posted(channel_id)
            if posts and set().union(*map(papers_shown, posts)) >= self.expected:
                self.left.discard(channel_id)
        return not self.left


def deliver(backend: str, database: str, channels: int, latency: float, folder: Path, limit: float):
    """One `run` process posts the due digests of `channels` channels; seconds from its
    start (the digests are already due) to its first and last message."""
    ids = channel_ids(channels, 941000000000000000)
    fake = loopback_discord(ids, latency)
    # Due at the last whole minute: due already when the process starts.
    due = datetime.now(UTC).replace(second=0, microsecond=0)
    began = time.monotonic()
    target: Any = Path(database) if backend == "sqlite" else database
    expected = asyncio.run(database_with_due_digests(target, GUILD_ID, ids, due))
    setup = time.monotonic() - began
    url = f"sqlite:///{database}" if backend == "sqlite" else database
    log(f"delivery on {backend}: {channels} channels subscribed in {setup:.0f}s; starting `run`")
    load = os.getloadavg()[0]
    started = time.monotonic()
    process, read_logs = start_service(run_env(url, fake, backend), folder, f"deliver-{backend}")
    done = Completion(fake, ids, expected)
    first = None
    try:
        deadline = started + limit
        while not done() and time.monotonic() < deadline:
            if first is None and fake.last_post_at:
                first = fake.last_post_at - started
            time.sleep(0.5)
        finished = fake.last_post_at - started
        complete = not done.left
        time.sleep(2)  # a late second post of anything would land now
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
        fake.stop()
    figures = tally(fake, ids, expected)
    text = "".join(read_logs())
    floor = figures["messages"] / GLOBAL_LIMIT_PER_S
    return {
        "backend": backend,
        "channels": channels,
        **figures,
        "complete": complete,
        "start_to_first_message_s": round(first, 1) if first is not None else None,
        "due_to_last_message_s": round(finished, 1),
        "global_limit_floor_s": round(floor, 1),
        "ratio_to_floor": round(finished / floor, 2) if floor else None,
        "subscribe_setup_s": round(setup, 1),
        "load_at_start": round(load, 1),
        "tracebacks": text.count("Traceback"),
        "exit_code": exit_code,
    }


def failover(server: BenchServer, channels: int, latency: float, folder: Path, limit: float):
    ids = channel_ids(channels, 951000000000000000)
    fake = loopback_discord(ids, latency)
    url = server.create_database("failover")
    due = datetime.now(UTC).replace(second=0, microsecond=0)
    expected = asyncio.run(database_with_due_digests(url, GUILD_ID, ids, due))
    shards = lambda i: ["--shard-ids", str(i), "--shard-count", "2"]  # noqa: E731
    both = lambda logs: "".join(logs())  # noqa: E731
    started = time.monotonic()
    leader, leader_logs = start_service(run_env(url, fake, "alpha"), folder, "alpha", shards(0))
    standby = None
    try:
        wait_for(lambda: "leading" in both(leader_logs), 120)
        led_after = time.monotonic() - started
        standby, standby_logs = start_service(run_env(url, fake, "beta"), folder, "beta", shards(1))
        wait_for(lambda: "standby" in both(standby_logs), 120)
        # Kill the leader with about a third of the digests out (3 messages a channel).
        wait_for(lambda: count_posts(fake, ids) >= channels, 120)
        done = Completion(fake, ids, expected)
        if done():
            raise SystemExit("failover: delivery ended before the kill; raise --failover-channels")
        leader.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        leader.wait(10)
        at_kill = count_posts(fake, ids)
        # Posts the dead leader had in flight land within ~latency; after that, any new
        # post is the new leader's.
        time.sleep(latency + 0.25)
        baseline = count_posts(fake, ids)
        took_over = resumed = None
        deadline = killed + limit
        while (took_over is None or resumed is None) and time.monotonic() < deadline:
            now = time.monotonic()
            if took_over is None and "leading" in both(standby_logs):
                took_over = now - killed
            if resumed is None and count_posts(fake, ids) > baseline:
                resumed = now - killed
            time.sleep(0.02)
        while not done() and time.monotonic() < deadline:
            time.sleep(0.25)
        finished = fake.last_post_at - killed
        time.sleep(2)
        standby.send_signal(signal.SIGTERM)
        standby.wait(30)
    finally:
        for process in (leader, standby):
            if process is not None and process.poll() is None:
                process.kill()
        fake.stop()
    figures = tally(fake, ids, expected)
    return {
        "channels": channels,
        **figures,
        "complete": not done.left,
        "leader_led_after_s": round(led_after, 1),
        "posts_at_kill": at_kill,
        "kill_to_standby_leading_s": round(took_over, 2) if took_over is not None else None,
        "kill_to_first_new_message_s": round(resumed, 2) if resumed is not None else None,
        "kill_to_last_message_s": round(finished, 1),
        "tracebacks": both(standby_logs).count("Traceback"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=5000, help="papers per transaction")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the query set")
    parser.add_argument("--channels", type=int, default=1000, help="channels for delivery")
    parser.add_argument("--failover-channels", type=int, default=500)
    parser.add_argument("--failover-trials", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.05, help="Discord's answer time")
    parser.add_argument("--limit", type=float, default=1800, help="give up a delivery after")
    parser.add_argument(
        "--durable",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="PostgreSQL with fsync, synchronous commit, full-page writes (default on)",
    )
    parser.add_argument(
        "--parts",
        nargs="*",
        default=["store", "delivery", "failover"],
        choices=["store", "delivery", "failover"],
    )
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/bench-pg"))
    parser.add_argument("--keep", action="store_true", help="keep the SQLite files")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    os.chmod(args.scratch, 0o755)  # the server runs as `postgres` when we are root
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=args.scratch))

    server = BenchServer(args.scratch, args.durable).start()
    config = server.settings()
    log(f"PostgreSQL {config.pop('server_version')} at {server.root}: {config}")
    if not args.durable:
        log("NOTE: fsync, synchronous_commit and full_page_writes are OFF: flatters PostgreSQL")
    log(f"load average at start: {os.getloadavg()} on {os.cpu_count()} cores")
    result: dict[str, Any] = {"bench": "postgres", "durable": args.durable, "pg_settings": config}
    result["load_at_start"] = round(os.getloadavg()[0], 1)
    table: list[str] = []
    try:
        if "store" in args.parts:
            result.update(asyncio.run(bench_store_parts(args, server)))
        if "delivery" in args.parts:
            runs = []
            for backend in ("sqlite", "postgresql"):
                database = (
                    str(run_dir / "deliver.db")
                    if backend == "sqlite"
                    else server.create_database("deliver")
                )
                figures = deliver(
                    backend, database, args.channels, args.latency, run_dir, args.limit
                )
                log(json.dumps(figures))
                runs.append(figures)
                for key in ("due_to_last_message_s", "global_limit_floor_s", "messages"):
                    result[f"delivery_{backend}_{key}"] = figures[key]
                result[f"delivery_{backend}_lost_duplicates"] = [
                    figures["papers_lost"],
                    figures["duplicate_papers"],
                ]
            table.append(f"delivery, {args.channels:,} channels, one process:")
            table.append(
                f"  {'':12}{'messages':>10}{'due→last s':>12}{'floor s':>9}{'ratio':>7}"
                f"{'lost/dup':>10}"
            )
            for r in runs:
                table.append(
                    f"  {r['backend']:12}{r['messages']:>10,}{r['due_to_last_message_s']:>12}"
                    f"{r['global_limit_floor_s']:>9}{r['ratio_to_floor']:>7}"
                    f"{str(r['papers_lost']) + '/' + str(r['duplicate_papers']):>10}"
                )
            result["delivery_channels"] = args.channels
        if "failover" in args.parts:
            trials = []
            for trial in range(args.failover_trials):
                folder = run_dir / f"failover-{trial}"
                folder.mkdir()
                figures = failover(server, args.failover_channels, args.latency, folder, args.limit)
                log(json.dumps(figures))
                trials.append(figures)
            table.append(f"failover, {args.failover_channels} channels, SIGKILL of the leader:")
            for t in trials:
                table.append(
                    f"  killed after {t['posts_at_kill']} of {t['messages']} messages;"
                    f" standby leading {t['kill_to_standby_leading_s']} s,"
                    f" first new message {t['kill_to_first_new_message_s']} s,"
                    f" last {t['kill_to_last_message_s']} s;"
                    f" lost/dup {t['papers_lost']}/{t['duplicate_papers']}"
                )
            for key in ("kill_to_standby_leading_s", "kill_to_first_new_message_s"):
                result[f"failover_{key}"] = [t[key] for t in trials]
            result["failover_lost_duplicates"] = [
                [t["papers_lost"], t["duplicate_papers"]] for t in trials
            ]
    finally:
        log_copy = run_dir / "postgresql.log"
        if (server.root / "log").exists():
            shutil.copy(server.root / "log", log_copy)
        server.stop()
        if not args.keep:
            _remove_database(args.scratch / f"sqlite-{args.papers}.db")
    for line in table:
        log(line)
    result["load_at_end"] = round(os.getloadavg()[0], 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["scratch"] = str(run_dir)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
