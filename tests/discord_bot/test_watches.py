"""Following an author or a phrase: a DM when a matching paper arrives, or a mention in
the channel's digest by choice, or (DMs closed) instead, said once; bad input refused."""

from __future__ import annotations

import dataclasses

import pytest

from bot.classify import load_classifier
from bot.digests.delivery import deliver_due
from bot.discord_bot.client import ArxivBot
from bot.models import Paper, Watch, WatchKind
from bot.pipeline import classify_pending
from bot.watches import Matcher, WatchError, match_new_papers, parse_watch
from tests.discord_bot.harness import (
    answer,
    is_ephemeral,
    later,
    subscribe_here,
    text_displays,
    text_of,
)
from tests.fake_discord import ADMIN_ID, CHANNEL_ID, MEMBER_ID, FakeDiscord
from tests.helpers import make_paper

pytestmark = pytest.mark.loopback

CLOSED_ID = "930000000000000003"  # accepts no direct message

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


def test_what_a_watch_matches_and_what_it_refuses() -> None:
    def watch(kind: WatchKind, text: str) -> Watch:
        return Watch(1, "u", "g", "c", kind, text, True)

    def matches(watch: Watch, paper: Paper) -> bool:
        return bool(Matcher([watch]).of(paper))

    paper = make_paper(
        "2511.00001",
        "Speculative Decoding, Revisited",
        "We speed up decoding.",
        authors=("Jürgen Müller", "Song Han"),
    )
    assert matches(watch(WatchKind.AUTHOR, "jurgen muller"), paper)
    assert matches(watch(WatchKind.AUTHOR, "Han"), paper)
    assert not matches(watch(WatchKind.AUTHOR, "Ha"), paper)  # whole words only
    assert matches(watch(WatchKind.PHRASE, "speculative  decoding"), paper)
    assert not matches(watch(WatchKind.PHRASE, "decoding speculative"), paper)
    for author, phrase, said in [
        (None, None, "Give either `author` or `phrase`"),
        ("Song Han", "pruning", "Give either `author` or `phrase`"),
        (None, "x" * 1000, "at most 100 characters"),
        (None, '"low rank" OR prun*', "Use plain words"),
        ("**Mallory** <@123>", None, "Use plain words"),
    ]:
        with pytest.raises(WatchError, match=said):
            parse_watch(author, phrase)


async def said(fake: FakeDiscord, token: str) -> str:
    [response] = await answer(fake, token)
    assert is_ephemeral(response)
    return text_of(response)


async def test_matches_reach_people_by_dm_or_in_the_digest_once(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    store = running.store
    await match_new_papers(store)  # the first round: watches follow papers from now on
    fake_discord.closed_dms.add(CLOSED_ID)
    token = fake_discord.slash("watch", {"author": "Ada Quokka"}, user_id=MEMBER_ID)
    assert (await said(fake_discord, token)).startswith("Following author “Ada Quokka”: new")
    token = fake_discord.slash(
        "watch", {"phrase": "speculative decoding", "where": "here"}, user_id=ADMIN_ID
    )
    assert (await said(fake_discord, token)).startswith("This channel has no digest")
    await subscribe_here(running)
    token = fake_discord.slash(
        "watch", {"phrase": "speculative decoding", "where": "here"}, user_id=ADMIN_ID
    )
    assert f"with a mention in <#{CHANNEL_ID}>'s digest" in await said(fake_discord, token)
    token = fake_discord.slash("watch", {"author": "Ada Quokka"}, user_id=CLOSED_ID)
    await said(fake_discord, token)
    # Bad input writes nothing.
    token = fake_discord.slash("watch", {"phrase": "x" * 1000}, user_id=MEMBER_ID)
    assert "at most 100 characters" in await said(fake_discord, token)
    token = fake_discord.slash("watch", {"author": "Ada Quokka"}, user_id=MEMBER_ID)
    assert await said(fake_discord, token) == "You already follow that author."
    assert len(await store.user_watches(MEMBER_ID)) == 1

    # A poll brings two papers that match.
    await store.upsert_papers(
        [
            make_paper(
                "2511.99101",
                "Speculative decoding with draft models for faster LLM inference",
                "We accelerate large language model inference 2.5x with speculative decoding.",
            ),
            make_paper(
                "2511.99102",
                "Post-training quantization of LLMs to 4-bit weights",
                "We quantize weights to 4 bits, cutting memory 4x.",
                authors=("Ada Quokka", "B. Author"),
            ),
        ]
    )
    await classify_pending(store, load_classifier())
    await running.service.tell_watchers()
    [dm] = fake_discord.direct_messages(MEMBER_ID)
    assert "arxiv.org/abs/2511.99102" in dm["content"] and "Ada Quokka" in dm["content"]
    assert dm["allowed_mentions"] == {"parse": []}
    assert fake_discord.direct_messages(CLOSED_ID) == []  # refused by Discord
    await running.service.tell_watchers()
    assert len(fake_discord.direct_messages(MEMBER_ID)) == 1  # once

    # The channel's digest mentions the one who asked, and the one whose DMs are closed,
    # saying why once.
    every_paper = dataclasses.replace(running.digests, max_papers=30)
    await deliver_due(store, every_paper, running.sender, later())
    posted = fake_discord.posted(CHANNEL_ID)
    lines = "\n".join(t for m in posted for t in text_displays(m))
    assert f"-# for <@{ADMIN_ID}>: you follow “speculative decoding”" in lines
    assert (
        f"-# for <@{CLOSED_ID}>: you follow “Ada Quokka”"
        " (your DMs are closed, so you are mentioned here)"
    ) in lines
    mentioned = [m for m in posted if m["allowed_mentions"].get("users")]
    assert {u for m in mentioned for u in m["allowed_mentions"]["users"]} == {
        int(ADMIN_ID),
        int(CLOSED_ID),
    }
    token = fake_discord.slash("watches", user_id=CLOSED_ID)
    assert f"(in <#{CHANNEL_ID}>'s digest)" in await said(fake_discord, token)


async def test_watches_are_listed_and_removed(running: ArxivBot, fake_discord: FakeDiscord) -> None:
    token = fake_discord.slash("watches", user_id=MEMBER_ID)
    assert (await said(fake_discord, token)).startswith("You follow nothing yet.")
    for phrase in ("speculative decoding", "kv cache"):
        await said(fake_discord, fake_discord.slash("watch", {"phrase": phrase}, user_id=MEMBER_ID))
    token = fake_discord.slash("watches", user_id=MEMBER_ID)
    listed = await said(fake_discord, token)
    assert "1. phrase “speculative decoding” (by DM)" in listed and "2. phrase “kv cache”" in listed
    token = fake_discord.slash("watches", {"remove": 1}, user_id=MEMBER_ID)
    assert await said(fake_discord, token) == (
        "Stopped following phrase “speculative decoding” (by DM)."
    )
    token = fake_discord.slash("watches", {"remove": 9}, user_id=MEMBER_ID)
    assert await said(fake_discord, token) == "There is no watch 9; `/watches` lists them."
    assert [w.text for w in await running.store.user_watches(MEMBER_ID)] == ["kv cache"]


async def test_one_undeliverable_dm_never_holds_up_the_others(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    """A deleted account (404 on the user) is dropped like closed DMs; the next person's
    message still goes, in the same round."""
    store = running.store
    gone = "930000000000000005"
    fake_discord.gone_users.add(gone)
    for user_id in (gone, MEMBER_ID):  # the gone one's message comes first
        await said(
            fake_discord, fake_discord.slash("watch", {"author": "Ada Quokka"}, user_id=user_id)
        )
    await store.upsert_papers(
        [make_paper("2511.99201", "A paper", "About pruning.", authors=("Ada Quokka",))]
    )
    await running.service.tell_watchers()
    assert len(fake_discord.direct_messages(MEMBER_ID)) == 1
    assert fake_discord.direct_messages(gone) == []
    assert await store.unsent_notices() == []  # nothing left to retry forever


async def test_a_paper_fetched_by_id_is_matched_once_a_poll_meets_it(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    store = running.store
    await said(
        fake_discord, fake_discord.slash("watch", {"author": "Ada Quokka"}, user_id=MEMBER_ID)
    )
    paper = make_paper("2511.99301", "Saved first", "About pruning.", authors=("Ada Quokka",))
    await store.upsert_papers([paper], from_poll=False)  # someone saved it by id
    await running.service.tell_watchers()
    assert fake_discord.direct_messages(MEMBER_ID) == []  # not a poll's paper: no news
    await store.upsert_papers([paper])  # a poll meets it
    await running.service.tell_watchers()
    [dm] = fake_discord.direct_messages(MEMBER_ID)
    assert "2511.99301" in dm["content"]


async def test_a_digest_names_at_most_five_watchers_under_a_paper(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    watchers = [f"93000000000001{n:04d}" for n in range(8)]
    for user_id in watchers:
        token = fake_discord.slash(
            "watch", {"phrase": "speculative decoding", "where": "here"}, user_id=user_id
        )
        await said(fake_discord, token)
    await running.store.upsert_papers(
        [
            make_paper(
                "2511.99401",
                "Speculative decoding with draft models for faster LLM inference",
                "We accelerate large language model inference 2.5x with speculative decoding.",
            )
        ]
    )
    await classify_pending(running.store, load_classifier())
    every_paper = dataclasses.replace(running.digests, max_papers=30)
    await deliver_due(running.store, every_paper, running.sender, later())
    texts = [t for m in fake_discord.posted(CHANNEL_ID) for t in text_displays(m)]
    [block] = [t for t in texts if "2511.99401" in t]
    assert block.count("-# for <@") == 5
    users = {
        u for m in fake_discord.posted(CHANNEL_ID) for u in m["allowed_mentions"].get("users", [])
    }
    assert users == {int(u) for u in watchers[:5]}
