"""Channel subscriptions: parsing what an admin typed, and saving it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.classify import TOPICS
from bot.config import DigestSettings
from bot.digests.schedule import next_due, next_weekly
from bot.models import Subscription, SubscriptionStatus
from bot.store import Store


class SubscriptionError(ValueError):
    """Bad input; the message is meant for the person who typed it."""


def parse_topics(text: str | None) -> tuple[str, ...]:
    """'quantization, pruning' -> ('quantization', 'pruning'); empty means every topic."""
    if not text or not text.strip():
        return ()
    wanted = [t for t in re.split(r"[\s,;]+", text.strip().lower()) if t]
    unknown = [t for t in wanted if t not in TOPICS]
    if unknown:
        raise SubscriptionError(f"Unknown topic {unknown[0][:40]!r}. Topics: {', '.join(TOPICS)}.")
    return tuple(dict.fromkeys(wanted))


def parse_time(text: str | None, default: str) -> str:
    value = (text or default).strip()
    if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value):
        raise SubscriptionError(
            f"{value[:20]!r} is not a time of day; use HH:MM in UTC, e.g. 08:00."
        )
    hour, minute = value.split(":")
    return f"{int(hour):02d}:{minute}"


def parse_min_score(value: float | None, default: float) -> float:
    score = default if value is None else value
    if not 0.0 <= score <= 1.0:
        raise SubscriptionError("The minimum score must be between 0 and 1.")
    return score


async def subscribe(
    store: Store,
    settings: DigestSettings,
    guild_id: str,
    channel_id: str,
    topics: str | None = None,
    digest_time: str | None = None,
    min_score: float | None = None,
    post_empty: bool = False,
    now: datetime | None = None,
    shared_list: bool | None = None,
    weekly: bool | None = None,
    mention_role: str | None = None,
    stop_mentions: bool = False,
    thread: bool | None = None,
    forum: bool = False,
    create_tags: bool | None = None,
) -> Subscription:
    """Subscribe a channel, or update its subscription. Its first digest covers the most
    recent listing day, not the whole archive."""
    now = now or datetime.now(UTC)
    chosen_topics = parse_topics(topics)
    chosen_time = parse_time(digest_time, settings.default_time)
    score = parse_min_score(min_score, settings.relevance_threshold)
    span = await store.listing_days()
    starts_on = span[1] if span else now.date()
    return await store.save_subscription(
        guild_id,
        channel_id,
        chosen_topics,
        chosen_time,
        score,
        post_empty,
        starts_on,
        next_due(chosen_time, now),
        shared_list,
        next_weekly(chosen_time, now),
        weekly,
        mention_role,
        stop_mentions,
        thread,
        forum,
        create_tags,
    )


async def unsubscribe(store: Store, guild_id: str, channel_id: str) -> bool:
    current = await store.subscription_for_channel(channel_id)
    if (
        current is None
        or current.guild_id != guild_id
        or current.status is SubscriptionStatus.DELETED
    ):
        return False
    await store.set_subscription_status(current.id, SubscriptionStatus.DELETED, "unsubscribed")
    return True


def describe(subscription: Subscription) -> str:
    topics = ", ".join(subscription.topics) if subscription.topics else "all topics"
    state = {
        SubscriptionStatus.ACTIVE: "active",
        SubscriptionStatus.PAUSED: f"paused: {subscription.status_reason}",
        SubscriptionStatus.DELETED: "ended",
    }[subscription.status]
    return (
        f"<#{subscription.channel_id}>: {topics}, daily at {subscription.digest_time} UTC, "
        f"score ≥ {subscription.min_score:.2f}"
        + (", posts a note on empty days" if subscription.post_empty else "")
        + (", papers in a thread under the day's header" if subscription.thread else "")
        + (", each paper a forum post" if subscription.forum else "")
        + (", creating missing topic tags" if subscription.create_tags else "")
        + (", keeps a shared reading list" if subscription.shared_list else "")
        + (f", mentions <@&{subscription.mention_role}>" if subscription.mention_role else "")
        + (
            f", the week's most liked on Mondays at {subscription.digest_time}"
            if subscription.next_weekly_at
            else ""
        )
        + f" ({state})"
    )
