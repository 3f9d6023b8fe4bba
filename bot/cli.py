"""Command line: `python -m bot COMMAND`. Builds Settings once and passes them down."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

from bot.classify import TOPICS, ModelFileError, load_classifier, load_model
from bot.config import Settings, SettingsError, StorageSettings, load_settings
from bot.digests.export import digest_for_day, export_markdown, latest_listing_day
from bot.digests.render import poll_record
from bot.digests.terminal import render_search_results, render_terminal
from bot.early_signals import EARLY_SIGTERMS
from bot.health import check_health
from bot.ingest import FeedError, PollProgress
from bot.judge import judge_pending, measure_judge
from bot.leadership import heartbeat_key, leadership_for
from bot.llm import ProviderRefused
from bot.logs import configure_logging
from bot.models import ListOwner, PollOutcome, SearchQuery
from bot.pipeline import classify_pending, open_judge, run_cycle
from bot.reading_lists import import_reading_list, render_reading_list
from bot.search import SearchError, search_papers
from bot.store import DatabaseTooNewError, Store, open_store
from bot.store.postgres import BackupOnPostgres, DatabaseUnreachable
from bot.store.transfer import TransferError
from bot.summarize import Summarizer
from bot.training import (
    LabelledDay,
    LabelsError,
    TrainingUnavailable,
    cross_validate,
    evaluate_days,
    format_results,
    load_labelled_days,
    train_model,
)
from bot.vocabulary import load_vocabulary

log = logging.getLogger("bot")
SHUTDOWN_SECONDS = 8  # Docker waits 10 s between SIGTERM and SIGKILL


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-10-03") from None


def _shard_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers like 0,1") from None
    if not ids or min(ids) < 0 or len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct shard numbers from 0, e.g. 0,1")
    return ids


def shard_problem(settings: Settings, args: argparse.Namespace) -> str | None:
    """Why these shard options cannot run, or None."""
    if args.shard_ids is None and args.shard_count is None:
        return None
    if not settings.storage.is_postgres:
        return (
            "--shard-ids and --shard-count need PostgreSQL (DATABASE_URL=postgresql://...);"
            " on SQLite the bot runs as one process"
        )
    if args.shard_count is None or args.shard_count < 1:
        return "--shard-count must be given, 1 or more, with --shard-ids"
    outside = [i for i in args.shard_ids or [] if i >= args.shard_count]
    if outside:
        return (
            f"--shard-ids {','.join(map(str, outside))} outside --shard-count"
            f" {args.shard_count} (shards are numbered 0 to {args.shard_count - 1})"
        )
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="arXiv efficiency digest: a Discord bot, and the tools behind it.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run", help="run the Discord bot: poller, summaries, daily digests, slash commands"
    )
    run.add_argument(
        "--shard-ids",
        type=_shard_ids,
        help="PostgreSQL only: the gateway shards this process runs, e.g. 0,1",
    )
    run.add_argument(
        "--shard-count",
        type=int,
        help="PostgreSQL only: how many shards the bot has in all (every process the same)",
    )
    commands.add_parser("fetch", help="poll arXiv once: store, classify and summarize new papers")
    status = commands.add_parser("status", help="show the last polls and what is stored")
    status.add_argument("--limit", type=int, default=10, help="how many polls to show")
    search = commands.add_parser("search", help="search every stored paper")
    search.add_argument(
        "query", nargs="?", default="", help="words, a phrase in quotes, or an arXiv id/URL"
    )
    search.add_argument("--topic", choices=TOPICS)
    search.add_argument("--category", help="arXiv category, e.g. cs.LG")
    search.add_argument("--author")
    search.add_argument("--since", type=_date, help="listed on or after YYYY-MM-DD")
    search.add_argument("--until", type=_date, help="listed on or before YYYY-MM-DD")
    search.add_argument("--limit", type=int, default=10)
    digest = commands.add_parser("digest", help="print the relevant papers of one listing day")
    digest.add_argument("--date", type=_date, help="listing day (default: the latest stored)")
    digest.add_argument("--explain", action="store_true", help="show why each paper was picked")
    export = commands.add_parser(
        "export-markdown", help="write the archive in the curated list's Markdown format"
    )
    export.add_argument("--output", type=Path, default=Path("papers.md"))
    commands.add_parser("stats", help="papers, summaries and tokens spent per model")
    commands.add_parser(
        "health", help="exit 0 if the running service is healthy, 1 if not (one line why)"
    )
    migrate_to = commands.add_parser(
        "migrate-to",
        help="copy this SQLite install into an empty PostgreSQL database and check the counts",
    )
    migrate_to.add_argument("url", help="postgresql://user:password@host:5432/dbname")
    backup = commands.add_parser("backup", help="write a consistent copy of the live database")
    backup.add_argument("path", type=Path, help="where to write the copy")
    commands.add_parser("migrate", help="create or upgrade the database")
    commands.add_parser("classify", help="score papers not yet scored by the current model")
    train = commands.add_parser(
        "train-classifier", help="learn a relevance model from labelled days (needs .[train])"
    )
    train.add_argument("--labels", type=Path, required=True, help="folder of labels-DATE.tsv")
    train.add_argument("--listings", type=Path, help="folder of DATE.jsonl (default: --labels)")
    train.add_argument("--output", type=Path, required=True, help="model file to write")
    evaluate = commands.add_parser(
        "evaluate", help="precision, recall, F1 and tag agreement on labelled days"
    )
    evaluate.add_argument("--labels", type=Path, required=True, help="folder of labels-DATE.tsv")
    evaluate.add_argument("--listings", type=Path, help="folder of DATE.jsonl (default: --labels)")
    evaluate.add_argument(
        "--cross-validate",
        action="store_true",
        help="for every day, train on the others and test on it (needs .[train])",
    )
    evaluate.add_argument(
        "--judge", action="store_true", help="also measure the LLM judge on the close calls"
    )
    evaluate.add_argument("--errors", action="store_true", help="list every wrong decision")
    reading = commands.add_parser(
        "readinglist", help="export or import a reading list in the monthly Markdown format"
    )
    actions = reading.add_subparsers(dest="action", metavar="ACTION", required=True)
    export_list = actions.add_parser("export", help="write a person's or a channel's list")
    import_list = actions.add_parser(
        "import", help="read a list in the same format (ids from its arXiv links)"
    )
    import_list.add_argument("file", type=Path, help="a Markdown reading list")
    for action in (export_list, import_list):
        whose = action.add_mutually_exclusive_group(required=True)
        whose.add_argument("--user", type=_discord_id, help="a Discord user id")
        whose.add_argument("--channel", type=_discord_id, help="a Discord channel id")
    export_list.add_argument("--output", type=Path, help="file to write (default: stdout)")
    return parser


def _discord_id(text: str) -> str:
    if not text.isdigit() or not 15 <= len(text) <= 21:
        raise argparse.ArgumentTypeError(f"{text[:30]!r} is not a Discord id (15-21 digits)")
    return text


def _print_progress(progress: PollProgress) -> None:
    reached = progress.reached.strftime("%Y-%m-%d %H:%M") if progress.reached else "-"
    c = progress.counts
    print(
        f"  page {progress.pages}: {c.new} new, {c.updated} updated, {c.unchanged} unchanged"
        f" (reached {reached} UTC)",
        file=sys.stderr,
        flush=True,
    )


async def cmd_run(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    from bot.discord_bot.client import Shards, bot_for
    from bot.discord_bot.supervisor import TokenRefused, run_until_stopped
    from bot.service import Service

    assert settings.discord_token is not None
    # Signals first: a `docker stop` while the models load still ends cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    if EARLY_SIGTERMS:  # arrived while the program loaded
        stop.set()
    classifier = load_classifier(settings.vocabulary_path, settings.relevance_model_path)
    summarizer = Summarizer(settings.llm) if settings.openai_api_key else None
    judge = open_judge(settings)
    service = Service(
        store,
        settings,
        classifier,
        summarizer,
        judge,
        leadership=leadership_for(settings),
        heartbeat_key=heartbeat_key(settings),
    )
    shards = (
        Shards(args.shard_ids or list(range(args.shard_count)), args.shard_count)
        if (args.shard_count)
        else None
    )
    log.info("service starting%s", f" shards={shards.ids} of {shards.count}" if shards else "")
    try:
        await run_until_stopped(
            lambda: bot_for(settings, store, service, shards=shards),
            settings.discord_token.get_secret_value(),
            stop,
            SHUTDOWN_SECONDS,
        )
    except TokenRefused as exc:
        log.error("service stopped reason=%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        for client in (summarizer, judge):
            if client:
                await client.close()
    log.info("service stopped")
    return 0


async def cmd_migrate_to(settings: Settings, args: argparse.Namespace) -> int:
    from bot.store.postgres import PostgresStore
    from bot.store.transfer import check_empty, copy_to_postgres

    target_storage = StorageSettings(args.url)
    if settings.storage.is_postgres or not target_storage.is_postgres:
        print(
            "error: migrate-to copies the SQLite database DATABASE_URL names into the"
            " postgresql:// URL given",
            file=sys.stderr,
        )
        return 2
    if not settings.database_path.is_file():
        print(f"error: no database at {settings.database_path}", file=sys.stderr)
        return 2
    # The target is looked at before anything is written, to either database.
    async with await PostgresStore.connect(args.url, migrate=None) as target:
        await check_empty(target)
        async with await open_store(settings.storage) as source:
            await target.migrate()
            copied = await copy_to_postgres(source, target)
    for item in copied:
        print(f"  {item.table}: {item.rows:,} rows")
    print(
        f"Copied {settings.storage.display_name} into {target_storage.display_name};"
        " every table's count matches. Set DATABASE_URL to the new URL and start the bot."
    )
    return 0


async def cmd_health(settings: Settings) -> int:
    healthy, line = await check_health(
        settings.storage, settings.poll_interval_minutes, heartbeat_key=heartbeat_key(settings)
    )
    print(line)
    return 0 if healthy else 1


async def cmd_backup(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    await store.backup_to(args.path)
    print(f"Backed up {settings.storage.display_name} to {args.path}")
    return 0


async def cmd_readinglist(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    from bot.service import Service

    owner = ListOwner.user(args.user) if args.user else ListOwner.channel(args.channel)
    if args.action == "export":
        entries = await store.list_entries(owner)
        text = render_reading_list(entries)
        if args.output is None:
            print(text, end="")
        else:
            await asyncio.to_thread(args.output.write_text, text, encoding="utf-8")
            print(f"Wrote {len(entries)} papers to {args.output}", file=sys.stderr)
        return 0
    try:
        text = await asyncio.to_thread(args.file.read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    service = Service(
        store, settings, load_classifier(settings.vocabulary_path, settings.relevance_model_path)
    )
    try:
        report = await import_reading_list(store, owner, text, service.fetch_papers)
    except FeedError as exc:
        print(f"error: arXiv could not be reached ({exc}); nothing imported", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    return 0


async def cmd_fetch(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    classifier = load_classifier(settings.vocabulary_path, settings.relevance_model_path)
    summarizer = Summarizer(settings.llm) if settings.openai_api_key else None
    judge = open_judge(settings)
    print("Polling arXiv...", file=sys.stderr, flush=True)
    try:
        report = await run_cycle(
            store, settings, classifier, summarizer, on_progress=_print_progress, judge=judge
        )
    finally:
        for client in (summarizer, judge):
            if client:
                await client.close()
    c = report.counts
    summary = (
        f"{c.new} new, {c.updated} updated, {c.unchanged} unchanged, {report.requests} requests"
    )
    if report.outcome is PollOutcome.FAILED:
        print(f"Poll failed: {report.reason}. Stored so far: {summary}.")
        return 1
    if report.outcome is PollOutcome.NOTHING:
        print(f"Nothing new on arXiv since the last poll ({summary}).")
    else:
        print(f"Poll done: {summary}.")
    return 0


async def cmd_status(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    polls = await store.recent_polls(args.limit)
    total = await store.count_papers()
    relevant = await store.count_papers(settings.relevance_threshold)
    span = await store.listing_days()
    print(f"Papers stored: {total:,} ({relevant:,} relevant)")
    if span:
        print(f"Listing days: {span[0]} to {span[1]}")
    print("Last polls:" if polls else "No polls yet: run `python -m bot fetch`.")
    for poll in polls:
        print("  " + poll_record(poll))
    return 0


async def cmd_search(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    query = SearchQuery(
        text=args.query,
        topic=args.topic,
        category=args.category,
        author=args.author,
        since=args.since,
        until=args.until,
        limit=max(1, min(args.limit, 100)),
    )
    try:
        result = await search_papers(store, query)
    except SearchError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if not result.papers:
        print("No papers found.")
        return 0
    print(render_search_results(result.papers, result.mode == "any-term"))
    return 0


async def cmd_digest(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    day = args.date or await latest_listing_day(store)
    if day is None:
        print("No papers stored yet: run `python -m bot fetch` first.")
        return 0
    digest = await digest_for_day(store, day, settings.relevance_threshold)
    print(render_terminal(digest, explain_picks=args.explain))
    return 0


async def cmd_export(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    count = await export_markdown(store, args.output, settings.relevance_threshold)
    print(f"Wrote {count} papers to {args.output}")
    return 0


async def cmd_stats(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    total = await store.count_papers()
    relevant = await store.count_papers(settings.relevance_threshold)
    spend = await store.summary_spend()
    print(f"Papers: {total:,}")
    print(f"Relevant papers: {relevant:,}")
    print(f"Summaries: {sum(row[1] for row in spend):,}")
    if not settings.openai_api_key:
        print("No OPENAI_API_KEY: digests use summaries extracted from the abstracts.")
    if spend:
        print("Tokens spent on summaries per model (prompt + completion):")
        for model, count, prompt, completion in spend:
            print(f"  {model}: {count:,} summaries, {prompt:,} + {completion:,} tokens")
    verdicts = await store.judgement_spend()
    if verdicts:
        print("Tokens spent on relevance verdicts per model (prompt + completion):")
        for model, count, prompt, completion in verdicts:
            print(f"  {model}: {count:,} verdicts, {prompt:,} + {completion:,} tokens")
    return 0


async def cmd_migrate(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    current, _ = await store.schema_versions()
    print(f"Database {settings.storage.display_name} is at schema version {current}.")
    return 0


async def cmd_classify(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    classifier = load_classifier(settings.vocabulary_path, settings.relevance_model_path)
    judge = open_judge(settings)
    try:
        count = await classify_pending(store, classifier, judge.scope if judge else None)
        print(f"Classified {count} papers with {classifier.version}.")
        if judge:
            run = await judge_pending(store, settings.judge, judge)
            print(f"Judged {run.judged} close calls ({run.failed} without a verdict).")
    finally:
        if judge:
            await judge.close()
    return 0


def _training_days(args: argparse.Namespace) -> list[LabelledDay]:
    return load_labelled_days(args.labels, args.listings)


def cmd_train_classifier(settings: Settings, args: argparse.Namespace) -> int:
    if not args.output.parent.is_dir():
        raise LabelsError(f"{args.output.parent}: no such folder for the model file")
    days = _training_days(args)
    model = train_model(days, load_vocabulary(settings.vocabulary_path))
    args.output.write_text(model.to_json(), encoding="utf-8")
    meta = model.metadata
    print(
        f"Trained on {len(days)} days ({meta['papers']} papers, {meta['relevant']} relevant):"
        f" {len(model.weights)} features, threshold {model.threshold:.2f} chosen by"
        f" leave-one-day-out. Wrote {args.output} ({load_model(args.output).version})."
    )
    return 0


async def cmd_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    if args.judge and settings.openai_api_key is None:
        print(
            "error: evaluate --judge needs OPENAI_API_KEY (and OPENAI_BASE_URL, "
            "OPENAI_MODEL for your model)",
            file=sys.stderr,
        )
        return 2
    days = _training_days(args)
    vocabulary = load_vocabulary(settings.vocabulary_path)
    if args.cross_validate:
        print(
            f"Leave one day out over {len(days)} days: each day scored by a model trained,"
            " threshold included, on the other days."
        )
        results = await asyncio.to_thread(cross_validate, days, vocabulary)
    else:
        classifier = load_classifier(settings.vocabulary_path, settings.relevance_model_path)
        seen = set(classifier.model.metadata.get("trained_on", [])) & {d.day for d in days}
        print(f"Model {classifier.version} on {len(days)} labelled days.")
        if seen:
            print(
                f"Warning: the model was trained on {len(seen)} of these days"
                f" ({', '.join(sorted(seen))}); their figures flatter it."
                " Use --cross-validate for an honest figure."
            )
        results = evaluate_days(classifier, days)
    for line in format_results(results):
        print(line)
    if args.errors:
        for result in results:
            for paper, score in result.errors:
                kind = "missed" if paper.relevant else "wrong pick"
                print(f"{result.day} {kind} {score:.2f} {paper.arxiv_id} {paper.title[:90]}")
    if args.judge:
        for line in (await measure_judge(settings.llm, settings.judge, results)).lines():
            print(line)
    return 0


COMMANDS: dict[str, Callable[[Store, Settings, argparse.Namespace], Awaitable[int]]] = {
    "run": cmd_run,
    "fetch": cmd_fetch,
    "status": cmd_status,
    "search": cmd_search,
    "digest": cmd_digest,
    "export-markdown": cmd_export,
    "stats": cmd_stats,
    "backup": cmd_backup,
    "migrate": cmd_migrate,
    "classify": cmd_classify,
    "readinglist": cmd_readinglist,
}


_SCORING_COMMANDS = {"run", "fetch", "classify"}


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    if args.command in _SCORING_COMMANDS:
        load_model(settings.relevance_model_path)  # a broken model file: stop before writing
    async with await open_store(settings.storage) as store:
        return await COMMANDS[args.command](store, settings, args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command != "run":  # only the service stops gracefully; the rest as usual
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if EARLY_SIGTERMS:
            return 128 + signal.SIGTERM
    problem = shard_problem(settings, args) if args.command == "run" else None
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.command == "run" and settings.discord_token is None:
        print(
            "error: set DISCORD_TOKEN (in the environment or .env) to your bot's token; "
            "see README, 'Create the Discord application'",
            file=sys.stderr,
        )
        return 2
    secrets = [
        secret.get_secret_value()
        for secret in (settings.discord_token, settings.openai_api_key)
        if secret is not None
    ]
    # The service logs to stdout (containers collect it); commands keep stdout for results.
    configure_logging(
        settings.log_level, secrets, sys.stdout if args.command == "run" else sys.stderr
    )
    try:
        if args.command == "health":  # reads the database; never creates or migrates it
            return asyncio.run(cmd_health(settings))
        if args.command == "train-classifier":  # needs no database
            return cmd_train_classifier(settings, args)
        if args.command == "evaluate":
            return asyncio.run(cmd_evaluate(settings, args))
        if args.command == "migrate-to":  # two databases
            return asyncio.run(cmd_migrate_to(settings, args))
        return asyncio.run(_run(settings, args))
    except (
        DatabaseTooNewError,
        DatabaseUnreachable,
        BackupOnPostgres,
        TransferError,
        LabelsError,
        ModelFileError,
        TrainingUnavailable,
        ProviderRefused,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line for the user; the traceback goes to the log at DEBUG
        log.debug("command failed", exc_info=True)
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
