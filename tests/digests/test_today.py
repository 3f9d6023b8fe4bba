"""Telling "arXiv announced nothing today (weekend or holiday)" from "arXiv could not be
reached", by arXiv's announcement schedule and what the polls found."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.config import Settings
from bot.digests.schedule import plan_digest, todays_listing
from bot.listing import announced_at, is_listing_day, listing_day
from bot.store import Store
from bot.subscriptions import subscribe
from tests.helpers import make_paper

# Wednesday 2025-11-12 09:00 UTC: readers are on Wednesday's listing, announced on
# Tuesday at 20:00 US Eastern (01:00 UTC).
WEDNESDAY_MORNING = datetime(2025, 11, 12, 9, 0, tzinfo=UTC)
SATURDAY_MORNING = datetime(2025, 11, 15, 9, 0, tzinfo=UTC)

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


def test_the_announcement_schedule() -> None:
    assert listing_day(WEDNESDAY_MORNING) == date(2025, 11, 12)
    # Tuesday 20:30 US Eastern is already Wednesday's listing.
    assert listing_day(datetime(2025, 11, 12, 1, 30, tzinfo=UTC)) == date(2025, 11, 12)
    assert listing_day(datetime(2025, 11, 12, 0, 30, tzinfo=UTC)) == date(2025, 11, 11)
    assert announced_at(date(2025, 11, 12)) == datetime(2025, 11, 12, 1, 0, tzinfo=UTC)
    assert [is_listing_day(date(2025, 11, d)) for d in range(10, 17)] == [
        True, True, True, True, True, False, False,
    ]  # fmt: skip


async def poll(store: Store, started: datetime, outcome: str) -> None:
    await store._conn.execute(
        "INSERT INTO polls (started_at, finished_at, outcome) VALUES (?, ?, ?)",
        (started.isoformat(), (started + timedelta(minutes=1)).isoformat(), outcome),
    )


@pytest.mark.parametrize(
    ("polls", "papers_today", "expected"),
    [
        ([], False, "pending"),
        (["failed", "failed"], False, "unreachable"),
        (["failed", "nothing"], False, "holiday"),
        (["ok"], True, "listed"),
    ],
)
async def test_what_arxiv_did_today(
    store: Store, polls: list[str], papers_today: bool, expected: str
) -> None:
    await store.upsert_papers([make_paper("2511.00001", "Older", day=date(2025, 11, 11))])
    if papers_today:
        await store.upsert_papers([make_paper("2511.00002", "Today", day=date(2025, 11, 12))])
    for hours, outcome in enumerate(polls, 2):  # polls after the announcement
        await poll(store, WEDNESDAY_MORNING - timedelta(hours=9) + timedelta(hours=hours), outcome)
    assert await todays_listing(store, WEDNESDAY_MORNING) == expected
    assert await todays_listing(store, SATURDAY_MORNING) == "weekend"


async def test_the_empty_day_note_says_why(store: Store, settings: Settings) -> None:
    await store.upsert_papers([make_paper("2511.00001", "Older", day=date(2025, 11, 11))])
    await poll(store, WEDNESDAY_MORNING - timedelta(hours=3), "nothing")
    subscription = await subscribe(
        store,
        settings.digests,
        "1",
        "2",
        post_empty=True,
        digest_time="09:00",
        now=WEDNESDAY_MORNING - timedelta(days=1),
    )
    digest = await plan_digest(store, settings.digests, subscription, WEDNESDAY_MORNING, True)
    assert digest is not None
    [pending] = await store.pending_messages(subscription.id)
    assert pending.message.content == (
        "**arXiv efficiency digest** · arXiv announced nothing today (a holiday, most likely):"
        " no new papers."
    )


def test_the_notes_tell_unreachable_from_announced_nothing() -> None:
    from bot.digests.render import render_note

    assert (
        "could not be reached since today's announcement"
        in render_note("empty", today="unreachable").content
    )
    assert "announces nothing on weekends" in render_note("empty", today="weekend").content


async def test_arxivs_published_holidays_are_named_as_such(store: Store) -> None:
    """Thanksgiving 2023 (Thursday 23 November): no mailing that evening, so no listing
    dated Friday 24 November."""
    friday = datetime(2023, 11, 24, 12, 0, tzinfo=UTC)
    assert await todays_listing(store, friday) == "arxiv-holiday"
    thursday = datetime(2023, 11, 23, 12, 0, tzinfo=UTC)  # announced Wednesday evening
    assert await todays_listing(store, thursday) == "pending"
