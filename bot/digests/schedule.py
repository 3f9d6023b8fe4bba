"""When a channel's digest is due, and what it holds: planning and preview."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, time, timedelta

from bot.channel_taste import TASTE_FLOOR, ChannelTastes
from bot.config import DigestSettings
from bot.digests.render import render_digest, render_forum_posts, render_note, render_weekly
from bot.listing import announced_at, is_listing_day, is_published_holiday, listing_day
from bot.models import OutgoingMessage, Paper, PollOutcome, Subscription
from bot.store import Store
from bot.watches import watch_mentions

log = logging.getLogger("bot.digests")


def next_due(digest_time: str, after: datetime) -> datetime:
    """The next moment at `digest_time` (HH:MM UTC) strictly after `after`."""
    hour, minute = (int(part) for part in digest_time.split(":"))
    candidate = datetime.combine(after.astimezone(UTC).date(), time(hour, minute), tzinfo=UTC)
    return candidate if candidate > after else candidate + timedelta(days=1)


WEEKLY_DAY = 0  # Monday
WEEKLY_PAPERS = 5


def next_weekly(digest_time: str, after: datetime) -> datetime:
    """The next Monday at `digest_time` (HH:MM UTC) strictly after `after`."""
    moment = next_due(digest_time, after)
    return moment + timedelta(days=(WEEKLY_DAY - moment.weekday()) % 7)


async def plan_weekly(store: Store, subscription: Subscription, now: datetime) -> int | None:
    """Record the channel's weekly digest of its most liked papers of the past week, or
    nothing when it liked nothing; either way the next one is a week on."""
    following = next_weekly(subscription.digest_time, now)
    ranked = await store.top_papers(
        subscription.guild_id,
        now - timedelta(days=7),
        WEEKLY_PAPERS,
        channel_id=subscription.channel_id,
    )
    messages = render_weekly(ranked) if ranked else []
    digest_id = await store.record_weekly_digest(subscription.id, messages, following)
    if digest_id is None:
        return None
    log.info(
        "weekly digest planned subscription=%d channel=%s papers=%d",
        subscription.id,
        subscription.channel_id,
        len(ranked),
    )
    return digest_id


async def todays_listing(store: Store, now: datetime) -> str:
    """What arXiv did for the listing day readers are on: "weekend" (it lists nothing on
    weekends), "arxiv-holiday" (arXiv's published list says so), "listed" (papers of that
    day are stored), "holiday" (a weekday with no papers although polls after the
    announcement went fine: arXiv announced nothing),
    "unreachable" (every poll since the announcement failed) or "pending" (not polled
    since)."""
    day = listing_day(now)
    if not is_listing_day(day):
        return "weekend"
    if is_published_holiday(day):
        return "arxiv-holiday"
    span = await store.listing_days()
    if span is not None and span[1] >= day:
        return "listed"
    polls = await store.poll_outcomes_since(announced_at(day))
    if any(p.outcome in (PollOutcome.OK, PollOutcome.NOTHING) for p in polls):
        return "holiday"
    return "unreachable" if polls else "pending"


async def choose_papers(
    store: Store,
    settings: DigestSettings,
    subscription: Subscription,
    tastes: ChannelTastes | None = None,
) -> list[Paper]:
    """The papers a channel's next digest holds, best first: by the global score, or by
    the channel's own once its readers voted enough (its min_score then applies to that)."""
    taste = await tastes.for_channel(store, subscription.channel_id) if tastes else None
    if tastes is None or taste is None:
        return await store.digest_candidates(subscription, settings.relevance_threshold)
    # Only papers listed after the newest one delivered: the ones it passed over were
    # judged then, and must not come back when its votes change. (Polls run hourly and a
    # day is announced hours before digests go out, so a day is complete when delivered.)
    newest = await store.last_delivered_day(subscription.id)
    since = newest + timedelta(days=1) if newest else None
    pool = await store.digest_candidates(
        subscription, settings.relevance_threshold, TASTE_FLOOR, since
    )
    floor = max(settings.relevance_threshold, subscription.min_score)
    return await asyncio.to_thread(tastes.rank, taste, pool, floor)  # features: CPU work


async def plan_digest(
    store: Store,
    settings: DigestSettings,
    subscription: Subscription,
    now: datetime,
    scheduled: bool,
    tastes: ChannelTastes | None = None,
) -> int | None:
    """Record the digest a subscription is due (papers, or a note), or nothing when there is
    nothing to say. A scheduled digest also moves the subscription to its next day."""
    following = next_due(subscription.digest_time, now) if scheduled else None
    papers = await choose_papers(store, settings, subscription, tastes)
    if papers:
        watchers = await watch_mentions(
            store, subscription.channel_id, papers[: settings.max_papers]
        )
        if subscription.forum:
            messages = render_forum_posts(
                papers,
                settings.max_papers,
                watchers,
                subscription.create_tags,
                subscription.mention_role,
            )
        else:
            messages = render_digest(
                papers,
                settings.max_papers,
                subscription.topics,
                subscription.mention_role,
                watchers,
                subscription.thread,
            )
        digest_id = await store.record_digest(
            subscription.id, "papers", papers, messages, following
        )
        if digest_id is not None:
            await store.told_why([w.user_id for w in watchers if w.tell_why])
        log.info(
            "digest planned subscription=%d channel=%s papers=%d messages=%d",
            subscription.id,
            subscription.channel_id,
            len(papers),
            len(messages),
        )
        return digest_id
    since = subscription.last_digest_at or now - timedelta(days=1)
    polls = await store.poll_outcomes_since(since)
    if polls and all(p.outcome is PollOutcome.FAILED for p in polls):
        note = render_note("arxiv-down", [p.reason or "" for p in polls])
        return await store.record_digest(subscription.id, "arxiv-down", [], [note], following)
    if subscription.post_empty:
        today = await todays_listing(store, now)
        return await store.record_digest(
            subscription.id, "empty", [], [render_note("empty", today=today)], following
        )
    if following:
        await store.postpone_subscription(subscription.id, following)
    return None


async def preview_digest(
    store: Store,
    settings: DigestSettings,
    subscription: Subscription,
    tastes: ChannelTastes | None = None,
) -> list[OutgoingMessage]:
    """The messages the channel's next digest would post now; nothing is recorded."""
    papers = await choose_papers(store, settings, subscription, tastes)
    if not papers:
        return []
    return render_digest(papers, settings.max_papers, subscription.topics)
