"""Search SQL: FTS5 matching, ranking and filters. The query language lives in bot.search;
PostgreSQL's versions of these methods are in `bot.store.postgres`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.models import Paper
from bot.store.connection import StoreBase
from bot.store.dialect import BM25, FTS_MATCH, fts_match, highlight
from bot.store.rows import paper_from_row


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
            clauses.append("lower(p.categories) LIKE ?")  # cs.lg as cs.LG, on both backends
            params.append(f'%"{self.category.lower()}"%')
        if self.since:
            clauses.append("p.announced >= ?")
            params.append(self.since.isoformat())
        if self.until:
            clauses.append("p.announced <= ?")
            params.append(self.until.isoformat())
        return "".join(f" AND {c}" for c in clauses), params


@dataclass(frozen=True, slots=True)
class TextQuery:
    """What to look for: plain words and phrases (a phrase is words joined by spaces),
    all of them or, with `any_term`, any; and the author's name words, if given."""

    terms: tuple[str, ...]
    author: str | None = None
    any_term: bool = False


def _fts(query: TextQuery) -> str:
    return fts_match(list(query.terms), query.author, query.any_term)


class SearchStore(StoreBase):
    async def nth_newest_match(
        self, query: TextQuery, filters: SearchFilters, n: int
    ) -> int | None:
        """Row id of the n-th newest match, or None when fewer match. Walking the index
        in rowid order stops after n rows, unlike ranking, which scores every match."""
        where, params = filters.sql()
        join = " CROSS JOIN papers p ON p.id = f.rowid" if where else ""
        async with self._conn.execute(
            f"SELECT f.rowid FROM papers_fts f{join} WHERE {FTS_MATCH}{where}"
            " ORDER BY f.rowid DESC LIMIT 1 OFFSET ?",
            [_fts(query), *params, n - 1],
        ) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    async def search_ranked(
        self,
        query: TextQuery,
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
            f"SELECT {self._paper_columns} FROM"
            f" (SELECT f.rowid AS id, {BM25} AS score FROM papers_fts f{join}"
            f"   WHERE {FTS_MATCH}" + where + " ORDER BY score LIMIT ? OFFSET ?) m"
            " JOIN papers p ON p.id = m.id ORDER BY m.score, p.id DESC",
            [_fts(query), *params, limit, offset],
        ) as cur:
            return [paper_from_row(row) for row in await cur.fetchall()]

    async def search_unranked(self, filters: SearchFilters, limit: int, offset: int) -> list[Paper]:
        """Newest, then most relevant, papers matching only filters (no text)."""
        where, params = filters.sql()
        async with self._conn.execute(
            f"SELECT {self._paper_columns} FROM papers p WHERE 1 = 1"
            + where
            + " ORDER BY p.announced DESC, p.relevance DESC, p.id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ) as cur:
            return [paper_from_row(row) for row in await cur.fetchall()]

    async def search_reference_bm25(self, query: TextQuery, limit: int) -> list[str]:
        """Plain FTS5 ranked by bm25 over every match: the baseline `bench/` compares against."""
        async with self._conn.execute(
            f"SELECT p.arxiv_id FROM papers_fts f JOIN papers p ON p.id = f.rowid"
            f" WHERE {FTS_MATCH} ORDER BY {BM25} LIMIT ?",
            (_fts(query), limit),
        ) as cur:
            return [row[0] for row in await cur.fetchall()]

    async def count_matches(self, query: TextQuery, cap: int) -> int:
        """How many papers match, counting no further than `cap`."""
        async with self._conn.execute(
            f"SELECT count(*) FROM (SELECT rowid FROM papers_fts WHERE {FTS_MATCH} LIMIT ?)",
            (_fts(query), cap),
        ) as cur:
            row = await cur.fetchone()
        return row[0] if row else 0

    async def newest_rowid(self) -> int:
        async with self._conn.execute("SELECT coalesce(max(id), 0) FROM papers") as cur:
            row = await cur.fetchone()
        return row[0] if row else 0

    async def newest_matches_marked(
        self, query: TextQuery, filters: SearchFilters, limit: int, with_abstract: bool
    ) -> list[tuple[int, str, str, str | None]]:
        """The newest `limit` matches, newest first, with the matched words of the title,
        the authors (and the abstract if asked) wrapped in \x01...\x02. Unlike bm25,
        this reads nothing beyond the rows returned."""
        where, params = filters.sql()
        join = " CROSS JOIN papers p ON p.id = f.rowid" if where else ""
        abstract = highlight(1) if with_abstract else "NULL"
        async with self._conn.execute(
            f"SELECT f.rowid, {highlight(0)},"
            f" {highlight(2)}, {abstract}"
            f" FROM papers_fts f{join} WHERE {FTS_MATCH}{where}"
            " ORDER BY f.rowid DESC LIMIT ?",
            [_fts(query), *params, limit],
        ) as cur:
            return [(row[0], row[1], row[2], row[3]) for row in await cur.fetchall()]

    async def papers_by_rowids(self, rowids: Sequence[int]) -> list[Paper]:
        """Papers in the order of `rowids`."""
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        async with self._conn.execute(
            f"SELECT p.id, {self._paper_columns} FROM papers p WHERE p.id IN ({marks})",
            list(rowids),
        ) as cur:
            found = {row[0]: paper_from_row(row[1:]) for row in await cur.fetchall()}
        return [found[i] for i in rowids if i in found]
