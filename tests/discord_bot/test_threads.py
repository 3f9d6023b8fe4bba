"""`/subscribe thread:true`: the day's header in the channel, its papers in a thread under
it, exactly once across a restart (the thread's start is repeated safely)."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import Settings
from bot.digests.delivery import deliver_due
from bot.models import OutgoingMessage
from bot.store import Store
from tests.discord_bot.harness import (
    FULL_DIGEST,
    answer,
    later,
    papers_of,
    start_bot,
    stop_bot,
    text_of,
)
from tests.fake_discord import CHANNEL_ID, MEMBER_ID, FakeDiscord

pytestmark = pytest.mark.loopback

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


async def test_papers_go_in_a_thread_under_the_header_once_across_a_restart(
    bot_settings: Settings, papers_store: Store, fake_discord: FakeDiscord
) -> None:
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    token = fake_discord.slash("subscribe", {"thread": True})
    [subscribed] = await answer(fake_discord, token)
    assert "papers in a thread under the day's header" in text_of(subscribed)
    # The process dies right after Discord accepted the thread's first message.
    original = bot.sender.send
    calls = 0

    async def dies_after_second(
        channel_id: str, message: OutgoingMessage, nonce: str, thread_of: str | None = None
    ) -> str:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise asyncio.CancelledError
        return await original(channel_id, message, nonce, thread_of=thread_of)

    bot.sender.send = dies_after_second  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await deliver_due(bot.store, bot.digests, bot.sender, later())
    await stop_bot(bot, task)
    [header] = fake_discord.posted(CHANNEL_ID)
    assert header["content"].startswith("## arXiv efficiency digest · ")
    assert not header["components"]  # no papers in the channel itself
    thread_id = header["id"]
    assert fake_discord.channels[thread_id]["parent_id"] == CHANNEL_ID
    assert len(fake_discord.posted(thread_id)) == 1

    bot, task = await start_bot(bot_settings, papers_store, fake_discord)  # resumes
    try:
        await asyncio.to_thread(fake_discord.wait_for_messages, thread_id, FULL_DIGEST)
        await asyncio.sleep(0.3)
    finally:
        await stop_bot(bot, task)
    assert len(fake_discord.posted(CHANNEL_ID)) == 1  # the header, once
    in_thread = fake_discord.posted(thread_id)
    papers = [p for m in in_thread for p in papers_of(m)]
    assert len(in_thread) == FULL_DIGEST and len(papers) == len(set(papers)) == 15
    assert fake_discord.threads_started == 1  # started once; the restart found it

    # Votes and saves in the thread count for the channel whose digest it is.
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    try:
        first = in_thread[0]
        paper = papers_of(first)[0]
        token = fake_discord.click(
            f"paper:vote:up:{paper}", first, user_id=MEMBER_ID, channel_id=thread_id
        )
        [voted] = await answer(fake_discord, token)
        assert text_of(voted) == "Noted: 👍."
    finally:
        await stop_bot(bot, task)
    assert (await papers_store.channel_vote_stamp(CHANNEL_ID))[0] == 1
