"""Papers: storing new versions, classifications and verdicts, and reading them back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from bot.models import Classification, JudgeScope, Paper, UpsertCounts
from bot.store.connection import Connection, StoreBase
from bot.store.dialect import Dialect
from bot.store.rows import (
    PAPER_VERSION_COLUMNS,
    paper_from_row,
    paper_version_values,
)
from bot.store.times import iso, now_iso


class PaperStore(StoreBase):
    async def upsert_papers(self, papers: Sequence[Paper], from_poll: bool = True) -> UpsertCounts:
        """Store new papers and newer versions of known ones, in one transaction.

        A newer version replaces the text and is queued for classification again;
        the listing day and first-seen time stay those of the first version. Papers not
        `from_poll` (fetched because someone asked for them) stay out of digests until
        a poll meets them.
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
            first_seen = now_iso()
            for paper in latest.values():
                row = stored.get(paper.arxiv_id)
                if row is None:
                    inserts.append(
                        (
                            *paper_version_values(paper),
                            paper.arxiv_id,
                            iso(paper.published),
                            paper.announced.isoformat(),
                            first_seen,
                            int(from_poll),
                        )
                    )
                elif (paper.version, iso(paper.updated)) > row:
                    updates.append((*paper_version_values(paper), paper.arxiv_id))
                else:
                    counts.unchanged += 1
            columns = ", ".join(PAPER_VERSION_COLUMNS)
            await conn.executemany(
                f"INSERT INTO papers ({columns}, arxiv_id, published, announced, first_seen,"
                f" from_poll, watched) VALUES ({', '.join('?' * (len(PAPER_VERSION_COLUMNS) + 5))},"
                " 0)",
                inserts,
            )
            if from_poll:
                await conn.executemany(
                    "UPDATE papers SET from_poll = 1 WHERE arxiv_id = ? AND from_poll = 0",
                    [(arxiv_id,) for arxiv_id in stored],
                )
            # A new version is scored again from scratch.
            await conn.executemany(
                f"UPDATE papers SET {', '.join(c + ' = ?' for c in PAPER_VERSION_COLUMNS)},"
                " relevance = NULL, classifier = NULL WHERE arxiv_id = ?",
                updates,
            )
            counts.new, counts.updated = len(inserts), len(updates)
        counts.unchanged += len(papers) - len(latest)
        return counts

    async def get_paper(self, arxiv_id: str) -> Paper | None:
        async with self._conn.execute(
            f"SELECT {self._paper_columns} FROM papers p WHERE p.arxiv_id = ?", (arxiv_id,)
        ) as cur:
            row = await cur.fetchone()
        return paper_from_row(row) if row else None

    async def papers_to_classify(self, classifier: str, limit: int = 1000) -> list[Paper]:
        """Papers never scored, or scored by another classifier version."""
        async with self._conn.execute(
            f"SELECT {self._paper_columns} FROM papers p"
            " WHERE p.classifier IS NULL OR p.classifier != ? LIMIT ?",
            (classifier, limit),
        ) as cur:
            return [paper_from_row(row) for row in await cur.fetchall()]

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
                "UPDATE papers SET score = ?, relevance = ?, reason = ?, verdict = NULL,"
                " decided_by = 'model',"
                " classifier = ? WHERE arxiv_id = ?",
                [(c.relevance, c.relevance, c.reason, classifier, i) for i, c in rows],
            )
            await replace_topics(conn, [(i, c.topics) for i, c in rows])
            if judge is not None:
                await apply_judgements(conn, self._sql, judge, [i for i, _ in rows])
        return len(rows)

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
            f"SELECT {self._paper_columns} FROM papers p"
            " WHERE p.announced BETWEEN ? AND ? AND p.relevance >= ? AND p.from_poll = 1"
            + topic_clause
            + " ORDER BY p.announced DESC, p.relevance DESC, p.arxiv_id",
            params,
        ) as cur:
            return [paper_from_row(row) for row in await cur.fetchall()]

    async def listing_days(self) -> tuple[date, date] | None:
        """First and last listing day of the stored papers."""
        async with self._conn.execute("SELECT min(announced), max(announced) FROM papers") as cur:
            row = await cur.fetchone()
        if not row or row[0] is None:
            return None
        return date.fromisoformat(row[0]), date.fromisoformat(row[1])

    async def count_papers(self, threshold: float | None = None) -> int:
        sql, params = "SELECT count(*) FROM papers", []
        if threshold is not None:
            sql, params = "SELECT count(*) FROM papers WHERE relevance >= ?", [threshold]
        async with self._conn.execute(sql, params) as cur:
            row = await cur.fetchone()
        return row[0] if row else 0

    async def topic_counts(self, since: date, threshold: float) -> dict[str, int]:
        async with self._conn.execute(
            "SELECT t.topic, count(*) FROM paper_topics t JOIN papers p ON p.id = t.paper_id"
            " WHERE p.announced >= ? AND p.relevance >= ? AND p.from_poll = 1 GROUP BY t.topic",
            (since.isoformat(), threshold),
        ) as cur:
            return {row[0]: row[1] for row in await cur.fetchall()}


async def replace_topics(conn: Connection, rows: Sequence[tuple[str, Sequence[str]]]) -> None:
    await conn.executemany(
        "DELETE FROM paper_topics WHERE paper_id = (SELECT id FROM papers WHERE arxiv_id = ?)",
        [(arxiv_id,) for arxiv_id, _ in rows],
    )
    await conn.executemany(
        "INSERT INTO paper_topics (topic, paper_id) SELECT CAST(? AS TEXT), id FROM papers"
        " WHERE arxiv_id = ?",
        [(topic, arxiv_id) for arxiv_id, topics in rows for topic in topics],
    )


async def apply_judgements(
    conn: Connection,
    dialect: Dialect,
    judge: JudgeScope,
    arxiv_ids: Sequence[str] | None = None,
) -> None:
    """Let this scope's stored verdicts decide inside the band, for the given papers (all
    when None): a relevant verdict maps into (high, 1], an irrelevant one into [0, low),
    keeping the offline order within each, so any threshold or min_score inside the band
    follows the verdict. A relevant verdict's topics replace the vocabulary's when it
    names any. Papers a verdict decided that it no longer covers (outside the band, or
    another model's) go back to the offline decision."""
    span = judge.high - judge.low
    chunks = (
        [None]
        if arxiv_ids is None
        else [list(arxiv_ids[i : i + 500]) for i in range(0, len(arxiv_ids), 500)]
    )
    for chunk in chunks:
        only = "" if chunk is None else f" AND p.arxiv_id IN ({','.join('?' * len(chunk))})"
        ids = [] if chunk is None else chunk
        covered = (
            "SELECT 1 FROM judgements j WHERE j.paper_id = p.id AND j.model = ?"
            " AND j.prompt_version = ? AND p.score BETWEEN ? AND ?"
        )
        scope = [judge.model, judge.prompt_version, judge.low, judge.high]
        await conn.execute(
            # classifier = NULL: the next classification pass restores the model's topics.
            "UPDATE papers AS p SET relevance = p.score, verdict = NULL, decided_by = 'model',"
            " classifier = NULL"
            f" WHERE p.decided_by = 'judge' AND NOT EXISTS ({covered}){only}",
            [*scope, *ids],
        )
        await conn.execute(
            "UPDATE papers AS p SET decided_by = 'judge', verdict = 'judge: ' || j.reason,"
            " relevance = CASE WHEN j.relevant = 1"
            "   THEN ? + (1 - ?) * (1 + (p.score - ?) / ?) / 2"
            "   ELSE ? * (p.score - ?) / ? / 2 END"
            " FROM judgements j WHERE j.paper_id = p.id AND j.model = ?"
            f" AND j.prompt_version = ? AND p.score BETWEEN ? AND ?{only}",
            [judge.high, judge.high, judge.low, span, judge.low, judge.low, span, *scope, *ids],
        )
        with_topics = (
            "SELECT j.paper_id, j.topics FROM judgements j, papers p"
            " WHERE j.paper_id = p.id AND j.model = ? AND j.prompt_version = ?"
            f" AND p.score BETWEEN ? AND ?{only}"
            f" AND j.relevant = 1 AND {dialect.json_length('j.topics')} > 0"
        )
        await conn.execute(
            f"DELETE FROM paper_topics WHERE paper_id IN (SELECT paper_id FROM ({with_topics}) q)",
            [*scope, *ids],
        )
        await conn.execute(
            "INSERT INTO paper_topics (topic, paper_id)"
            f" SELECT t.value, q.paper_id FROM ({with_topics}) q,"
            f" {dialect.json_elements('q.topics', 't')} WHERE true ON CONFLICT DO NOTHING",
            [*scope, *ids],
        )
