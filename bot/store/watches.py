"""Watches: who follows which author or phrase, what matched, and the DMs that said so."""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import OutgoingMessage, Paper, Watch, WatchKind, WatchMention, WatchNotice
from bot.store.connection import StoreBase, now_iso
from bot.store.dialect import UniqueViolation
from bot.store.rows import PAPER_COLUMNS, message_from_json, message_json, paper_from_row

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
        except UniqueViolation:
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

    async def papers_polled_after(self, last_id: int, limit: int = 5000) -> list[tuple[int, Paper]]:
        """Papers polls brought with a row id above `last_id`, oldest first."""
        async with self._conn.execute(
            f"SELECT p.id, {PAPER_COLUMNS} FROM papers p WHERE p.id > ? AND p.from_poll = 1"
            " ORDER BY p.id LIMIT ?",
            (last_id, limit),
        ) as cur:
            return [(row[0], paper_from_row(row[1:])) for row in await cur.fetchall()]

    async def record_watch_round(
        self,
        scanned_to: int,
        hits: Sequence[tuple[int, str]],
        notices: Sequence[tuple[str, OutgoingMessage, Sequence[tuple[int, str]]]],
    ) -> None:
        """In one write: the matches (watch id, arXiv id) of mention watches, each person's
        direct message with the matches it tells, and how far papers were scanned."""
        async with self._transaction() as conn:
            await conn.executemany(
                "INSERT INTO watch_hits (watch_id, paper_id) SELECT ?, id FROM papers"
                " WHERE arxiv_id = ? ON CONFLICT DO NOTHING",
                hits,
            )
            for user_id, message, told in notices:
                cur = await conn.execute(
                    "INSERT INTO watch_notices (user_id, payload) VALUES (?, ?)",
                    (user_id, message_json(message)),
                )
                await conn.executemany(
                    "INSERT INTO watch_hits (watch_id, paper_id, notice_id)"
                    " SELECT ?, id, ? FROM papers WHERE arxiv_id = ? ON CONFLICT DO NOTHING",
                    [(watch_id, cur.lastrowid, arxiv_id) for watch_id, arxiv_id in told],
                )
            await conn.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES ('watch_scan', ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (str(scanned_to), now_iso()),
            )

    async def watch_scan_mark(self) -> int | None:
        """The last paper row matched against watches; None before the first round."""
        async with self._conn.execute(
            "SELECT value FROM bot_state WHERE key = 'watch_scan'"
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else None

    async def newest_paper_row(self) -> int:
        async with self._conn.execute("SELECT coalesce(max(id), 0) FROM papers") as cur:
            row = await cur.fetchone()
        return row[0] if row else 0

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
        """DMs closed: the person's DM watches turn to mentions, and what this notice told
        becomes mentions in their channels' next digests."""
        async with self._transaction() as conn:
            await conn.execute("UPDATE watch_notices SET refused = 1 WHERE id = ?", (notice_id,))
            await conn.execute(
                "UPDATE watch_hits SET notice_id = NULL WHERE notice_id = ?", (notice_id,)
            )
            await conn.execute(
                "UPDATE watches SET dms_closed = 1 WHERE user_id = ? AND by_dm = 1"
                " AND dms_closed = 0",
                (user_id,),
            )

    async def mentions_for(self, channel_id: str, arxiv_ids: Sequence[str]) -> list[WatchMention]:
        """Watchers to mention under these papers in this channel's digest: their watch was
        set here, and it asked for mentions or their DMs are closed."""
        if not arxiv_ids:
            return []
        marks = ",".join("?" * len(arxiv_ids))
        async with self._conn.execute(
            "SELECT p.arxiv_id, w.user_id, w.text, w.id, w.dms_closed FROM watch_hits h"
            " JOIN watches w ON w.id = h.watch_id JOIN papers p ON p.id = h.paper_id"
            " WHERE h.notice_id IS NULL AND w.channel_id = ?"
            " AND (w.by_dm = 0 OR w.dms_closed >= 1)"
            f" AND p.arxiv_id IN ({marks}) ORDER BY w.id",
            (channel_id, *arxiv_ids),
        ) as cur:
            rows = await cur.fetchall()
        return [WatchMention(r[0], r[1], r[2], r[3], r[4] == 1) for r in rows]

    async def told_why(self, watch_ids: Sequence[int]) -> None:
        async with self._transaction() as conn:
            await conn.executemany(
                "UPDATE watches SET dms_closed = 2 WHERE id = ? AND dms_closed = 1",
                [(i,) for i in watch_ids],
            )
