"""Subscriptions and digests: who gets what, and every message's delivery state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.models import (
    OutgoingMessage,
    Paper,
    PendingMessage,
    Subscription,
    SubscriptionStatus,
)
from bot.store.connection import StoreBase
from bot.store.rows import (
    SUBSCRIPTION_COLUMNS,
    message_from_json,
    message_json,
    paper_from_row,
    subscription_from_row,
)
from bot.store.times import iso, now_iso


class _AlreadyDelivered(Exception):
    """Another worker recorded one of these papers for this subscription first."""


# Long enough for any digest to post; renewed after every message.
DELIVERY_LEASE_SECONDS = 300


class SubscriptionStore(StoreBase):
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
        shared_list: bool | None = None,
        weekly_at: datetime | None = None,
        weekly: bool | None = None,
        mention_role: str | None = None,
        stop_mentions: bool = False,
        thread: bool | None = None,
        forum: bool = False,
        create_tags: bool | None = None,
    ) -> Subscription:
        """Create a channel's subscription, or update it (which also resumes a paused one).
        A subscription that was removed starts again from `starts_on`. `shared_list` None
        keeps what the channel had (off for a new one); so does `weekly` None (a weekly
        digest kept moves to `weekly_at`), while True starts it at `weekly_at` and False
        stops it. A `mention_role` replaces the role its digests mention, `stop_mentions`
        clears it, and neither keeps it."""
        next_weekly = iso(weekly_at) if weekly and weekly_at else None
        now = now_iso()
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO subscriptions (guild_id, channel_id, topics, digest_time, min_score,"
                " post_empty, status, starts_on, next_due_at, created_at, updated_at,"
                " shared_list, next_weekly_at, mention_role, thread, forum, create_tags)"
                " VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, coalesce(?, 0), ?, ?,"
                " coalesce(?, 0), ?, coalesce(?, 0))"
                " ON CONFLICT (channel_id) DO UPDATE SET topics = excluded.topics,"
                " shared_list = coalesce(?, subscriptions.shared_list),"
                " thread = coalesce(?, subscriptions.thread),"
                " forum = excluded.forum, create_tags = coalesce(?, subscriptions.create_tags),"
                " mention_role = CASE WHEN ? = 1 THEN NULL"
                "   WHEN subscriptions.status = 'deleted' THEN excluded.mention_role"
                "   ELSE coalesce(?, subscriptions.mention_role) END,"
                # Kept on or off; when on, at the (maybe new) digest time from now on.
                " next_weekly_at = CASE WHEN ? = 1 THEN"
                "   CASE WHEN subscriptions.next_weekly_at IS NULL THEN NULL ELSE ? END"
                "   ELSE excluded.next_weekly_at END,"
                " digest_time = excluded.digest_time, min_score = excluded.min_score,"
                " post_empty = excluded.post_empty, next_due_at = excluded.next_due_at,"
                " starts_on = CASE WHEN subscriptions.status = 'deleted' THEN excluded.starts_on"
                "   ELSE subscriptions.starts_on END,"
                " status = 'active', status_reason = NULL, failing_since = NULL, retry_at = NULL,"
                " updated_at = excluded.updated_at",
                (
                    guild_id,
                    channel_id,
                    json.dumps(list(topics)),
                    digest_time,
                    min_score,
                    int(post_empty),
                    starts_on.isoformat(),
                    iso(next_due_at),
                    now,
                    now,
                    None if shared_list is None else int(shared_list),
                    next_weekly,
                    None if stop_mentions else mention_role,
                    None if thread is None else int(thread),
                    int(forum),
                    None if create_tags is None else int(create_tags),
                    None if shared_list is None else int(shared_list),
                    None if thread is None else int(thread),
                    None if create_tags is None else int(create_tags),
                    int(stop_mentions),
                    mention_role,
                    int(weekly is None),
                    iso(weekly_at) if weekly_at else None,
                ),
            )
        subscription = await self.subscription_for_channel(channel_id)
        assert subscription is not None
        return subscription

    async def subscription_for_channel(self, channel_id: str) -> Subscription | None:
        async with self._conn.execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE channel_id = ?",
            (channel_id,),
        ) as cur:
            row = await cur.fetchone()
        return subscription_from_row(row) if row else None

    async def guild_subscriptions(self, guild_id: str) -> list[Subscription]:
        async with self._conn.execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions"
            " WHERE guild_id = ? AND status != 'deleted' ORDER BY channel_id",
            (guild_id,),
        ) as cur:
            return [subscription_from_row(row) for row in await cur.fetchall()]

    async def last_delivered_day(self, subscription_id: int) -> date | None:
        """The listing day of the newest paper the subscription's digests hold."""
        async with self._conn.execute(
            "SELECT max(p.announced) FROM digest_papers d JOIN papers p ON p.id = d.paper_id"
            " WHERE d.subscription_id = ?",
            (subscription_id,),
        ) as cur:
            row = await cur.fetchone()
        return date.fromisoformat(row[0]) if row and row[0] else None

    async def weekly_due_subscriptions(self, now: datetime) -> list[Subscription]:
        return await self._due_by("next_weekly_at", now)

    async def due_subscriptions(self, now: datetime) -> list[Subscription]:
        return await self._due_by("next_due_at", now)

    async def _due_by(self, moment: str, now: datetime) -> list[Subscription]:
        """Active subscriptions whose `moment` column has come and that are not backing
        off; `moment` is one of this module's own column names, never input."""
        async with self._conn.execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions"
            f" WHERE status = 'active' AND {moment} <= ?"
            f" AND (retry_at IS NULL OR retry_at <= ?) ORDER BY {moment}, id",
            (iso(now), iso(now)),
        ) as cur:
            return [subscription_from_row(row) for row in await cur.fetchall()]

    async def record_weekly_digest(
        self, subscription_id: int, messages: Sequence[OutgoingMessage], next_weekly_at: datetime
    ) -> int | None:
        """The week's most liked, recorded for posting like a digest (its papers reached the
        channel already, so none is recorded as delivered again), and the next one a week
        on; with no messages only the latter. Returns the digest's id, if any."""
        digest_id = None
        async with self._transaction() as conn:
            if messages:
                digest_id = await self._insert_id(
                    conn,
                    "INSERT INTO digests (subscription_id, kind, paper_count, created_at)"
                    " VALUES (?, 'papers', 0, ?)",
                    (subscription_id, now_iso()),
                )
                await conn.executemany(
                    "INSERT INTO digest_messages (digest_id, position, payload) VALUES (?, ?, ?)",
                    [(digest_id, i, message_json(m)) for i, m in enumerate(messages)],
                )
            await conn.execute(
                "UPDATE subscriptions SET next_weekly_at = ? WHERE id = ?",
                (iso(next_weekly_at), subscription_id),
            )
        return digest_id

    async def claim_delivery(
        self, subscription_id: int, holder: str, lease_seconds: int = DELIVERY_LEASE_SECONDS
    ) -> bool:
        """Take (or, for its holder, extend) the right to post this subscription's messages.
        False while someone else holds an unexpired lease."""
        now = datetime.now(UTC)
        async with self._transaction() as conn:
            cur = await conn.execute(
                "UPDATE subscriptions SET delivering_until = ?, delivering_by = ? WHERE id = ?"
                " AND (delivering_until IS NULL OR delivering_until <= ? OR delivering_by = ?)",
                (
                    iso(now + timedelta(seconds=lease_seconds)),
                    holder,
                    subscription_id,
                    iso(now),
                    holder,
                ),
            )
            return cur.rowcount == 1

    async def clear_delivery_leases(self, holder_prefixes: Sequence[str] | None = None) -> None:
        """When a process starts delivering: leases left by a process that died would
        otherwise hold its channels back until they expire. All of them (None: the one
        process of an SQLite install), or those whose holder starts with one of
        `holder_prefixes` (the dead leader's, on PostgreSQL: a `/digest now` running in
        another live process keeps its lease)."""
        async with self._transaction() as conn:
            if holder_prefixes is None:
                await conn.execute(
                    "UPDATE subscriptions SET delivering_until = NULL, delivering_by = NULL"
                    " WHERE delivering_by IS NOT NULL"
                )
                return
            await conn.executemany(
                "UPDATE subscriptions SET delivering_until = NULL, delivering_by = NULL"
                " WHERE substr(delivering_by, 1, ?) = ?",
                [(len(prefix), prefix) for prefix in holder_prefixes if prefix],
            )

    async def release_delivery(self, subscription_id: int, holder: str) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE subscriptions SET delivering_until = NULL, delivering_by = NULL"
                " WHERE id = ? AND delivering_by = ?",
                (subscription_id, holder),
            )

    async def subscriptions_with_unsent(self, now: datetime) -> list[Subscription]:
        """Active subscriptions with a recorded digest message not yet posted, and no
        backoff in force."""
        async with self._conn.execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE status = 'active'"
            " AND (retry_at IS NULL OR retry_at <= ?)"
            " AND EXISTS (SELECT 1 FROM digest_messages m JOIN digests d ON d.id = m.digest_id"
            "   WHERE d.subscription_id = s.id AND m.sent_at IS NULL)"
            " ORDER BY id",
            (iso(now),),
        ) as cur:
            return [subscription_from_row(row) for row in await cur.fetchall()]

    async def record_delivery_failure(self, subscription_id: int, now: datetime) -> datetime:
        """Note a transient failure; returns since when the channel has been failing."""
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE subscriptions SET failing_since = coalesce(failing_since, ?) WHERE id = ?",
                (iso(now), subscription_id),
            )
            async with conn.execute(
                "SELECT failing_since FROM subscriptions WHERE id = ?", (subscription_id,)
            ) as cur:
                row = await cur.fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else now

    async def retry_delivery_at(self, subscription_id: int, when: datetime) -> None:
        """No delivery attempt for this subscription before `when` (a backoff)."""
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE subscriptions SET retry_at = ? WHERE id = ?", (iso(when), subscription_id)
            )

    async def record_delivery_success(self, subscription_id: int) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE subscriptions SET failing_since = NULL, retry_at = NULL"
                " WHERE id = ? AND failing_since IS NOT NULL",
                (subscription_id,),
            )

    async def set_subscription_status(
        self, subscription_id: int, status: SubscriptionStatus, reason: str | None
    ) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE subscriptions SET status = ?, status_reason = ?, updated_at = ?"
                " WHERE id = ?",
                (status.value, reason, now_iso(), subscription_id),
            )

    async def digest_candidates(
        self,
        subscription: Subscription,
        threshold: float,
        floor: float | None = None,
        since: date | None = None,
    ) -> list[Paper]:
        """Relevant papers matching a subscription that it has not received, best first;
        with `floor`, every paper scoring at least that (the channel's own model decides),
        and with `since`, only those listed from that day on."""
        params: list[Any] = [
            max(threshold, subscription.min_score) if floor is None else floor,
            max(subscription.starts_on, since or subscription.starts_on).isoformat(),
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
            f"SELECT {self._paper_columns} FROM papers p"
            " WHERE p.relevance >= ? AND p.announced >= ?"
            " AND p.from_poll = 1"
            " AND NOT EXISTS (SELECT 1 FROM digest_papers d WHERE d.subscription_id = ?"
            "   AND d.paper_id = p.id)"
            + topic_clause
            + " ORDER BY p.relevance DESC, p.announced DESC, p.arxiv_id",
            params,
        ) as cur:
            return [paper_from_row(row) for row in await cur.fetchall()]

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
        now = now_iso()
        try:
            async with self._transaction() as conn:
                digest_id = await self._insert_id(
                    conn,
                    "INSERT INTO digests (subscription_id, kind, paper_count, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (subscription_id, kind, len(papers), now),
                )
                try:
                    await conn.executemany(
                        "INSERT INTO digest_papers (subscription_id, paper_id, digest_id, position)"
                        " SELECT CAST(? AS INTEGER), id, CAST(? AS INTEGER), CAST(? AS INTEGER)"
                        " FROM papers WHERE arxiv_id = ?",
                        [(subscription_id, digest_id, i, p.arxiv_id) for i, p in enumerate(papers)],
                    )
                except self._sql.unique_violation:
                    raise _AlreadyDelivered from None
                await conn.executemany(
                    "INSERT INTO digest_messages (digest_id, position, payload) VALUES (?, ?, ?)",
                    [(digest_id, i, message_json(m)) for i, m in enumerate(messages)],
                )
                if not messages:
                    await conn.execute(
                        "UPDATE digests SET finished_at = ? WHERE id = ?", (now, digest_id)
                    )
                await conn.execute(
                    "UPDATE subscriptions SET last_digest_at = ?,"
                    " next_due_at = coalesce(?, next_due_at) WHERE id = ?",
                    (now, iso(next_due_at) if next_due_at else None, subscription_id),
                )
            return digest_id
        except _AlreadyDelivered:
            return None

    async def postpone_subscription(self, subscription_id: int, next_due_at: datetime) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE subscriptions SET next_due_at = ?, last_digest_at = ? WHERE id = ?",
                (iso(next_due_at), now_iso(), subscription_id),
            )

    async def pending_messages(self, subscription_id: int) -> list[PendingMessage]:
        """Messages of this subscription's digests not yet posted, oldest digest first."""
        async with self._conn.execute(
            "SELECT m.digest_id, m.position, m.payload, (SELECT h.message_id"
            "   FROM digest_messages h WHERE h.digest_id = m.digest_id AND h.position = 0)"
            " FROM digest_messages m JOIN digests d ON d.id = m.digest_id"
            " WHERE d.subscription_id = ? AND m.sent_at IS NULL"
            " ORDER BY m.digest_id, m.position",
            (subscription_id,),
        ) as cur:
            return [
                PendingMessage(row[0], row[1], message_from_json(row[2]), row[3])
                for row in await cur.fetchall()
            ]

    async def mark_message_sent(self, digest_id: int, position: int, message_id: str) -> None:
        now = now_iso()
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
