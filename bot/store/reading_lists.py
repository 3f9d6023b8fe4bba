"""Reading lists: the papers a person, or a channel, saved, in the order they saved them."""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import ListEntry, ListOwner
from bot.store.connection import StoreBase
from bot.store.rows import paper_from_row
from bot.store.times import now_iso


class ReadingListStore(StoreBase):
    async def save_to_lists(self, owners: Sequence[ListOwner], arxiv_id: str) -> list[bool]:
        """Add a stored paper to each owner's list in one write; per owner, whether it was
        new there (saving twice changes nothing)."""
        added = []
        async with self._transaction() as conn:
            for owner in owners:
                cur = await conn.execute(
                    "INSERT INTO reading_list_entries (owner_kind, owner_id, arxiv_id, saved_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (owner.kind.value, owner.id, arxiv_id, now_iso()),
                )
                added.append(cur.rowcount == 1)
        return added

    async def import_to_list(
        self, owner: ListOwner, entries: Sequence[tuple[str, str | None]]
    ) -> int:
        """(arxiv id, notes) pairs of stored papers, in order, all in one transaction;
        returns how many were new to the list."""
        added = 0
        saved_at = now_iso()
        async with self._transaction() as conn:
            for arxiv_id, notes in entries:
                cur = await conn.execute(
                    "INSERT INTO reading_list_entries"
                    " (owner_kind, owner_id, arxiv_id, notes, saved_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (owner.kind.value, owner.id, arxiv_id, notes, saved_at),
                )
                added += cur.rowcount
        return added

    async def remove_from_list(self, owner: ListOwner, arxiv_id: str) -> bool:
        async with self._transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM reading_list_entries"
                " WHERE owner_kind = ? AND owner_id = ? AND arxiv_id = ?",
                (owner.kind.value, owner.id, arxiv_id),
            )
        return cur.rowcount == 1

    async def list_entries(self, owner: ListOwner) -> list[ListEntry]:
        """The whole list in save order, each paper as the rest of the product shows it."""
        async with self._conn.execute(
            f"SELECT {self._paper_columns}, e.notes FROM reading_list_entries e"
            " JOIN papers p ON p.arxiv_id = e.arxiv_id"
            " WHERE e.owner_kind = ? AND e.owner_id = ? ORDER BY e.id",
            (owner.kind.value, owner.id),
        ) as cur:
            rows = await cur.fetchall()
        return [ListEntry(paper_from_row(row[:-1]), row[-1]) for row in rows]
