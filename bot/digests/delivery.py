"""Daily digests for subscribed channels: choose, render within Discord's limits, deliver once.

Plain Python: the Discord layer passes in a `Sender`. A digest is recorded with
its papers and its rendered messages before the first post; each message is
marked sent as soon as Discord accepts it. So a crash or a restart resumes at
the first unsent message, and the (subscription, paper) key in the schema
makes sure no paper reaches a channel twice. The one window left is a crash
between Discord accepting a message and the database recording it: that
message would be posted again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from bot.config import DigestSettings
from bot.digests.schedule import plan_digest
from bot.models import OutgoingMessage, Subscription, SubscriptionStatus
from bot.store import Store

log = logging.getLogger("bot.digests")


class ChannelForbidden(Exception):
    """Discord answered 403: the bot may not post there."""


class ChannelGone(Exception):
    """Discord answered 404: the channel was deleted."""


class Sender(Protocol):
    async def send(self, channel_id: str, message: OutgoingMessage) -> str:
        """Post a message and return its id; raise ChannelForbidden or ChannelGone."""
        ...


async def send_pending(store: Store, sender: Sender, subscription: Subscription) -> int:
    """Post this subscription's unsent messages in order. Returns how many were posted.
    A 403 pauses the subscription, a 404 ends it; either stops here, for this channel only."""
    posted = 0
    for pending in await store.pending_messages(subscription.id):
        try:
            message_id = await sender.send(subscription.channel_id, pending.message)
        except ChannelForbidden as exc:
            reason = (
                f"missing permission to post ({exc})" if str(exc) else "missing permission to post"
            )
            await store.set_subscription_status(subscription.id, SubscriptionStatus.PAUSED, reason)
            log.warning("digest paused channel=%s reason=%s", subscription.channel_id, reason)
            break
        except ChannelGone:
            await store.set_subscription_status(
                subscription.id, SubscriptionStatus.DELETED, "the channel no longer exists"
            )
            log.warning(
                "subscription ended channel=%s reason=channel deleted", subscription.channel_id
            )
            break
        await store.mark_message_sent(pending.digest_id, pending.position, message_id)
        posted += 1
    return posted


async def deliver_subscription(
    store: Store,
    settings: DigestSettings,
    sender: Sender,
    subscription: Subscription,
    now: datetime,
    scheduled: bool = True,
) -> int:
    """Finish any digest a crash left half-posted, then post what is due."""
    await send_pending(store, sender, subscription)
    current = await store.subscription_for_channel(subscription.channel_id)
    if current is None or current.status is not SubscriptionStatus.ACTIVE:
        return 0
    digest_id = await plan_digest(store, settings, current, now, scheduled)
    if digest_id is None:
        return 0
    return await send_pending(store, sender, current)


DELIVERY_CONCURRENCY = 8


async def deliver_due(
    store: Store,
    settings: DigestSettings,
    sender: Sender,
    now: datetime | None = None,
    concurrency: int = DELIVERY_CONCURRENCY,
) -> int:
    """Deliver every due subscription, several channels at a time (each channel's messages
    in order); one channel's failure never stops the others. Discord's rate limits are
    discord.py's to honour: it waits out 429s, per route and global."""
    now = now or datetime.now(UTC)
    gate = asyncio.Semaphore(concurrency)

    async def one(subscription: Subscription) -> int:
        async with gate:
            try:
                return await deliver_subscription(store, settings, sender, subscription, now)
            except Exception:
                log.exception("digest failed channel=%s", subscription.channel_id)
                return 0

    results = await asyncio.gather(*(one(s) for s in await store.due_subscriptions(now)))
    return sum(results)


async def resume_unfinished(
    store: Store, sender: Sender, subscriptions: Sequence[Subscription]
) -> int:
    """After a restart: post what a crash left unsent, before anything new."""
    posted = 0
    for subscription in subscriptions:
        if subscription.status is SubscriptionStatus.ACTIVE:
            posted += await send_pending(store, sender, subscription)
    return posted
