"""`/subscribe channel:<forum>`: each paper a forum post, titled with the paper, tagged with
the forum's tags that match its topics (creating missing ones when asked and allowed),
exactly once across a crash between Discord's answer and the record."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import Settings
from bot.digests.delivery import deliver_due
from bot.digests.render import title_of
from bot.discord_bot.client import note_title
from bot.models import OutgoingMessage
from bot.store import Store
from bot.text import clip
from tests.discord_bot.harness import answer, later, papers_of, start_bot, stop_bot, text_of
from tests.fake_discord import FORUM_ID, PAPERS_ROLE_ID, FakeDiscord
from tests.test_service import until

pytestmark = pytest.mark.loopback

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


def forum_posts(fake: FakeDiscord) -> list[dict]:
    return [c for c in fake.channels.values() if c.get("parent_id") == FORUM_ID]


async def test_each_paper_is_a_tagged_forum_post_once_even_after_a_crash(
    bot_settings: Settings, papers_store: Store, fake_discord: FakeDiscord
) -> None:
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    for options, refusal in [
        ({"channel": FORUM_ID, "thread": True}, "A forum gets a post per paper already"),
        ({"channel": FORUM_ID, "create_tags": True}, "The bot may not manage tags in"),
        ({"create_tags": True}, "`create_tags` is for forum channels"),
    ]:
        [refused] = await answer(fake_discord, fake_discord.slash("subscribe", options))
        assert text_of(refused).startswith(refusal)
    assert await papers_store.guild_subscriptions("910000000000000001") == []  # nothing written
    [subscribed] = await answer(
        fake_discord, fake_discord.slash("subscribe", {"channel": FORUM_ID})
    )
    assert "each paper a forum post" in text_of(subscribed)

    # The process dies after Discord made the first post and before it was recorded.
    original = papers_store.mark_message_sent

    async def dies_before_recording(digest_id: int, position: int, message_id: str) -> None:
        raise asyncio.CancelledError

    papers_store.mark_message_sent = dies_before_recording  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await deliver_due(bot.store, bot.digests, bot.sender, later())
    papers_store.mark_message_sent = original  # type: ignore[method-assign]
    await stop_bot(bot, task)
    assert len(forum_posts(fake_discord)) == 1

    # The restarted service resumes the half-posted digest on its own; delivering here as
    # well would race it for the channel's lease.
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    try:
        await until(lambda: len(forum_posts(fake_discord)) >= 15, seconds=15)
        await asyncio.sleep(0.3)  # a post made twice would show now
    finally:
        await stop_bot(bot, task)
    posts = forum_posts(fake_discord)
    assert len(posts) == 15 and len({p["name"] for p in posts}) == 15  # none twice
    tags = {t["id"]: t["name"] for t in fake_discord.channels[FORUM_ID]["available_tags"]}
    for post in posts:
        [first] = fake_discord.posted(post["id"])
        [arxiv_id] = papers_of(first)
        paper = await papers_store.get_paper(arxiv_id)
        assert paper is not None and post["name"].endswith(f" · {arxiv_id}")
        assert post["name"] == f"{clip(title_of(paper), 100 - len(arxiv_id) - 3)} · {arxiv_id}"
        assert len(post["name"]) <= 100
        assert {tags[t] for t in post["applied_tags"]} == set(paper.topics) & {
            "quantization",
            "pruning",
        }


async def test_missing_topic_tags_are_created_when_the_bot_may(
    bot_settings: Settings, papers_store: Store, fake_discord: FakeDiscord
) -> None:
    fake_discord.bot_manages_channels = True
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    try:
        token = fake_discord.slash(
            "subscribe", {"channel": FORUM_ID, "create_tags": True, "role": PAPERS_ROLE_ID}
        )
        [subscribed] = await answer(fake_discord, token)
        assert "creating missing topic tags" in text_of(subscribed)
        await deliver_due(bot.store, bot.digests, bot.sender, later())
    finally:
        await stop_bot(bot, task)
    names = {t["name"] for t in fake_discord.channels[FORUM_ID]["available_tags"]}
    # Discord allows 20 characters: efficient-architectures is tagged "architectures".
    assert {"quantization", "pruning", "inference-serving", "architectures"} <= names
    posts = forum_posts(fake_discord)
    tagged = [p for p in posts if p["applied_tags"]]
    assert len(tagged) == 15  # every paper has a topic, and now every topic a tag
    # The chosen role is mentioned once, on the day's first post.
    firsts = [fake_discord.posted(p["id"])[0] for p in posts]
    mentioning = [m for m in firsts if m["allowed_mentions"].get("roles")]
    assert len(mentioning) == 1
    assert mentioning[0]["allowed_mentions"]["roles"] == [int(PAPERS_ROLE_ID)]


def test_a_note_in_a_forum_is_titled_by_what_it_says_and_the_day() -> None:
    weekend = OutgoingMessage(
        "**arXiv efficiency digest** · arXiv announces nothing on weekends: no new papers."
    )
    weekly = OutgoingMessage("## This week's most liked here\n-# The papers this channel liked.")
    titles = [note_title(weekend), note_title(weekly)]
    assert titles[0].startswith("arXiv efficiency digest · arXiv announces nothing on weekends")
    assert titles[1].startswith("This week's most liked here · 20")
    assert all(len(t) <= 100 for t in titles) and titles[0] != titles[1]
