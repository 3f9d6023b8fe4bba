"""Rows to plain models and back: the only place that knows the column order."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from bot import models
from bot.store.dialect import Dialect
from bot.store.times import from_iso, iso

SUBSCRIPTION_COLUMNS = (
    "id, guild_id, channel_id, topics, digest_time, min_score, post_empty, status,"
    " status_reason, starts_on, next_due_at, last_digest_at, shared_list, next_weekly_at,"
    " mention_role, thread, forum, create_tags"
)


@functools.cache
def paper_columns(dialect: Dialect) -> str:
    """What `paper_from_row` reads, from `papers p`."""
    return f"""
    p.arxiv_id, p.version, p.title, p.abstract, p.authors, p.categories, p.comment,
    p.published, p.updated, p.announced, p.relevance,
    (SELECT {dialect.joined("t.topic", ",")} FROM paper_topics t WHERE t.paper_id = p.id) AS topics,
    (SELECT {
        dialect.json_list("s.tldr", dialect.json_value("s.bullets"), "s.model", "s.prompt_version")
    }
      FROM summaries s
      WHERE s.paper_id = p.id ORDER BY s.created_at DESC LIMIT 1) AS summary,
    coalesce(p.verdict, p.reason), p.decided_by, p.score
"""


def _summary(text: str | None) -> models.Summary | None:
    if not text:
        return None
    tldr, bullets, model, prompt_version = json.loads(text)
    return models.Summary(tldr, tuple(bullets), models.SummarySource.MODEL, model, prompt_version)


Row = Sequence[Any]  # a row from either backend

# What a new version of a paper replaces, in this order (see `paper_version_values`).
PAPER_VERSION_COLUMNS = (
    "version",
    "title",
    "abstract",
    "authors",
    "categories",
    "comment",
    "updated",
)


def paper_version_values(paper: models.Paper) -> tuple[Any, ...]:
    return (
        paper.version,
        paper.title,
        paper.abstract,
        json.dumps(paper.authors, ensure_ascii=False),
        json.dumps(paper.categories),
        paper.comment,
        iso(paper.updated),
    )


def paper_from_row(row: Row) -> models.Paper:
    topics = tuple(sorted(row[11].split(","))) if row[11] else ()
    return models.Paper(
        arxiv_id=row[0],
        version=row[1],
        title=row[2],
        abstract=row[3],
        authors=tuple(json.loads(row[4])),
        categories=tuple(json.loads(row[5])),
        comment=row[6],
        published=datetime.fromisoformat(row[7]),
        updated=datetime.fromisoformat(row[8]),
        announced=date.fromisoformat(row[9]),
        relevance=row[10],
        topics=topics,
        summary=_summary(row[12]),
        reason=row[13],
        decided_by=row[14],
        score=row[15],
    )


def subscription_from_row(row: Row) -> models.Subscription:
    return models.Subscription(
        id=row[0],
        guild_id=row[1],
        channel_id=row[2],
        topics=tuple(json.loads(row[3])),
        digest_time=row[4],
        min_score=row[5],
        post_empty=bool(row[6]),
        status=models.SubscriptionStatus(row[7]),
        status_reason=row[8],
        starts_on=date.fromisoformat(row[9]),
        next_due_at=datetime.fromisoformat(row[10]),
        last_digest_at=from_iso(row[11]),
        shared_list=bool(row[12]),
        next_weekly_at=from_iso(row[13]),
        mention_role=row[14],
        thread=bool(row[15]),
        forum=bool(row[16]),
        create_tags=bool(row[17]),
    )


def message_json(message: models.OutgoingMessage) -> str:
    return json.dumps(
        {
            "content": message.content,
            "embeds": list(message.embeds),
            "buttons": [[b.label, b.arxiv_id] for b in message.buttons],
            "blocks": [[b.number, b.arxiv_id, b.text] for b in message.blocks],
            "note": message.note,
            "mention_role": message.mention_role,
            "mention_users": list(message.mention_users),
            "in_thread": message.in_thread,
            "post_title": message.post_title,
            "post_tags": list(message.post_tags),
            "create_tags": message.create_tags,
        },
        ensure_ascii=False,
    )


def message_from_json(text: str) -> models.OutgoingMessage:
    data = json.loads(text)
    return models.OutgoingMessage(
        content=data["content"],
        embeds=tuple(data["embeds"]),
        buttons=tuple(models.SummaryButton(label, arxiv_id) for label, arxiv_id in data["buttons"]),
        # Digests recorded before layout messages have neither.
        blocks=tuple(models.PaperBlock(*block) for block in data.get("blocks", ())),
        note=data.get("note", ""),
        mention_role=data.get("mention_role"),
        mention_users=tuple(data.get("mention_users", ())),
        in_thread=bool(data.get("in_thread", False)),
        post_title=data.get("post_title", ""),
        post_tags=tuple(data.get("post_tags", ())),
        create_tags=bool(data.get("create_tags", False)),
    )


def poll_from_row(row: Row) -> models.Poll:
    return models.Poll(
        id=row[0],
        started_at=datetime.fromisoformat(row[1]),
        finished_at=from_iso(row[2]),
        outcome=models.PollOutcome(row[3]),
        reason=row[4],
        requests=row[5],
        counts=models.UpsertCounts(new=row[6], updated=row[7], unchanged=row[8]),
        newest_seen=from_iso(row[9]),
    )
