"""arXiv polls and the service's own state (heartbeats, command sync)."""

from __future__ import annotations

from datetime import datetime

from bot.models import Poll, PollOutcome, UpsertCounts
from bot.store.connection import StoreBase
from bot.store.rows import poll_from_row
from bot.store.times import from_iso, iso, now_iso


class PollStore(StoreBase):
    async def poll_outcomes_since(self, since: datetime) -> list[Poll]:
        async with self._conn.execute(
            "SELECT id, started_at, finished_at, outcome, reason, requests, new, updated,"
            " unchanged, newest_seen FROM polls WHERE started_at >= ? AND outcome != 'running'"
            " ORDER BY id",
            (iso(since),),
        ) as cur:
            return [poll_from_row(row) for row in await cur.fetchall()]

    async def start_poll(self) -> int:
        async with self._transaction() as conn:
            # A poll still "running" was cut off by a crash or a kill: say so.
            await conn.execute(
                "UPDATE polls SET outcome = 'failed', finished_at = ?,"
                " reason = 'interrupted (the process stopped during the poll)'"
                " WHERE outcome = 'running'",
                (now_iso(),),
            )
            return await self._insert_id(
                conn, "INSERT INTO polls (started_at) VALUES (?)", (now_iso(),)
            )

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
                    now_iso(),
                    outcome.value,
                    reason,
                    requests,
                    counts.new,
                    counts.updated,
                    counts.unchanged,
                    iso(newest_seen) if newest_seen else None,
                    poll_id,
                ),
            )

    async def covered_until(self) -> datetime | None:
        """The newest arXiv `updated` stamp up to which a poll read everything."""
        async with self._conn.execute(
            "SELECT max(newest_seen) FROM polls WHERE outcome IN ('ok', 'nothing')"
        ) as cur:
            row = await cur.fetchone()
        return from_iso(row[0]) if row else None

    async def recent_polls(self, limit: int = 10) -> list[Poll]:
        async with self._conn.execute(
            "SELECT id, started_at, finished_at, outcome, reason, requests, new, updated,"
            " unchanged, newest_seen FROM polls ORDER BY id DESC LIMIT ?",
            (limit,),
        ) as cur:
            return [poll_from_row(row) for row in await cur.fetchall()]

    async def last_successful_poll(self) -> datetime | None:
        async with self._conn.execute(
            "SELECT max(finished_at) FROM polls WHERE outcome IN ('ok', 'nothing')"
        ) as cur:
            row = await cur.fetchone()
        return from_iso(row[0]) if row else None

    async def set_state(self, key: str, value: str) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (key, value, now_iso()),
            )

    async def get_state(self, key: str) -> tuple[str, datetime] | None:
        async with self._conn.execute(
            "SELECT value, updated_at FROM bot_state WHERE key = ?", (key,)
        ) as cur:
            row = await cur.fetchone()
        return (row[0], datetime.fromisoformat(row[1])) if row else None
