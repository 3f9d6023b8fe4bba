"""Votes under digest papers: one per person per paper per channel, changeable and
removable, answered privately, kept across restarts; /top ranks the server's likes; the
weekly most-liked digest; a role mentioned by an admin's explicit choice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import Settings
from bot.digests.delivery import deliver_due
from bot.discord_bot.client import ArxivBot
from bot.store import Store
from tests.discord_bot.harness import (
    answer,
    buttons,
    is_ephemeral,
    later,
    papers_of,
    start_bot,
    stop_bot,
    subscribe_here,
    text_displays,
    text_of,
)
from tests.fake_discord import (
    ADMIN_ID,
    CHANNEL_ID,
    MEMBER_ID,
    PAPERS_ROLE_ID,
    QUIET_ROLE_ID,
    SECOND_CHANNEL_ID,
    FakeDiscord,
)

pytestmark = pytest.mark.loopback

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


def vote(fake: FakeDiscord, message: dict, arxiv_id: str, value: str, user: str) -> str:
    return fake.click(
        f"paper:vote:{value}:{arxiv_id}", message, user_id=user, channel_id=message["channel_id"]
    )


async def said(fake: FakeDiscord, token: str) -> str:
    [response] = await answer(fake, token)
    assert is_ephemeral(response)
    return text_of(response)


async def test_a_vote_is_noted_changed_and_removed_and_survives_a_restart(
    bot_settings: Settings, papers_store: Store, fake_discord: FakeDiscord
) -> None:
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    await subscribe_here(bot)
    await deliver_due(bot.store, bot.digests, bot.sender, later())
    message = fake_discord.posted(CHANNEL_ID)[0]
    first, second = papers_of(message)[:2]
    assert {b["custom_id"] for b in buttons(message, "paper:vote:")} >= {
        f"paper:vote:up:{first}",
        f"paper:vote:down:{first}",
    }
    try:
        assert await said(fake_discord, vote(fake_discord, message, first, "up", MEMBER_ID)) == (
            "Noted: 👍."
        )
        assert await said(fake_discord, vote(fake_discord, message, first, "down", MEMBER_ID)) == (
            "Changed to 👎."
        )
        assert await said(fake_discord, vote(fake_discord, message, first, "down", MEMBER_ID)) == (
            "Removed your 👎."
        )
        await said(fake_discord, vote(fake_discord, message, first, "up", MEMBER_ID))
        await said(fake_discord, vote(fake_discord, message, first, "up", ADMIN_ID))
        await said(fake_discord, vote(fake_discord, message, second, "down", ADMIN_ID))
    finally:
        await stop_bot(bot, task)
    # A new process: the buttons still answer, and the votes are still there.
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    try:
        assert await said(fake_discord, vote(fake_discord, message, second, "up", MEMBER_ID)) == (
            "Noted: 👍."
        )
        token = fake_discord.slash("top")
        text = await said(fake_discord, token)
        lines = text.splitlines()
        assert lines[0] == "**Most liked in this server, the last 7 days**"
        assert f"abs/{first}>" in lines[1] and lines[2].endswith("· 👍 2")  # title, then byline
        # One like and one dislike: not liked on balance, so not listed.
        assert all(f"abs/{second}>" not in line for line in lines)
    finally:
        await stop_bot(bot, task)


async def test_a_vote_on_a_paper_the_channel_never_received_writes_nothing(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    await deliver_due(running.store, running.digests, running.sender, later())
    message = fake_discord.posted(CHANNEL_ID)[0]
    # The same buttons, clicked in a channel whose digests never had the paper.
    elsewhere = {**message, "channel_id": SECOND_CHANNEL_ID}
    paper = papers_of(message)[0]
    text = await said(fake_discord, vote(fake_discord, elsewhere, paper, "up", MEMBER_ID))
    assert text == "This channel's digests never had that paper, so a vote here cannot count."
    token = fake_discord.slash("top")
    assert (await said(fake_discord, token)).startswith("No liked papers in this server")


async def test_top_takes_a_period(running: ArxivBot, fake_discord: FakeDiscord) -> None:
    token = fake_discord.slash("top", {"days": 30})
    assert await said(fake_discord, token) == (
        "No liked papers in this server in the last 30 days yet: 👍 under a digest paper counts."
    )


async def test_a_weekly_digest_posts_the_channels_most_liked_on_mondays(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    await deliver_due(running.store, running.digests, running.sender, later())
    daily = fake_discord.posted(CHANNEL_ID)
    message = daily[0]
    liked, split, also = papers_of(message)[:3]
    for user in (MEMBER_ID, ADMIN_ID):
        await said(fake_discord, vote(fake_discord, message, liked, "up", user))
    await said(fake_discord, vote(fake_discord, message, split, "up", MEMBER_ID))
    await said(fake_discord, vote(fake_discord, message, split, "down", ADMIN_ID))
    await said(fake_discord, vote(fake_discord, message, also, "up", MEMBER_ID))
    token = fake_discord.slash("subscribe", {"weekly": True})
    assert "the week's most liked on Mondays at 08:00" in await said(fake_discord, token)
    subscription = await running.store.subscription_for_channel(CHANNEL_ID)
    assert subscription is not None and subscription.next_weekly_at is not None
    monday = subscription.next_weekly_at
    assert monday.weekday() == 0 and (monday.hour, monday.minute) == (8, 0)

    await deliver_due(running.store, running.digests, running.sender, monday - timedelta(minutes=1))
    assert len(fake_discord.posted(CHANNEL_ID)) == len(daily)  # not before its time
    await deliver_due(running.store, running.digests, running.sender, monday + timedelta(minutes=1))
    [weekly] = fake_discord.posted(CHANNEL_ID)[len(daily) :]
    texts = text_displays(weekly)
    assert texts[0].startswith("## This week's most liked here")
    assert papers_of(weekly) == [liked, also]  # net likes first; a 1-1 paper is not liked
    assert texts[1].endswith("-# 👍 2") and texts[2].endswith("-# 👍 1")
    # Once: the next round has nothing to post, and a week without votes posts nothing.
    await deliver_due(running.store, running.digests, running.sender, monday + timedelta(hours=1))
    await deliver_due(
        running.store, running.digests, running.sender, monday + timedelta(days=7, minutes=1)
    )
    assert len(fake_discord.posted(CHANNEL_ID)) == len(daily) + 1
    subscription = await running.store.subscription_for_channel(CHANNEL_ID)
    assert subscription is not None and subscription.next_weekly_at == monday + timedelta(days=14)
    # Subscribing again without `weekly` keeps it; weekly:false stops it.
    token = fake_discord.slash("subscribe", {"time": "09:00"})
    assert "most liked on Mondays at 09:00" in await said(fake_discord, token)
    moved = await running.store.subscription_for_channel(CHANNEL_ID)
    assert moved is not None and moved.next_weekly_at is not None
    assert moved.next_weekly_at.weekday() == 0 and moved.next_weekly_at.hour == 9
    token = fake_discord.slash("subscribe", {"weekly": False})
    assert "most liked" not in await said(fake_discord, token)


async def test_a_role_is_mentioned_only_when_chosen_and_only_that_role(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    token = fake_discord.slash("subscribe", {"role": QUIET_ROLE_ID})
    refused = await said(fake_discord, token)
    # The role's name is shown, escaped: it cannot ping (@here) or format (**).
    assert refused == (
        "The bot may not mention @quiet @\u200bhere \\*\\*role\\*\\*: make the role"
        " mentionable, or give the bot the Mention @everyone, @here and All Roles permission."
    )
    assert await running.store.subscription_for_channel(CHANNEL_ID) is None  # nothing written
    token = fake_discord.slash("subscribe", {"role": PAPERS_ROLE_ID})
    assert f"mentions <@&{PAPERS_ROLE_ID}>" in await said(fake_discord, token)
    await deliver_due(running.store, running.digests, running.sender, later())
    first, *rest = fake_discord.posted(CHANNEL_ID)
    assert text_displays(first)[0].startswith(f"<@&{PAPERS_ROLE_ID}>\n## arXiv efficiency digest")
    assert first["allowed_mentions"] == {"parse": [], "roles": [int(PAPERS_ROLE_ID)]}
    assert rest and all(m["allowed_mentions"] == {"parse": []} for m in rest)
    # mentions:false stops it; the next digest pings no one.
    token = fake_discord.slash("subscribe", {"mentions": False})
    assert "mentions <@&" not in await said(fake_discord, token)
    subscription = await running.store.subscription_for_channel(CHANNEL_ID)
    assert subscription is not None and subscription.mention_role is None
    # A channel unsubscribed and subscribed again starts without the old role.
    await said(fake_discord, fake_discord.slash("subscribe", {"role": PAPERS_ROLE_ID}))
    await said(fake_discord, fake_discord.slash("unsubscribe"))
    await said(fake_discord, fake_discord.slash("subscribe"))
    again = await running.store.subscription_for_channel(CHANNEL_ID)
    assert again is not None and again.mention_role is None
