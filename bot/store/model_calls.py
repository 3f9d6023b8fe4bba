"""Paid model calls (summaries and relevance verdicts): claims, results and spend, so that
each is paid for once across restarts and concurrent polls."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bot.models import Judgement, JudgeScope, Paper, Summary
from bot.store.connection import Connection, StoreBase
from bot.store.papers import apply_judgements
from bot.store.rows import paper_from_row
from bot.store.times import iso, now_iso

# Finished work and running claims, per kind of paid model call.
_CLAIM_TABLES = {
    "summary": ("summaries", "summary_claims"),
    "judgement": ("judgements", "judgement_claims"),
}


# A paper whose verdict failed this often keeps its offline decision; no more attempts.
JUDGE_ATTEMPTS = 3


class ModelCallStore(StoreBase):
    async def papers_needing_summary(
        self, threshold: float, model: str, prompt_version: str, limit: int
    ) -> list[Paper]:
        """Relevant papers with no summary from this model and prompt, not claimed by a
        running worker; the best and newest first."""
        async with self._conn.execute(
            f"SELECT {self._paper_columns} FROM papers p WHERE p.relevance >= ?"
            " AND NOT EXISTS (SELECT 1 FROM summaries s WHERE s.paper_id = p.id"
            "   AND s.model = ? AND s.prompt_version = ?)"
            " AND NOT EXISTS (SELECT 1 FROM summary_claims c WHERE c.paper_id = p.id"
            "   AND c.model = ? AND c.prompt_version = ? AND c.claimed_until > ?)"
            " ORDER BY p.announced DESC, p.relevance DESC LIMIT ?",
            (threshold, model, prompt_version, model, prompt_version, now_iso(), limit),
        ) as cur:
            return [paper_from_row(row) for row in await cur.fetchall()]

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
        until = iso(now + timedelta(seconds=lease_seconds))
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
                " SET claimed_until = excluded.claimed_until,"
                f" attempts = {claims}.attempts + 1"
                f" WHERE {claims}.claimed_until <= ?",
                (model, prompt_version, until, arxiv_id, iso(now)),
            )
            return cur.rowcount == 1

    async def save_summary(
        self, arxiv_id: str, summary: Summary, prompt_tokens: int, completion_tokens: int
    ) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO summaries (paper_id, model, prompt_version, tldr, bullets,"
                " prompt_tokens, completion_tokens, created_at)"
                " SELECT id, ?, ?, ?, ?, CAST(? AS INTEGER), CAST(? AS INTEGER), ?"
                " FROM papers WHERE arxiv_id = ? ON CONFLICT DO NOTHING",
                (
                    summary.model,
                    summary.prompt_version,
                    summary.tldr,
                    json.dumps(list(summary.bullets), ensure_ascii=False),
                    prompt_tokens,
                    completion_tokens,
                    now_iso(),
                    arxiv_id,
                ),
            )
            await conn.execute(
                "UPDATE summary_claims SET claimed_until = ?, last_error = NULL"
                " WHERE paper_id = (SELECT id FROM papers WHERE arxiv_id = ?)"
                " AND model = ? AND prompt_version = ?",
                (now_iso(), arxiv_id, summary.model, summary.prompt_version),
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
        conn: Connection,
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
                now_iso(),
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
            f"  FROM {claims}) spent"
            " GROUP BY model ORDER BY model"
        ) as cur:
            return [(row[0], row[1], row[2], row[3]) for row in await cur.fetchall()]

    async def papers_to_judge(self, judge: JudgeScope, limit: int) -> list[Paper]:
        """Papers whose offline score is in the band, with no verdict from this model and
        prompt and no running claim; the newest listing day first, closest calls first."""
        async with self._conn.execute(
            f"SELECT {self._paper_columns} FROM papers p WHERE p.score BETWEEN ? AND ?"
            " AND NOT EXISTS (SELECT 1 FROM judgements j WHERE j.paper_id = p.id"
            "   AND j.model = ? AND j.prompt_version = ?)"
            " AND NOT EXISTS (SELECT 1 FROM judgement_claims c WHERE c.paper_id = p.id"
            "   AND c.model = ? AND c.prompt_version = ?"
            "   AND (c.claimed_until > ? OR c.attempts >= ?))"
            " ORDER BY p.announced DESC, abs(p.score - 0.5), p.arxiv_id LIMIT ?",
            (
                judge.low,
                judge.high,
                judge.model,
                judge.prompt_version,
                judge.model,
                judge.prompt_version,
                now_iso(),
                JUDGE_ATTEMPTS,
                limit,
            ),
        ) as cur:
            return [paper_from_row(row) for row in await cur.fetchall()]

    async def sync_judgements(self, judge: JudgeScope) -> None:
        """Make stored verdicts decide for every paper they cover now, and only those:
        after a re-score with the judge off, or a change of band or model."""
        async with self._transaction() as conn:
            await apply_judgements(conn, self._sql, judge)

    async def save_judgements(self, judgements: Sequence[Judgement], judge: JudgeScope) -> None:
        """Store verdicts (paid for once), end their claims and let them decide."""
        async with self._transaction() as conn:
            await conn.executemany(
                "INSERT INTO judgements (paper_id, model, prompt_version, relevant,"
                " topics, reason, prompt_tokens, completion_tokens, created_at)"
                " SELECT id, ?, ?, CAST(? AS INTEGER), ?, ?, CAST(? AS INTEGER),"
                " CAST(? AS INTEGER), ? FROM papers WHERE arxiv_id = ? ON CONFLICT DO NOTHING",
                [
                    (
                        judge.model,
                        judge.prompt_version,
                        int(j.relevant),
                        json.dumps(list(j.topics)),
                        j.reason,
                        j.prompt_tokens,
                        j.completion_tokens,
                        now_iso(),
                        j.arxiv_id,
                    )
                    for j in judgements
                ],
            )
            for j in judgements:
                await self._release(
                    conn, "judgement", j.arxiv_id, judge.model, judge.prompt_version, None
                )
            await apply_judgements(conn, self._sql, judge, [j.arxiv_id for j in judgements])

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
