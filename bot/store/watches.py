"""Watches: who follows which author or phrase, what matched, and the DMs that said so."""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import OutgoingMessage, Paper, Watch, WatchKind, WatchNotice
from bot.store.connection import StoreBase
from bot.store.rows import message_from_json, message_json, paper_from_row
from bot.store.times import now_iso

WATCH_COLUMNS = "id, user_id, guild_id, channel_id, kind, text, by_dm, dms_closed"


def _watch(row: Sequence) -> Watch:
    return Watch(
        id=row[0],
        user_id=row[1],
        guild_id=row[2],
        channel_id=row[3],
        kind=WatchKind(row[4]),
        text=row[5],
        by_dm=bool(row[6]),
        dms_closed=row[7] >= 1,
        told_why=row[7] >= 2,
    )


class WatchStore(StoreBase):
    async def add_watch(
        self, user_id: str, guild_id: str, channel_id: str, kind: WatchKind, text: str, by_dm: bool
    ) -> bool:
        """False when the person already follows that."""
        try:
            async with self._transaction() as conn:
                await conn.execute(
                    "INSERT INTO watches (user_id, guild_id, channel_id, kind, text, by_dm,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (user_id, guild_id, channel_id, kind.value, text, int(by_dm), now_iso()),
                )
        except self._sql.unique_violation:
            return False
        return True

    async def user_watches(self, user_id: str) -> list[Watch]:
        async with self._conn.execute(
            f"SELECT {WATCH_COLUMNS} FROM watches WHERE user_id = ? ORDER BY id", (user_id,)
        ) as cur:
            return [_watch(row) for row in await cur.fetchall()]

    async def all_watches(self) -> list[Watch]:
        async with self._conn.execute(f"SELECT {WATCH_COLUMNS} FROM watches ORDER BY id") as cur:
            return [_watch(row) for row in await cur.fetchall()]

    async def remove_watch(self, user_id: str, watch_id: int) -> bool:
        async with self._transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM watches WHERE id = ? AND user_id = ?", (watch_id, user_id)
            )
        return cur.rowcount == 1

    async def unwatched_papers(self, limit: int = 2000) -> list[Paper]:
        """Papers polls brought that watches have not been matched against, oldest first."""
        async with self._conn.execute(
            f"SELECT {self._paper_columns} FROM papers p WHERE p.watched = 0 AND p.from_poll = 1"
            " ORDER BY p.id LIMIT ?",
            (limit,),
        ) as cur:
            return [paper_from_row(row) for row in await cur.fetchall()]

    async def record_watch_round(
        self,
        matched: Sequence[str],
        notices: Sequence[tuple[str, OutgoingMessage, Sequence[tuple[int, str]]]],
    ) -> None:
        """In one write: each person's direct message with the matches it tells, and the
        papers now matched."""
        async with self._transaction() as conn:
            for user_id, message, told in notices:
                notice_id = await self._insert_id(
                    conn,
                    "INSERT INTO watch_notices (user_id, payload) VALUES (?, ?)",
                    (user_id, message_json(message)),
                )
                await conn.executemany(
                    "INSERT INTO watch_hits (watch_id, paper_id, notice_id)"
                    " SELECT CAST(? AS INTEGER), id, CAST(? AS INTEGER) FROM papers"
                    " WHERE arxiv_id = ? ON CONFLICT DO NOTHING",
                    [(watch_id, notice_id, arxiv_id) for watch_id, arxiv_id in told],
                )
            await conn.executemany(
                "UPDATE papers SET watched = 1 WHERE arxiv_id = ?", [(i,) for i in matched]
            )

    async def unsent_notices(self) -> list[WatchNotice]:
        async with self._conn.execute(
            "SELECT id, user_id, payload FROM watch_notices"
            " WHERE message_id IS NULL AND refused = 0 ORDER BY id"
        ) as cur:
            return [
                WatchNotice(row[0], row[1], message_from_json(row[2]))
                for row in await cur.fetchall()
            ]

    async def notice_sent(self, notice_id: int, message_id: str) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE watch_notices SET message_id = ? WHERE id = ?", (message_id, notice_id)
            )

    async def notice_refused(self, notice_id: int, user_id: str) -> None:
        """DMs closed: the person's DM watches turn to mentions in their channels' digests
        (which match the papers they show, these included)."""
        async with self._transaction() as conn:
            await conn.execute("UPDATE watch_notices SET refused = 1 WHERE id = ?", (notice_id,))
            await conn.execute(
                "UPDATE watches SET dms_closed = 1 WHERE user_id = ? AND by_dm = 1"
                " AND dms_closed = 0",
                (user_id,),
            )

    async def mention_watches(self, channel_id: str) -> list[Watch]:
        """Watches whose matches are mentioned in this channel's digest: set here, and
        asking for mentions or with DMs closed."""
        async with self._conn.execute(
            f"SELECT {WATCH_COLUMNS} FROM watches WHERE channel_id = ?"
            " AND (by_dm = 0 OR dms_closed >= 1) ORDER BY id",
            (channel_id,),
        ) as cur:
            return [_watch(row) for row in await cur.fetchall()]

    async def told_why(self, user_ids: Sequence[str]) -> None:
        """These people's mentions have said their DMs are closed: not again."""
        async with self._transaction() as conn:
            await conn.executemany(
                "UPDATE watches SET dms_closed = 2 WHERE user_id = ? AND dms_closed = 1",
                [(u,) for u in user_ids],
            )
