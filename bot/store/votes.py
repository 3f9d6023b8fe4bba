"""Votes on digest papers: who liked what, in which channel."""

from __future__ import annotations

from datetime import datetime

from bot.models import Paper
from bot.store.connection import StoreBase
from bot.store.rows import paper_from_row
from bot.store.times import iso, now_iso


class VoteStore(StoreBase):
    async def channel_received(self, channel_id: str, arxiv_id: str) -> bool:
        """Whether a digest of this channel's subscription holds the paper."""
        async with self._conn.execute(
            "SELECT 1 FROM digest_papers d JOIN subscriptions s ON s.id = d.subscription_id"
            " JOIN papers p ON p.id = d.paper_id WHERE s.channel_id = ? AND p.arxiv_id = ?",
            (channel_id, arxiv_id),
        ) as cur:
            return await cur.fetchone() is not None

    async def toggle_vote(
        self, guild_id: str, channel_id: str, user_id: str, arxiv_id: str, value: int
    ) -> tuple[int | None, int | None]:
        """Set a person's vote on a paper in a channel, or remove it when it is the vote
        they already cast; returns (before, after), None for no vote."""
        async with self._transaction() as conn:
            async with conn.execute(
                "SELECT v.value FROM votes v JOIN papers p ON p.id = v.paper_id"
                " WHERE v.channel_id = ? AND v.user_id = ? AND p.arxiv_id = ?",
                (channel_id, user_id, arxiv_id),
            ) as cur:
                row = await cur.fetchone()
            before = row[0] if row else None
            if before == value:
                await conn.execute(
                    "DELETE FROM votes WHERE channel_id = ? AND user_id = ?"
                    " AND paper_id = (SELECT id FROM papers WHERE arxiv_id = ?)",
                    (channel_id, user_id, arxiv_id),
                )
                return before, None
            await conn.execute(
                "INSERT INTO votes (channel_id, user_id, paper_id, guild_id, value, voted_at)"
                " SELECT ?, ?, id, ?, ?, ? FROM papers WHERE arxiv_id = ?"
                " ON CONFLICT (channel_id, user_id, paper_id) DO UPDATE SET"
                " value = excluded.value, voted_at = excluded.voted_at",
                (channel_id, user_id, guild_id, value, now_iso(), arxiv_id),
            )
        return before, value

    async def top_papers(
        self, guild_id: str, since: datetime, limit: int = 10, channel_id: str | None = None
    ) -> list[tuple[Paper, int, int]]:
        """The server's (or one channel's) most liked papers among votes cast since `since`:
        (paper, 👍, 👎), most net likes first; only papers with more likes than dislikes."""
        where, params = "guild_id = ?", [guild_id]
        if channel_id is not None:
            where, params = "channel_id = ?", [channel_id]
        async with self._conn.execute(
            f"SELECT {self._paper_columns}, v.likes, v.dislikes FROM ("
            "   SELECT paper_id, sum(CASE WHEN value = 1 THEN 1 ELSE 0 END) AS likes,"
            "   sum(CASE WHEN value = -1 THEN 1 ELSE 0 END) AS dislikes"
            f"   FROM votes WHERE {where} AND voted_at >= ? GROUP BY paper_id"
            "   HAVING sum(value) > 0) v JOIN papers p ON p.id = v.paper_id"
            " ORDER BY v.likes - v.dislikes DESC, v.likes DESC, p.announced DESC LIMIT ?",
            (*params, iso(since), limit),
        ) as cur:
            rows = await cur.fetchall()
        return [(paper_from_row(row[:-2]), row[-2], row[-1]) for row in rows]

    async def channel_vote_stamp(self, channel_id: str) -> tuple[int, str, int]:
        """How many votes a channel holds, when the last was cast and their sum: the votes
        changed when any of these did."""
        async with self._conn.execute(
            "SELECT count(*), coalesce(max(voted_at), ''), coalesce(sum(value), 0)"
            " FROM votes WHERE channel_id = ?",
            (channel_id,),
        ) as cur:
            row = await cur.fetchone()
        assert row is not None
        return row[0], row[1], row[2]

    async def channel_votes(self, channel_id: str, limit: int) -> list[tuple[Paper, int]]:
        """The `limit` papers most recently voted on in the channel, each with its net vote
        (👍 minus 👎)."""
        async with self._conn.execute(
            f"SELECT {self._paper_columns}, v.net FROM (SELECT paper_id, sum(value) AS net,"
            " max(voted_at) AS last FROM votes WHERE channel_id = ? GROUP BY paper_id"
            " ORDER BY last DESC, paper_id LIMIT ?) v"
            " JOIN papers p ON p.id = v.paper_id ORDER BY p.id",
            (channel_id, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [(paper_from_row(row[:-1]), row[-1]) for row in rows]
