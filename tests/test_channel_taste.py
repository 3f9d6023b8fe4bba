"""Each channel learns: a model fitted on its readers' votes reorders its digests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.channel_taste import ChannelTastes, fit_taste
from bot.classify import load_classifier
from bot.config import Settings
from bot.digests.schedule import choose_papers, plan_digest
from bot.pipeline import classify_pending
from bot.store import Store
from tests.helpers import LABELLED_DAYS, fixture_papers, readers_who_like_one_topic

pytestmark = pytest.mark.slow

# Topics with enough papers in the last four labelled days for five to be possible.
TOPICS = ["quantization", "pruning", "distillation", "parameter-efficient", "hardware"]

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


async def test_after_50_votes_a_channel_gets_the_topic_its_readers_like_first(
    store: Store, settings: Settings
) -> None:
    """Simulated readers who like only one topic vote 50 times on their channel's first
    digest (six labelled days); the next digest (four more days) shows at least four
    papers of that topic in its first five, where the global order shows at most two."""
    classifier = load_classifier()
    for day in LABELLED_DAYS[:6]:
        await store.upsert_papers(fixture_papers(day))
    await classify_pending(store, classifier)
    channels = {topic: f"93000000000000{n:04d}" for n, topic in enumerate(TOPICS)}
    for topic, channel_id in channels.items():
        await readers_who_like_one_topic(store, channel_id, topic, votes=50)
    for day in LABELLED_DAYS[6:]:
        await store.upsert_papers(fixture_papers(day))
    await classify_pending(store, classifier)
    tastes = ChannelTastes(classifier, votes_to_learn=20)
    for topic, channel_id in channels.items():
        subscription = await store.subscription_for_channel(channel_id)
        assert subscription is not None
        by_votes = await choose_papers(store, settings.digests, subscription, tastes)
        by_global = await choose_papers(store, settings.digests, subscription, None)
        assert sum(topic in p.topics for p in by_global[:5]) <= 2, topic
        assert sum(topic in p.topics for p in by_votes[:5]) >= 4, topic
        # The digest says when the votes moved a paper.
        assert any("liked here ▲" in (p.reason or "") for p in by_votes[:5])
    # Planned for real: the recorded digest's order is the channel's.
    subscription = await store.subscription_for_channel(channels["pruning"])
    assert subscription is not None
    chosen = await choose_papers(store, settings.digests, subscription, tastes)
    digest = await plan_digest(
        store, settings.digests, subscription, datetime.now(UTC), scheduled=False, tastes=tastes
    )
    assert digest is not None
    pending = await store.pending_messages(subscription.id)
    first = next(m.message for m in pending if m.digest_id == digest)
    assert [b.arxiv_id for b in first.blocks] == [p.arxiv_id for p in chosen[:5]]
    assert any("liked here ▲" in block.text for block in first.blocks)


async def test_too_few_votes_change_nothing(store: Store, settings: Settings) -> None:
    classifier = load_classifier()
    await store.upsert_papers(fixture_papers(LABELLED_DAYS[5]))
    await classify_pending(store, classifier)
    await readers_who_like_one_topic(store, "930000000000000099", "pruning", votes=19, first_days=6)
    tastes = ChannelTastes(classifier, votes_to_learn=20)
    assert await tastes.for_channel(store, "930000000000000099") is None


def test_a_taste_learns_what_was_liked_and_ignores_one_off_words() -> None:
    liked = {"vt:pruning": 1.0, "t:sparse": 0.5, "t:once": 0.5}
    disliked = {"vt:quantization": 1.0, "t:dense": 0.5}
    examples = [(liked, True), (disliked, False)] * 10 + [({"t:only_here": 1.0}, True)]
    taste = fit_taste(examples, votes=21)
    assert taste.shift({"vt:pruning": 1.0}) > 1.0 > -1.0 > taste.shift({"vt:quantization": 1.0})
    assert "t:only_here" not in taste.weights  # seen in one paper: nothing learned


async def test_papers_passed_over_do_not_come_back_and_votes_that_cancel_teach_nothing(
    store: Store, settings: Settings
) -> None:
    classifier = load_classifier()
    for day in LABELLED_DAYS[:6]:
        await store.upsert_papers(fixture_papers(day))
    await classify_pending(store, classifier)
    await readers_who_like_one_topic(store, "930000000000000077", "hardware", votes=50)
    subscription = await store.subscription_for_channel("930000000000000077")
    assert subscription is not None
    tastes = ChannelTastes(classifier, votes_to_learn=20)
    # No new listing day: what the first digest passed over stays passed over, even if
    # the channel's votes would now score it higher.
    assert await choose_papers(store, settings.digests, subscription, tastes) == []
    # Two readers who always disagree: every net vote is 0, and nothing is learned.
    for paper, _ in await store.channel_votes("930000000000000077", 300):
        await store.toggle_vote(
            "910000000000000001",
            "930000000000000077",
            "contrarian",
            paper.arxiv_id,
            -1 if "hardware" in paper.topics else 1,
        )
    assert await tastes.for_channel(store, "930000000000000077") is None
    assert fit_taste([], votes=20).weights == {}


def test_a_high_min_score_still_admits_papers_the_votes_leave_alone() -> None:
    """The global score is capped only for ordering: a 0.99 paper the votes do not move
    still passes a channel's min_score of 0.95."""
    from dataclasses import replace

    from bot.channel_taste import ChannelTaste
    from tests.helpers import make_paper

    tastes = ChannelTastes(load_classifier(), votes_to_learn=20)
    sure = replace(make_paper("2511.00001", "Pruning"), relevance=0.99)
    [kept] = tastes.rank(ChannelTaste({}, 20), [sure], floor=0.95)
    assert kept.relevance == pytest.approx(0.99)
