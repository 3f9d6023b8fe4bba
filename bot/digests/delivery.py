"""Daily digests for subscribed channels: choose, render within Discord's limits, deliver once.

Plain Python: the Discord layer passes in a `Sender`. A digest is recorded with
its papers and its rendered messages before the first post; each message is
marked sent as soon as Discord accepts it. So a crash or a restart resumes at
the first unsent message, and the (subscription, paper) key in the schema
makes sure no paper reaches a channel twice. A lease on the subscription lets
only one delivery post at a time (the schedule, `/digest now`, another process).
Transient Discord failures leave the rest unsent for the next tick. Each message is
posted with a nonce derived from its stored id, which Discord enforces: a crash
between Discord accepting a message and the database recording it makes the next
attempt return the message Discord already has, not a second one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.channel_taste import ChannelTastes
from bot.config import DigestSettings
from bot.digests.schedule import plan_digest, plan_weekly
from bot.models import OutgoingMessage, Subscription, SubscriptionStatus
from bot.store import Store

log = logging.getLogger("bot.digests")


class ChannelForbidden(Exception):
    """Discord answered 403: the bot may not post there."""


class ChannelGone(Exception):
    """Discord answered 404: the channel was deleted."""


class ChannelUnavailable(Exception):
    """A transient failure (5xx after discord.py's own retries, a timeout, a reset
    connection): the message stays unsent and the next scheduler tick tries again."""


class MessageRefused(Exception):
    """Discord refused this message for good (a 4xx other than 403, 404 and 429)."""


class DeliveryBusy(Exception):
    """This subscription's messages are being posted by someone else right now."""


class Sender(Protocol):
    async def send(
        self, channel_id: str, message: OutgoingMessage, nonce: str, thread_of: str | None = None
    ) -> str:
        """Post a message and return its id; raise ChannelForbidden, ChannelGone or
        ChannelUnavailable. A second post with the same nonce must return the message the
        first one created (Discord's enforce_nonce), not post it again. With `thread_of`,
        post in the thread under that message, starting it if it has none."""
        ...


RETRY_MIN = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=10)


def retry_delay(failing_since: datetime, now: datetime) -> timedelta:
    """Wait about as long as the channel has been failing (so waits double), from half a
    minute up to ten, with jitter so channels that failed together retry apart."""
    base = min(max(now - failing_since, RETRY_MIN), RETRY_MAX)
    return base * random.uniform(0.8, 1.2)


def message_nonce(digest_id: int, position: int) -> str:
    """The same for every attempt at one recorded message, so a post repeated after a crash
    (Discord accepted it, the database never heard) returns the message it already made."""
    return f"d{digest_id}m{position}"


async def send_pending(
    store: Store,
    sender: Sender,
    subscription: Subscription,
    holder: str,
    settings: DigestSettings,
    now: datetime | None = None,
) -> int:
    """Post this subscription's unsent messages in order, under its delivery lease.
    Returns how many were posted. A 403 pauses the subscription, a 404 ends it; a
    transient failure leaves the rest for the next tick, and pauses the subscription
    once it has lasted `give_up_hours`. Either way only this channel stops."""
    posted = 0
    headers: dict[int, str] = {}  # digest id -> its first message, posted in this call
    for pending in await store.pending_messages(subscription.id):
        nonce = message_nonce(pending.digest_id, pending.position)
        try:
            if pending.message.in_thread:
                thread_of = pending.thread_of or headers.get(pending.digest_id)
                if thread_of is None:  # its header is not posted: it comes first
                    break
                message_id = await sender.send(
                    subscription.channel_id, pending.message, nonce, thread_of=thread_of
                )
            else:
                message_id = await sender.send(subscription.channel_id, pending.message, nonce)
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
        except MessageRefused as exc:
            reason = f"Discord refused a digest message ({exc})"
            await store.set_subscription_status(subscription.id, SubscriptionStatus.PAUSED, reason)
            log.error("digest paused channel=%s reason=%s", subscription.channel_id, reason)
            break
        except ChannelUnavailable as exc:
            moment = now or datetime.now(UTC)
            since = await store.record_delivery_failure(subscription.id, moment)
            await store.retry_delivery_at(subscription.id, moment + retry_delay(since, moment))
            if moment - since >= timedelta(hours=settings.give_up_hours):
                reason = f"Discord kept failing for {settings.give_up_hours:g} hours ({exc})"
                await store.set_subscription_status(
                    subscription.id, SubscriptionStatus.PAUSED, reason
                )
                log.error("digest paused channel=%s reason=%s", subscription.channel_id, reason)
            else:
                log.warning(
                    "digest message not posted, retrying next tick channel=%s reason=%s",
                    subscription.channel_id,
                    exc,
                )
            break
        await store.mark_message_sent(pending.digest_id, pending.position, message_id)
        if pending.position == 0:
            headers[pending.digest_id] = message_id
        posted += 1
        if not await store.claim_delivery(subscription.id, holder):  # extend the lease
            log.warning("delivery lease lost channel=%s", subscription.channel_id)
            return posted  # another delivery took over: never post beside it
    else:
        await store.record_delivery_success(subscription.id)
    return posted


async def deliver_subscription(
    store: Store,
    settings: DigestSettings,
    sender: Sender,
    subscription: Subscription,
    now: datetime,
    scheduled: bool = True,
    tastes: ChannelTastes | None = None,
    holder_prefix: str = "",
) -> int:
    """Finish any digest a crash or a failure left half-posted, then post what is due;
    one delivery per subscription at a time, whoever asks. Raises DeliveryBusy when
    another is under way. The lease's holder starts with `holder_prefix`: a process that
    takes over from a dead leader frees exactly that leader's leases."""
    holder = holder_prefix + uuid.uuid4().hex
    if not await store.claim_delivery(subscription.id, holder):
        raise DeliveryBusy(subscription.channel_id)
    try:
        posted = await send_pending(store, sender, subscription, holder, settings, now)

        async def open_for_more() -> Subscription | None:
            """The subscription, when everything recorded so far is posted: after a failure
            (or a lost lease) nothing more is planned or tried this round."""
            if not await store.claim_delivery(subscription.id, holder):  # still ours?
                return None
            current = await store.subscription_for_channel(subscription.channel_id)
            if current is None or current.status is not SubscriptionStatus.ACTIVE:
                return None
            return None if await store.pending_messages(current.id) else current

        current = await open_for_more()
        if current is None:
            return posted
        due = not scheduled or current.next_due_at <= now
        if due and await plan_digest(store, settings, current, now, scheduled, tastes):
            posted += await send_pending(store, sender, current, holder, settings, now)
        weekly = await open_for_more()
        if (
            scheduled
            and weekly is not None
            and weekly.next_weekly_at is not None
            and weekly.next_weekly_at <= now
            and await plan_weekly(store, weekly, now) is not None
        ):
            posted += await send_pending(store, sender, weekly, holder, settings, now)
        return posted
    finally:
        await store.release_delivery(subscription.id, holder)


DELIVERY_CONCURRENCY = 8


async def deliver_due(
    store: Store,
    settings: DigestSettings,
    sender: Sender,
    now: datetime | None = None,
    concurrency: int = DELIVERY_CONCURRENCY,
    tastes: ChannelTastes | None = None,
    holder_prefix: str = "",
) -> int:
    """Deliver every due subscription, and the unsent rest of any earlier digest, several
    channels at a time (each channel's messages in order); one channel's failure never
    stops the others. Discord's rate limits are discord.py's to honour: it waits out
    429s, per route and global."""
    now = now or datetime.now(UTC)
    gate = asyncio.Semaphore(concurrency)
    work = {s.id: s for s in await store.subscriptions_with_unsent(now)}
    work |= {s.id: s for s in await store.due_subscriptions(now)}
    work |= {s.id: s for s in await store.weekly_due_subscriptions(now)}

    async def one(subscription: Subscription) -> int:
        async with gate:
            try:
                return await deliver_subscription(
                    store,
                    settings,
                    sender,
                    subscription,
                    now,
                    tastes=tastes,
                    holder_prefix=holder_prefix,
                )
            except DeliveryBusy:
                log.debug("digest already being posted channel=%s", subscription.channel_id)
                return 0
            except Exception:
                log.exception("digest failed channel=%s", subscription.channel_id)
                return 0

    results = await asyncio.gather(*(one(s) for s in work.values()))
    return sum(results)
