"""The database: opening it, applying `migrations/`, and every SQL statement the product runs.

Nothing else in the package writes SQL. Methods take and return the plain
models in `bot.models`, so callers never see rows or cursors.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from bot.models import (
    Classification,
    Judgement,
    JudgeScope,
    OutgoingMessage,
    Paper,
    PendingMessage,
    Poll,
    PollOutcome,
    Subscription,
    SubscriptionStatus,
    Summary,
    SummaryButton,
    SummarySource,
    UpsertCounts,
)

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{3,})_[\w\-]+\.sql$")


class DatabaseTooNewError(Exception):
    """The database was migrated by a newer release than this code."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def _migrations_dir() -> Path:
    # In a wheel the SQL ships inside the package; in a checkout it sits at the repo root.
    packaged = Path(str(resources.files("bot"))) / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "migrations"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    return list(_read_migrations(directory or _migrations_dir()))


@functools.cache
def _read_migrations(directory: Path) -> tuple[Migration, ...]:
    """The files never change while the process runs: read them once."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), path.stem, path.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number in {directory}")
    if not found:
        raise RuntimeError(f"no migrations found in {directory}")
    return tuple(found)


def _statements(sql: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies whole."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in current.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {current[:80]!r}")
    return statements


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _now() -> str:
    return _iso(datetime.now(UTC))


_PAPER_COLUMNS = """
    p.arxiv_id, p.version, p.title, p.abstract, p.authors, p.categories, p.comment,
    p.published, p.updated, p.announced, p.relevance,
    (SELECT group_concat(t.topic, ',') FROM paper_topics t WHERE t.paper_id = p.id) AS topics,
    (SELECT json_array(s.tldr, json(s.bullets), s.model, s.prompt_version) FROM summaries s
      WHERE s.paper_id = p.id ORDER BY s.created_at DESC LIMIT 1) AS summary,
    p.reason, p.decided_by, p.score
"""


def _summary(text: str | None) -> Summary | None:
    if not text:
        return None
    tldr, bullets, model, prompt_version = json.loads(text)
    return Summary(tldr, tuple(bullets), SummarySource.MODEL, model, prompt_version)


def _paper(row: sqlite3.Row | tuple[Any, ...]) -> Paper:
    topics = tuple(sorted(row[11].split(","))) if row[11] else ()
    return Paper(
        arxiv_id=row[0],
        version=row[1],
        title=row[2],
        abstract=row[3],
        authors=tuple(json.loads(row[4])),
        categories=tuple(json.loads(row[5])),
        comment=row[6],
        published=datetime.fromisoformat(row[7]),
        updated=datetime.fromisoformat(row[8]),
        announced=date.fromisoformat(row[9]),
        relevance=row[10],
        topics=topics,
        summary=_summary(row[12]),
        reason=row[13],
        decided_by=row[14],
        score=row[15],
    )


class _AlreadyDelivered(Exception):
    """Another worker recorded one of these papers for this subscription first."""


def _subscription(row: tuple[Any, ...]) -> Subscription:
    return Subscription(
        id=row[0],
        guild_id=row[1],
        channel_id=row[2],
        topics=tuple(json.loads(row[3])),
        digest_time=row[4],
        min_score=row[5],
        post_empty=bool(row[6]),
        status=SubscriptionStatus(row[7]),
        status_reason=row[8],
        starts_on=date.fromisoformat(row[9]),
        next_due_at=datetime.fromisoformat(row[10]),
        last_digest_at=_from_iso(row[11]),
    )


def _message_json(message: OutgoingMessage) -> str:
    return json.dumps(
        {
            "content": message.content,
            "embeds": list(message.embeds),
            "buttons": [[b.label, b.arxiv_id] for b in message.buttons],
        },
        ensure_ascii=False,
    )


def _message_from_json(text: str) -> OutgoingMessage:
    data = json.loads(text)
    return OutgoingMessage(
        content=data["content"],
        embeds=tuple(data["embeds"]),
        buttons=tuple(SummaryButton(label, arxiv_id) for label, arxiv_id in data["buttons"]),
    )


def _poll(row: tuple[Any, ...]) -> Poll:
    return Poll(
        id=row[0],
        started_at=datetime.fromisoformat(row[1]),
        finished_at=_from_iso(row[2]),
        outcome=PollOutcome(row[3]),
        reason=row[4],
        requests=row[5],
        counts=UpsertCounts(new=row[6], updated=row[7], unchanged=row[8]),
        newest_seen=_from_iso(row[9]),
    )


@dataclass(frozen=True, slots=True)
class SearchFilters:
    topic: str | None = None
    category: str | None = None
    since: date | None = None
    until: date | None = None

    def sql(self) -> tuple[str, list[Any]]:
        """Extra WHERE clauses over `papers p`."""
        clauses, params = [], []
        if self.topic:
            clauses.append(
                "EXISTS (SELECT 1 FROM paper_topics t WHERE t.topic = ? AND t.paper_id = p.id)"
            )
            params.append(self.topic)
        if self.category:  # categories is a JSON array; the quotes make the match exact
            clauses.append("p.categories LIKE ?")
            params.append(f'%"{self.category}"%')
        if self.since:
            clauses.append("p.announced >= ?")
            params.append(self.since.isoformat())
        if self.until:
            clauses.append("p.announced <= ?")
            params.append(self.until.isoformat())
        return "".join(f" AND {c}" for c in clauses), params


# Finished work and running claims, per kind of paid model call.
_CLAIM_TABLES = {
    "summary": ("summaries", "summary_claims"),
    "judgement": ("judgements", "judgement_claims"),
}

# Title matches count most, then authors, then the abstract.
_BM25 = "bm25(papers_fts, 4.0, 1.0, 2.0)"


class Store:
    """An open database. Use `async with await Store.open(path)` or call `close()`."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        # One connection is shared by concurrent tasks: writes take turns, each in its
        # own transaction, so one task's rollback never takes another's write with it.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA busy_timeout = 10000")
            # Fewer WAL checkpoints and a bigger page cache: FTS5 segment merges rewrite
            # many pages, and each checkpoint copies them once more.
            await conn.execute("PRAGMA wal_autocheckpoint = 10000")
            await conn.execute("PRAGMA cache_size = -32768")
            store = cls(conn)
            if migrate:
                await store.migrate()
            else:
                await store.check_schema_current()
        except BaseException:
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            try:
                # Inside the try: a task cancelled while awaiting BEGIN still has it run on
                # aiosqlite's thread, and must not leave the connection in a transaction.
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
            except BaseException:
                await asyncio.shield(self._rollback())
                raise
            await self._conn.execute("COMMIT")

    async def _rollback(self) -> None:
        try:
            await self._conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:  # BEGIN itself failed: nothing to undo
            if "no transaction is active" not in str(exc):
                raise

    # -- migrations -------------------------------------------------------------------------

    async def schema_versions(self) -> tuple[int, int]:
        """(version of the database, newest version this code knows)."""
        await self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        async with self._conn.execute("SELECT max(version) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        current = row[0] if row and row[0] is not None else 0
        return current, max(m.version for m in load_migrations())

    async def check_schema_current(self) -> None:
        current, latest = await self.schema_versions()
        if current > latest:
            raise DatabaseTooNewError(
                f"the database is at schema version {current} but this release knows only "
                f"up to {latest}; upgrade the bot or restore a backup made by this version"
            )
        if current < latest:
            raise DatabaseTooNewError(
                f"the database is at schema version {current}; run `python -m bot migrate`"
            )

    async def migrate(self) -> list[str]:
        """Apply pending migrations, each with its bookkeeping row in one transaction."""
        current, latest = await self.schema_versions()
        if current > latest:
            await self.check_schema_current()
        applied = []
        for migration in load_migrations():
            if migration.version <= current:
                continue
            async with self._transaction() as conn:
                for statement in _statements(migration.sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, _now()),
                )
            log.info("applied migration %s", migration.name)
            applied.append(migration.name)
        return applied

    # -- papers -----------------------------------------------------------------------------

    async def upsert_papers(self, papers: Sequence[Paper]) -> UpsertCounts:
        """Store new papers and newer versions of known ones, in one transaction.

        A newer version replaces the text and is queued for classification again;
        the listing day and first-seen time stay those of the first version.
        """
        counts = UpsertCounts()
        if not papers:
            return counts
        latest: dict[str, Paper] = {}
        for paper in papers:  # a page can repeat an id; keep the newest version
            known = latest.get(paper.arxiv_id)
            if known is None or (paper.version, paper.updated) > (known.version, known.updated):
                latest[paper.arxiv_id] = paper
        async with self._transaction() as conn:
            stored: dict[str, tuple[int, str]] = {}
            ids = list(latest)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                async with conn.execute(
                    f"SELECT arxiv_id, version, updated FROM papers WHERE arxiv_id IN ({marks})",
                    chunk,
                ) as cur:
                    async for arxiv_id, version, updated in cur:
                        stored[arxiv_id] = (version, updated)
            inserts, updates = [], []
            first_seen = _now()
            for paper in latest.values():
                row = stored.get(paper.arxiv_id)
                if row is None:
                    inserts.append(
                        (
                            paper.arxiv_id,
                            paper.version,
                            paper.title,
                            paper.abstract,
                            json.dumps(paper.authors, ensure_ascii=False),
                            json.dumps(paper.categories),
                            paper.comment,
                            _iso(paper.published),
                            _iso(paper.updated),
                            paper.announced.isoformat(),
                            first_seen,
                        )
                    )
                elif (paper.version, _iso(paper.updated)) > row:
                    updates.append(
                        (
                            paper.version,
                            paper.title,
                            paper.abstract,
                            json.dumps(paper.authors, ensure_ascii=False),
                            json.dumps(paper.categories),
                            paper.comment,
                            _iso(paper.updated),
                            paper.arxiv_id,
                        )
                    )
                else:
                    counts.unchanged += 1
            await conn.executemany(
                "INSERT INTO papers (arxiv_id, version, title, abstract, authors, categories,"
                " comment, published, updated, announced, first_seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
            await conn.executemany(
                "UPDATE papers SET version = ?, title = ?, abstract = ?, authors = ?,"
                " categories = ?, comment = ?, updated = ?, relevance = NULL, classifier = NULL"
                " WHERE arxiv_id = ?",
                updates,
            )
            counts.new, counts.updated = len(inserts), len(updates)
        counts.unchanged += len(papers) - len(latest)
        return counts

    async def get_paper(self, arxiv_id: str) -> Paper | None:
        async with self._conn.execute(
            f"SELECT {_PAPER_COLUMNS} FROM papers p WHERE p.arxiv_id = ?", (arxiv_id,)
        ) as cur:
            row = await cur.fetchone()
        return _paper(row) if row else None

    async def papers_to_classify(self, classifier: str, limit: int = 1000) -> list[Paper]:
        """Papers never scored, or scored by another classifier version."""
        async with self._conn.execute(
            f"SELECT {_PAPER_COLUMNS} FROM papers p"
            " WHERE p.classifier IS NULL OR p.classifier != ? LIMIT ?",
            (classifier, limit),
        ) as cur:
            return [_paper(row) for row in await cur.fetchall()]

    async def save_classifications(
        self,
        results: Iterable[tuple[str, Classification]],
        classifier: str,
        judge: JudgeScope | None = None,
    ) -> int:
        """Store offline scores; verdicts already paid for are applied in the same
        transaction, so nothing ever reads a paper between its re-score and its verdict."""
        rows = list(results)
        async with self._transaction() as conn:
            await conn.executemany(
                "UPDATE papers SET score = ?, relevance = ?, reason = ?, decided_by = 'model',"
                " classifier = ? WHERE arxiv_id = ?",
                [(c.relevance, c.relevance, c.reason, classifier, i) for i, c in rows],
            )
            await self._replace_topics(conn, [(i, c.topics) for i, c in rows])
            if judge is not None:
                await self._apply_judgements(conn, judge, [i for i, _ in rows])
        return len(rows)

    @staticmethod
    async def _replace_topics(
        conn: aiosqlite.Connection, rows: Sequence[tuple[str, Sequence[str]]]
    ) -> None:
        await conn.executemany(
            "DELETE FROM paper_topics WHERE paper_id = (SELECT id FROM papers WHERE arxiv_id = ?)",
            [(arxiv_id,) for arxiv_id, _ in rows],
        )
        await conn.executemany(
            "INSERT INTO paper_topics (topic, paper_id)"
            " SELECT ?, id FROM papers WHERE arxiv_id = ?",
            [(topic, arxiv_id) for arxiv_id, topics in rows for topic in topics],
        )

    @staticmethod
    async def _apply_judgements(
        conn: aiosqlite.Connection, judge: JudgeScope, arxiv_ids: Sequence[str]
    ) -> None:
        """Inside the band, the judge's verdict decides: a relevant verdict maps the offline
        score into [0.5, 1), an irrelevant one into [0, 0.5), keeping the order within each.
        A relevant verdict's topics replace the vocabulary's when it names any."""
        for start in range(0, len(arxiv_ids), 500):
            chunk = list(arxiv_ids[start : start + 500])
            scope = (
                "j.paper_id = p.id AND j.model = ? AND j.prompt_version = ?"
                f" AND p.score BETWEEN ? AND ? AND p.arxiv_id IN ({','.join('?' * len(chunk))})"
            )
            params = [judge.model, judge.prompt_version, judge.low, judge.high, *chunk]
            await conn.execute(
                "UPDATE papers AS p SET decided_by = 'judge', reason = 'judge: ' || j.reason,"
                " relevance = CASE WHEN j.relevant THEN 0.5 + p.score / 2 ELSE p.score / 2 END"
                f" FROM judgements j WHERE {scope}",
                params,
            )
            with_topics = (
                "SELECT j.paper_id, j.topics FROM judgements j, papers p"
                f" WHERE {scope} AND j.relevant AND json_array_length(j.topics) > 0"
            )
            await conn.execute(
                "DELETE FROM paper_topics"
                f" WHERE paper_id IN (SELECT paper_id FROM ({with_topics}))",
                params,
            )
            await conn.execute(
                "INSERT OR IGNORE INTO paper_topics (topic, paper_id)"
                f" SELECT t.value, q.paper_id FROM ({with_topics}) q, json_each(q.topics) t",
                params,
            )

    async def relevant_papers(
        self, since: date, until: date, threshold: float, topics: Sequence[str] = ()
    ) -> list[Paper]:
        """Relevant papers listed between two days (inclusive), best first."""
        topic_clause, params = "", [since.isoformat(), until.isoformat(), threshold]
        if topics:
            marks = ",".join("?" * len(topics))
            topic_clause = (
                " AND EXISTS (SELECT 1 FROM paper_topics t"
                f" WHERE t.paper_id = p.id AND t.topic IN ({marks}))"
            )
            params.extend(topics)
        async with self._conn.execute(
            f"SELECT {_PAPER_COLUMNS} FROM papers p"
            " WHERE p.announced BETWEEN ? AND ? AND p.relevance >= ?"
            + topic_clause
            + " ORDER BY p.announced DESC, p.relevance DESC, p.arxiv_id",
            params,
        ) as cur:
            return [_paper(row) for row in await cur.fetchall()]

    async def listing_days(self) -> tuple[date, date] | None:
        """First and last listing day of the stored papers."""
        async with self._conn.execute("SELECT min(announced), max(announced) FROM papers") as cur:
            row = await cur.fetchone()
        if not row or row[0] is None:
            return None
        return date.fromisoformat(row[0]), date.fromisoformat(row[1])

    async def count_papers(self, threshold: float | None = None) -> int:
        if threshold is None:
            sql, params = "SELECT count(*) FROM papers", ()
        else:
            sql, params = "SELECT count(*) FROM papers WHERE relevance >= ?", (threshold,)
        async with self._conn.execute(sql, params) as cur:
            row = await cur.fetchone()
        return row[0] if row else 0

    # -- search -----------------------------------------------------------------------------

    async def nth_newest_match(self, match: str, filters: SearchFilters, n: int) -> int | None:
        """Row id of the n-th newest match, or None when fewer match. Walking the index
        in rowid order stops after n rows, unlike ranking, which scores every match."""
        where, params = filters.sql()
        join = " CROSS JOIN papers p ON p.id = f.rowid" if where else ""
        async with self._conn.execute(
            f"SELECT f.rowid FROM papers_fts f{join} WHERE papers_fts MATCH ?{where}"
            " ORDER BY f.rowid DESC LIMIT 1 OFFSET ?",
            [match, *params, n - 1],
        ) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    async def search_ranked(
        self,
        match: str,
        filters: SearchFilters,
        limit: int,
        offset: int,
        min_rowid: int | None = None,
    ) -> list[Paper]:
        """Best bm25 matches, optionally among rows at or above `min_rowid` only."""
        where, params = filters.sql()
        join = " CROSS JOIN papers p ON p.id = f.rowid" if where else ""
        if min_rowid is not None:
            where += " AND f.rowid >= ?"
            params.append(min_rowid)
        async with self._conn.execute(
            f"SELECT {_PAPER_COLUMNS} FROM"
            f" (SELECT f.rowid AS id, {_BM25} AS score FROM papers_fts f{join}"
            "   WHERE papers_fts MATCH ?" + where + " ORDER BY score LIMIT ? OFFSET ?) m"
            " JOIN papers p ON p.id = m.id ORDER BY m.score, p.id DESC",
            [match, *params, limit, offset],
        ) as cur:
            return [_paper(row) for row in await cur.fetchall()]

    async def search_unranked(self, filters: SearchFilters, limit: int, offset: int) -> list[Paper]:
        """Newest, then most relevant, papers matching only filters (no text)."""
        where, params = filters.sql()
        async with self._conn.execute(
            f"SELECT {_PAPER_COLUMNS} FROM papers p WHERE 1 = 1"
            + where
            + " ORDER BY p.announced DESC, p.relevance DESC, p.id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ) as cur:
            return [_paper(row) for row in await cur.fetchall()]

    async def search_reference_bm25(self, match: str, limit: int) -> list[str]:
        """Plain FTS5 ranked by bm25 over every match: the baseline `bench/` compares against."""
        async with self._conn.execute(
            f"SELECT p.arxiv_id FROM papers_fts f JOIN papers p ON p.id = f.rowid"
            f" WHERE papers_fts MATCH ? ORDER BY {_BM25} LIMIT ?",
            (match, limit),
        ) as cur:
            return [row[0] for row in await cur.fetchall()]

    async def count_matches(self, match: str, cap: int) -> int:
        """How many papers match, counting no further than `cap`."""
        async with self._conn.execute(
            "SELECT count(*) FROM (SELECT rowid FROM papers_fts WHERE papers_fts MATCH ? LIMIT ?)",
            (match, cap),
        ) as cur:
            row = await cur.fetchone()
        return row[0] if row else 0

    async def newest_rowid(self) -> int:
        async with self._conn.execute("SELECT coalesce(max(id), 0) FROM papers") as cur:
            row = await cur.fetchone()
        return row[0] if row else 0

    async def newest_matches_marked(
        self, match: str, filters: SearchFilters, limit: int, with_abstract: bool
    ) -> list[tuple[int, str, str, str | None]]:
        """The newest `limit` matches, newest first, with the matched words of the title,
        the authors (and the abstract if asked) wrapped in \x01...\x02. Unlike bm25,
        this reads nothing beyond the rows returned."""
        where, params = filters.sql()
        join = " CROSS JOIN papers p ON p.id = f.rowid" if where else ""
        abstract = "highlight(papers_fts, 1, char(1), char(2))" if with_abstract else "NULL"
        async with self._conn.execute(
            "SELECT f.rowid, highlight(papers_fts, 0, char(1), char(2)),"
            f" highlight(papers_fts, 2, char(1), char(2)), {abstract}"
            f" FROM papers_fts f{join} WHERE papers_fts MATCH ?{where}"
            " ORDER BY f.rowid DESC LIMIT ?",
            [match, *params, limit],
        ) as cur:
            return [(row[0], row[1], row[2], row[3]) for row in await cur.fetchall()]

    async def papers_by_rowids(self, rowids: Sequence[int]) -> list[Paper]:
        """Papers in the order of `rowids`."""
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        async with self._conn.execute(
            f"SELECT p.id, {_PAPER_COLUMNS} FROM papers p WHERE p.id IN ({marks})", list(rowids)
        ) as cur:
            found = {row[0]: _paper(row[1:]) for row in await cur.fetchall()}
        return [found[i] for i in rowids if i in found]

    # -- summaries --------------------------------------------------------------------------

    async def papers_needing_summary(
        self, threshold: float, model: str, prompt_version: str, limit: int
    ) -> list[Paper]:
        """Relevant papers with no summary from this model and prompt, not claimed by a
        running worker; the best and newest first."""
        async with self._conn.execute(
            f"SELECT {_PAPER_COLUMNS} FROM papers p WHERE p.relevance >= ?"
            " AND NOT EXISTS (SELECT 1 FROM summaries s WHERE s.paper_id = p.id"
            "   AND s.model = ? AND s.prompt_version = ?)"
            " AND NOT EXISTS (SELECT 1 FROM summary_claims c WHERE c.paper_id = p.id"
            "   AND c.model = ? AND c.prompt_version = ? AND c.claimed_until > ?)"
            " ORDER BY p.announced DESC, p.relevance DESC LIMIT ?",
            (threshold, model, prompt_version, model, prompt_version, _now(), limit),
        ) as cur:
            return [_paper(row) for row in await cur.fetchall()]

    async def claim_summary(
        self, arxiv_id: str, model: str, prompt_version: str, lease_seconds: int = 900
    ) -> bool:
        """Take the right to summarize a paper, atomically across processes. False when it
        is summarized already or another worker holds an unexpired claim."""
        return await self._claim("summary", arxiv_id, model, prompt_version, lease_seconds)

    async def claim_judgement(
        self, arxiv_id: str, model: str, prompt_version: str, lease_seconds: int = 900
    ) -> bool:
        """As claim_summary, for an LLM verdict on a close call."""
        return await self._claim("judgement", arxiv_id, model, prompt_version, lease_seconds)

    async def _claim(
        self, kind: str, arxiv_id: str, model: str, prompt_version: str, lease_seconds: int
    ) -> bool:
        done, claims = _CLAIM_TABLES[kind]
        now = datetime.now(UTC)
        until = _iso(now + timedelta(seconds=lease_seconds))
        async with self._transaction() as conn:
            async with conn.execute(
                f"SELECT 1 FROM {done} s JOIN papers p ON p.id = s.paper_id"
                " WHERE p.arxiv_id = ? AND s.model = ? AND s.prompt_version = ?",
                (arxiv_id, model, prompt_version),
            ) as cur:
                if await cur.fetchone():
                    return False
            cur = await conn.execute(
                f"INSERT INTO {claims} (paper_id, model, prompt_version, claimed_until,"
                " attempts) SELECT id, ?, ?, ?, 1 FROM papers WHERE arxiv_id = ?"
                " ON CONFLICT (paper_id, model, prompt_version) DO UPDATE"
                " SET claimed_until = excluded.claimed_until, attempts = attempts + 1"
                f" WHERE {claims}.claimed_until <= ?",
                (model, prompt_version, until, arxiv_id, _iso(now)),
            )
            return cur.rowcount == 1

    async def save_summary(
        self, arxiv_id: str, summary: Summary, prompt_tokens: int, completion_tokens: int
    ) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO summaries (paper_id, model, prompt_version, tldr, bullets,"
                " prompt_tokens, completion_tokens, created_at)"
                " SELECT id, ?, ?, ?, ?, ?, ?, ? FROM papers WHERE arxiv_id = ?",
                (
                    summary.model,
                    summary.prompt_version,
                    summary.tldr,
                    json.dumps(list(summary.bullets), ensure_ascii=False),
                    prompt_tokens,
                    completion_tokens,
                    _now(),
                    arxiv_id,
                ),
            )
            await conn.execute(
                "UPDATE summary_claims SET claimed_until = ?, last_error = NULL"
                " WHERE paper_id = (SELECT id FROM papers WHERE arxiv_id = ?)"
                " AND model = ? AND prompt_version = ?",
                (_now(), arxiv_id, summary.model, summary.prompt_version),
            )

    async def release_summary(
        self,
        arxiv_id: str,
        model: str,
        prompt_version: str,
        error: str,
        wasted_prompt_tokens: int = 0,
        wasted_completion_tokens: int = 0,
    ) -> None:
        """Give a claim back after a failure, so a later poll tries the paper again."""
        async with self._transaction() as conn:
            await self._release(
                conn,
                "summary",
                arxiv_id,
                model,
                prompt_version,
                error,
                wasted_prompt_tokens,
                wasted_completion_tokens,
            )

    @staticmethod
    async def _release(
        conn: aiosqlite.Connection,
        kind: str,
        arxiv_id: str,
        model: str,
        prompt_version: str,
        error: str | None,
        wasted_prompt_tokens: int = 0,
        wasted_completion_tokens: int = 0,
    ) -> None:
        await conn.execute(
            f"UPDATE {_CLAIM_TABLES[kind][1]} SET claimed_until = ?, last_error = ?,"
            " wasted_prompt_tokens = wasted_prompt_tokens + ?,"
            " wasted_completion_tokens = wasted_completion_tokens + ?"
            " WHERE paper_id = (SELECT id FROM papers WHERE arxiv_id = ?)"
            " AND model = ? AND prompt_version = ?",
            (
                _now(),
                error[:500] if error else None,
                wasted_prompt_tokens,
                wasted_completion_tokens,
                arxiv_id,
                model,
                prompt_version,
            ),
        )

    async def summary_spend(self) -> list[tuple[str, int, int, int]]:
        """Per model: summaries stored, prompt tokens and completion tokens spent
        (including answers that could not be used)."""
        return await self._spend("summary")

    async def judgement_spend(self) -> list[tuple[str, int, int, int]]:
        """Per model: verdicts stored and tokens spent, unusable answers included."""
        return await self._spend("judgement")

    async def _spend(self, kind: str) -> list[tuple[str, int, int, int]]:
        done, claims = _CLAIM_TABLES[kind]
        async with self._conn.execute(
            "SELECT model, sum(n), sum(pt), sum(ct) FROM ("
            f"  SELECT model, 1 AS n, prompt_tokens AS pt, completion_tokens AS ct FROM {done}"
            "  UNION ALL SELECT model, 0, wasted_prompt_tokens, wasted_completion_tokens"
            f"  FROM {claims})"
            " GROUP BY model ORDER BY model"
        ) as cur:
            return [(row[0], row[1], row[2], row[3]) for row in await cur.fetchall()]

    # -- judgements -------------------------------------------------------------------------

    async def papers_to_judge(self, judge: JudgeScope, limit: int) -> list[Paper]:
        """Papers whose offline score is in the band, with no verdict from this model and
        prompt and no running claim; the newest listing day first, closest calls first."""
        async with self._conn.execute(
            f"SELECT {_PAPER_COLUMNS} FROM papers p WHERE p.score BETWEEN ? AND ?"
            " AND NOT EXISTS (SELECT 1 FROM judgements j WHERE j.paper_id = p.id"
            "   AND j.model = ? AND j.prompt_version = ?)"
            " AND NOT EXISTS (SELECT 1 FROM judgement_claims c WHERE c.paper_id = p.id"
            "   AND c.model = ? AND c.prompt_version = ? AND c.claimed_until > ?)"
            " ORDER BY p.announced DESC, abs(p.score - 0.5), p.arxiv_id LIMIT ?",
            (
                judge.low,
                judge.high,
                judge.model,
                judge.prompt_version,
                judge.model,
                judge.prompt_version,
                _now(),
                limit,
            ),
        ) as cur:
            return [_paper(row) for row in await cur.fetchall()]

    async def save_judgements(self, judgements: Sequence[Judgement], judge: JudgeScope) -> None:
        """Store verdicts (paid for once), end their claims and let them decide."""
        async with self._transaction() as conn:
            await conn.executemany(
                "INSERT OR IGNORE INTO judgements (paper_id, model, prompt_version, relevant,"
                " topics, reason, prompt_tokens, completion_tokens, created_at)"
                " SELECT id, ?, ?, ?, ?, ?, ?, ?, ? FROM papers WHERE arxiv_id = ?",
                [
                    (
                        judge.model,
                        judge.prompt_version,
                        int(j.relevant),
                        json.dumps(list(j.topics)),
                        j.reason,
                        j.prompt_tokens,
                        j.completion_tokens,
                        _now(),
                        j.arxiv_id,
                    )
                    for j in judgements
                ],
            )
            for j in judgements:
                await self._release(
                    conn, "judgement", j.arxiv_id, judge.model, judge.prompt_version, None
                )
            await self._apply_judgements(conn, judge, [j.arxiv_id for j in judgements])

    async def release_judgements(
        self,
        arxiv_ids: Sequence[str],
        judge: JudgeScope,
        error: str,
        wasted_prompt_tokens: int = 0,
        wasted_completion_tokens: int = 0,
    ) -> None:
        """No usable verdict: the offline decision stands, marked as such, and the claims are
        given back so a later poll asks again. Wasted tokens are booked on the first paper."""
        async with self._transaction() as conn:
            for index, arxiv_id in enumerate(arxiv_ids):
                await self._release(
                    conn,
                    "judgement",
                    arxiv_id,
                    judge.model,
                    judge.prompt_version,
                    error,
                    wasted_prompt_tokens if index == 0 else 0,
                    wasted_completion_tokens if index == 0 else 0,
                )
            await conn.executemany(
                "UPDATE papers SET decided_by = ? WHERE arxiv_id = ? AND decided_by != 'judge'",
                [(f"model; judge failed: {error[:200]}", arxiv_id) for arxiv_id in arxiv_ids],
            )

    # -- subscriptions and digests ----------------------------------------------------------

    _SUBSCRIPTION_COLUMNS = (
        "id, guild_id, channel_id, topics, digest_time, min_score, post_empty, status,"
        " status_reason, starts_on, next_due_at, last_digest_at"
    )

    async def save_subscription(
        self,
        guild_id: str,
        channel_id: str,
        topics: Sequence[str],
        digest_time: str,
        min_score: float,
        post_empty: bool,
        starts_on: date,
        next_due_at: datetime,
    ) -> Subscription:
        """Create a channel's subscription, or update it (which also resumes a paused one).
        A subscription that was removed starts again from `starts_on`."""
        now = _now()
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO subscriptions (guild_id, channel_id, topics, digest_time, min_score,"
                " post_empty, status, starts_on, next_due_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)"
                " ON CONFLICT (channel_id) DO UPDATE SET topics = excluded.topics,"
                " digest_time = excluded.digest_time, min_score = excluded.min_score,"
                " post_empty = excluded.post_empty, next_due_at = excluded.next_due_at,"
                " starts_on = CASE WHEN status = 'deleted' THEN excluded.starts_on"
                "   ELSE starts_on END,"
                " status = 'active', status_reason = NULL, updated_at = excluded.updated_at",
                (
                    guild_id,
                    channel_id,
                    json.dumps(list(topics)),
                    digest_time,
                    min_score,
                    int(post_empty),
                    starts_on.isoformat(),
                    _iso(next_due_at),
                    now,
                    now,
                ),
            )
        subscription = await self.subscription_for_channel(channel_id)
        assert subscription is not None
        return subscription

    async def subscription_for_channel(self, channel_id: str) -> Subscription | None:
        async with self._conn.execute(
            f"SELECT {self._SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE channel_id = ?",
            (channel_id,),
        ) as cur:
            row = await cur.fetchone()
        return _subscription(row) if row else None

    async def guild_subscriptions(self, guild_id: str) -> list[Subscription]:
        async with self._conn.execute(
            f"SELECT {self._SUBSCRIPTION_COLUMNS} FROM subscriptions"
            " WHERE guild_id = ? AND status != 'deleted' ORDER BY channel_id",
            (guild_id,),
        ) as cur:
            return [_subscription(row) for row in await cur.fetchall()]

    async def due_subscriptions(self, now: datetime) -> list[Subscription]:
        async with self._conn.execute(
            f"SELECT {self._SUBSCRIPTION_COLUMNS} FROM subscriptions"
            " WHERE status = 'active' AND next_due_at <= ? ORDER BY next_due_at, id",
            (_iso(now),),
        ) as cur:
            return [_subscription(row) for row in await cur.fetchall()]

    async def set_subscription_status(
        self, subscription_id: int, status: SubscriptionStatus, reason: str | None
    ) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE subscriptions SET status = ?, status_reason = ?, updated_at = ?"
                " WHERE id = ?",
                (status.value, reason, _now(), subscription_id),
            )

    async def digest_candidates(self, subscription: Subscription, threshold: float) -> list[Paper]:
        """Relevant papers matching a subscription that it has not received, best first."""
        params: list[Any] = [
            max(threshold, subscription.min_score),
            subscription.starts_on.isoformat(),
            subscription.id,
        ]
        topic_clause = ""
        if subscription.topics:
            marks = ",".join("?" * len(subscription.topics))
            topic_clause = (
                " AND EXISTS (SELECT 1 FROM paper_topics t WHERE t.paper_id = p.id"
                f" AND t.topic IN ({marks}))"
            )
            params.extend(subscription.topics)
        async with self._conn.execute(
            f"SELECT {_PAPER_COLUMNS} FROM papers p WHERE p.relevance >= ? AND p.announced >= ?"
            " AND NOT EXISTS (SELECT 1 FROM digest_papers d WHERE d.subscription_id = ?"
            "   AND d.paper_id = p.id)"
            + topic_clause
            + " ORDER BY p.relevance DESC, p.announced DESC, p.arxiv_id",
            params,
        ) as cur:
            return [_paper(row) for row in await cur.fetchall()]

    async def record_digest(
        self,
        subscription_id: int,
        kind: str,
        papers: Sequence[Paper],
        messages: Sequence[OutgoingMessage],
        next_due_at: datetime | None,
    ) -> int | None:
        """Record a digest, the papers it delivers and its messages, in one transaction.
        Returns None when another worker delivered one of these papers first."""
        now = _now()
        try:
            async with self._transaction() as conn:
                cur = await conn.execute(
                    "INSERT INTO digests (subscription_id, kind, paper_count, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (subscription_id, kind, len(papers), now),
                )
                digest_id = cur.lastrowid
                try:
                    await conn.executemany(
                        "INSERT INTO digest_papers (subscription_id, paper_id, digest_id, position)"
                        " SELECT ?, id, ?, ? FROM papers WHERE arxiv_id = ?",
                        [(subscription_id, digest_id, i, p.arxiv_id) for i, p in enumerate(papers)],
                    )
                except sqlite3.IntegrityError:
                    raise _AlreadyDelivered from None
                await conn.executemany(
                    "INSERT INTO digest_messages (digest_id, position, payload) VALUES (?, ?, ?)",
                    [(digest_id, i, _message_json(m)) for i, m in enumerate(messages)],
                )
                if not messages:
                    await conn.execute(
                        "UPDATE digests SET finished_at = ? WHERE id = ?", (now, digest_id)
                    )
                await conn.execute(
                    "UPDATE subscriptions SET last_digest_at = ?,"
                    " next_due_at = coalesce(?, next_due_at) WHERE id = ?",
                    (now, _iso(next_due_at) if next_due_at else None, subscription_id),
                )
            return digest_id
        except _AlreadyDelivered:
            return None

    async def postpone_subscription(self, subscription_id: int, next_due_at: datetime) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE subscriptions SET next_due_at = ?, last_digest_at = ? WHERE id = ?",
                (_iso(next_due_at), _now(), subscription_id),
            )

    async def pending_messages(self, subscription_id: int) -> list[PendingMessage]:
        """Messages of this subscription's digests not yet posted, oldest digest first."""
        async with self._conn.execute(
            "SELECT m.digest_id, m.position, m.payload FROM digest_messages m"
            " JOIN digests d ON d.id = m.digest_id"
            " WHERE d.subscription_id = ? AND m.sent_at IS NULL"
            " ORDER BY m.digest_id, m.position",
            (subscription_id,),
        ) as cur:
            return [
                PendingMessage(row[0], row[1], _message_from_json(row[2]))
                for row in await cur.fetchall()
            ]

    async def mark_message_sent(self, digest_id: int, position: int, message_id: str) -> None:
        now = _now()
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE digest_messages SET message_id = ?, sent_at = ?"
                " WHERE digest_id = ? AND position = ?",
                (message_id, now, digest_id, position),
            )
            await conn.execute(
                "UPDATE digests SET finished_at = ? WHERE id = ? AND NOT EXISTS"
                " (SELECT 1 FROM digest_messages WHERE digest_id = ? AND sent_at IS NULL)",
                (now, digest_id, digest_id),
            )

    async def poll_outcomes_since(self, since: datetime) -> list[Poll]:
        async with self._conn.execute(
            "SELECT id, started_at, finished_at, outcome, reason, requests, new, updated,"
            " unchanged, newest_seen FROM polls WHERE started_at >= ? AND outcome != 'running'"
            " ORDER BY id",
            (_iso(since),),
        ) as cur:
            return [_poll(row) for row in await cur.fetchall()]

    async def topic_counts(self, since: date, threshold: float) -> dict[str, int]:
        async with self._conn.execute(
            "SELECT t.topic, count(*) FROM paper_topics t JOIN papers p ON p.id = t.paper_id"
            " WHERE p.announced >= ? AND p.relevance >= ? GROUP BY t.topic",
            (since.isoformat(), threshold),
        ) as cur:
            return {row[0]: row[1] for row in await cur.fetchall()}

    async def backup_to(self, target: Path) -> None:
        """A consistent copy of the live database (SQLite's online backup: safe while the
        service writes), written next to `target` and renamed into place."""
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        async with aiosqlite.connect(partial) as copy:
            await self._conn.backup(copy)
            async with copy.execute("PRAGMA integrity_check") as cur:
                row = await cur.fetchone()
            if not row or row[0] != "ok":
                raise RuntimeError(f"the backup failed its integrity check: {row}")
        partial.replace(target)

    # -- service state ----------------------------------------------------------------------

    async def set_state(self, key: str, value: str) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (key, value, _now()),
            )

    async def get_state(self, key: str) -> tuple[str, datetime] | None:
        async with self._conn.execute(
            "SELECT value, updated_at FROM bot_state WHERE key = ?", (key,)
        ) as cur:
            row = await cur.fetchone()
        return (row[0], datetime.fromisoformat(row[1])) if row else None

    async def last_successful_poll(self) -> datetime | None:
        async with self._conn.execute(
            "SELECT max(finished_at) FROM polls WHERE outcome IN ('ok', 'nothing')"
        ) as cur:
            row = await cur.fetchone()
        return _from_iso(row[0]) if row else None

    # -- polls ------------------------------------------------------------------------------

    async def start_poll(self) -> int:
        async with self._transaction() as conn:
            # A poll still "running" was cut off by a crash or a kill: say so.
            await conn.execute(
                "UPDATE polls SET outcome = 'failed', finished_at = ?,"
                " reason = 'interrupted (the process stopped during the poll)'"
                " WHERE outcome = 'running'",
                (_now(),),
            )
            cur = await conn.execute("INSERT INTO polls (started_at) VALUES (?)", (_now(),))
            poll_id = cur.lastrowid
        assert poll_id is not None
        return poll_id

    async def record_poll_progress(self, poll_id: int, requests: int, counts: UpsertCounts) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE polls SET requests = ?, new = ?, updated = ?, unchanged = ? WHERE id = ?",
                (requests, counts.new, counts.updated, counts.unchanged, poll_id),
            )

    async def finish_poll(
        self,
        poll_id: int,
        outcome: PollOutcome,
        requests: int,
        counts: UpsertCounts,
        reason: str | None = None,
        newest_seen: datetime | None = None,
    ) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE polls SET finished_at = ?, outcome = ?, reason = ?, requests = ?, new = ?,"
                " updated = ?, unchanged = ?, newest_seen = ? WHERE id = ?",
                (
                    _now(),
                    outcome.value,
                    reason,
                    requests,
                    counts.new,
                    counts.updated,
                    counts.unchanged,
                    _iso(newest_seen) if newest_seen else None,
                    poll_id,
                ),
            )

    async def covered_until(self) -> datetime | None:
        """The newest arXiv `updated` stamp up to which a poll read everything."""
        async with self._conn.execute(
            "SELECT max(newest_seen) FROM polls WHERE outcome IN ('ok', 'nothing')"
        ) as cur:
            row = await cur.fetchone()
        return _from_iso(row[0]) if row else None

    async def recent_polls(self, limit: int = 10) -> list[Poll]:
        async with self._conn.execute(
            "SELECT id, started_at, finished_at, outcome, reason, requests, new, updated,"
            " unchanged, newest_seen FROM polls ORDER BY id DESC LIMIT ?",
            (limit,),
        ) as cur:
            return [_poll(row) for row in await cur.fetchall()]
