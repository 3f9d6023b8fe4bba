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
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from bot.config import Settings
from bot.digest import explain, first_authors
from bot.models import (
    OutgoingMessage,
    Paper,
    PollOutcome,
    Subscription,
    SubscriptionStatus,
    SummaryButton,
)
from bot.store import Store

log = logging.getLogger(__name__)

# Discord's limits, with a margin.
CONTENT_LIMIT = 2000
EMBEDS_PER_MESSAGE = 10
EMBED_CHARS_PER_MESSAGE = 5800
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_COLOUR = 0xB31B1B  # arXiv red


class ChannelForbidden(Exception):
    """Discord answered 403: the bot may not post there."""


class ChannelGone(Exception):
    """Discord answered 404: the channel was deleted."""


class Sender(Protocol):
    async def send(self, channel_id: str, message: OutgoingMessage) -> str:
        """Post a message and return its id; raise ChannelForbidden or ChannelGone."""
        ...


_MARKDOWN = re.compile(r"([\\*_~`|>\[\]#])")


def escape(text: str) -> str:
    """Untrusted text (titles, authors, summaries) shown literally: no formatting, no
    masked links, no mentions. Allowed mentions are off for every post as well."""
    text = _MARKDOWN.sub(r"\\\1", text)
    return text.replace("@", "@\u200b").replace("<", "<\u200b")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def next_due(digest_time: str, after: datetime) -> datetime:
    """The next moment at `digest_time` (HH:MM UTC) strictly after `after`."""
    hour, minute = (int(part) for part in digest_time.split(":"))
    candidate = datetime.combine(after.astimezone(UTC).date(), time(hour, minute), tzinfo=UTC)
    return candidate if candidate > after else candidate + timedelta(days=1)


def _day_label(days: Sequence[date]) -> str:
    first, last = min(days), max(days)
    if first == last:
        return f"{last:%A, %B} {last.day}, {last:%Y}"
    return f"{first:%B} {first.day} – {last:%B} {last.day}, {last:%Y}"


def paper_embed(paper: Paper, number: int) -> dict:
    topics = " ".join(f"`{t}`" for t in paper.topics)
    lines = [escape(first_authors(paper))]
    if topics:
        lines.append(topics)
    if paper.reason:
        lines.append(f"Why: {escape(explain(paper))}")
    description = "\n".join(lines)
    return {
        "title": clip(f"{number}. {escape(paper.title)}", EMBED_TITLE_LIMIT),
        "url": paper.abs_url,
        "description": clip(description, EMBED_DESCRIPTION_LIMIT),
        "color": EMBED_COLOUR,
    }


def _embed_chars(embed: dict) -> int:
    return len(embed.get("title", "")) + len(embed.get("description", ""))


def render_digest(
    papers: Sequence[Paper], max_papers: int, topics_filter: Sequence[str] = ()
) -> list[OutgoingMessage]:
    """A header, then one embed and one Summary button per paper, split into messages
    of at most 10 embeds and ~6,000 embed characters; a last line for papers beyond
    `max_papers`."""
    shown, more = list(papers[:max_papers]), len(papers) - max_papers
    counts = Counter(t for p in papers for t in p.topics)
    topic_line = ", ".join(f"{t} ({n})" for t, n in counts.most_common())
    header = (
        f"**arXiv efficiency digest · {_day_label([p.announced for p in papers])}**\n"
        f"{len(papers)} new paper{'s' * (len(papers) != 1)}"
        + (f" · {topic_line}" if topic_line else "")
        + "\nClick a paper's **Summary** button to reveal its summary."
    )
    chunks: list[list[tuple[dict, SummaryButton]]] = [[]]
    size = 0
    for number, paper in enumerate(shown, 1):
        embed = paper_embed(paper, number)
        if (
            len(chunks[-1]) == EMBEDS_PER_MESSAGE
            or size + _embed_chars(embed) > EMBED_CHARS_PER_MESSAGE
        ):
            chunks.append([])
            size = 0
        chunks[-1].append((embed, SummaryButton(f"Summary {number}", paper.arxiv_id)))
        size += _embed_chars(embed)
    messages = []
    for index, chunk in enumerate(chunks):
        content = clip(header, CONTENT_LIMIT) if index == 0 else f"({index + 1}/{len(chunks)})"
        messages.append(
            OutgoingMessage(
                content=content,
                embeds=tuple(e for e, _ in chunk),
                buttons=tuple(b for _, b in chunk),
            )
        )
    if more > 0:
        since = min(p.announced for p in papers).isoformat()
        topic_hint = f" topic:{topics_filter[0]}" if len(topics_filter) == 1 else ""
        line = (
            f"…and {more} more relevant paper{'s' * (more != 1)}: "
            f"`/search{topic_hint} since:{since}` lists them."
        )
        last = messages[-1]
        content = clip(last.content, CONTENT_LIMIT - len(line) - 1) + "\n" + line
        messages[-1] = OutgoingMessage(content, last.embeds, last.buttons)
    return messages


def render_note(kind: str, reasons: Sequence[str] = ()) -> OutgoingMessage:
    if kind == "arxiv-down":
        why = f" ({escape(reasons[-1])})" if reasons else ""
        return OutgoingMessage(
            "**arXiv efficiency digest** · arXiv could not be reached since the last digest"
            f"{why}. The next digest will catch up on everything missed."
        )
    return OutgoingMessage("**arXiv efficiency digest** · No new papers today.")


async def plan_digest(
    store: Store, settings: Settings, subscription: Subscription, now: datetime, scheduled: bool
) -> int | None:
    """Record the digest a subscription is due (papers, or a note), or nothing when there is
    nothing to say. A scheduled digest also moves the subscription to its next day."""
    following = next_due(subscription.digest_time, now) if scheduled else None
    papers = await store.digest_candidates(subscription, settings.relevance_threshold)
    if papers:
        messages = render_digest(papers, settings.digest_max_papers, subscription.topics)
        digest_id = await store.record_digest(
            subscription.id, "papers", papers, messages, following
        )
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
        return await store.record_digest(
            subscription.id, "empty", [], [render_note("empty")], following
        )
    if following:
        await store.postpone_subscription(subscription.id, following)
    return None


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
    settings: Settings,
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
    settings: Settings,
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
