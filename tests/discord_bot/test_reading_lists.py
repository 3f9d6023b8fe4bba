"""Reading lists as Discord users meet them: Save buttons on every surface, /save, /unsave,
/readinglist and its export, a channel's shared list, and bad input."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.digests.delivery import deliver_due
from bot.discord_bot.client import ArxivBot
from bot.models import ListOwner
from bot.store import Store
from bot.subscriptions import subscribe
from tests.discord_bot.harness import (
    answer,
    buttons,
    is_ephemeral,
    later,
    papers_of,
    start_bot,
    stop_bot,
    subscribe_here,
    text_of,
)
from tests.fake_arxiv import FakeArxiv, Fault
from tests.fake_discord import (
    ADMIN_ID,
    CHANNEL_ID,
    MEMBER_ID,
    MEMBER_PERMISSIONS,
    OTHER_GUILD_CHANNEL_ID,
    OTHER_GUILD_ID,
    SECOND_CHANNEL_ID,
    FakeDiscord,
)

pytestmark = pytest.mark.loopback

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


def saved_ids(text: str) -> list[str]:
    return [part.split(">)")[0] for part in text.split("](<https://arxiv.org/abs/")[1:]]


async def test_save_from_a_digest_works_after_a_restart_and_lists_stay_private(
    bot_settings: Settings, papers_store: Store, fake_discord: FakeDiscord
) -> None:
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    await subscribe_here(bot)
    await deliver_due(bot.store, bot.digests, bot.sender, later())
    message = fake_discord.posted(CHANNEL_ID)[0]
    await stop_bot(bot, task)
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)  # a new process
    try:
        save_two = buttons(message, "paper:save:")[1]
        assert save_two["label"] == "Save"
        paper_two = papers_of(message)[1]
        assert save_two["custom_id"] == f"paper:save:{paper_two}"
        token = fake_discord.click(save_two["custom_id"], message, user_id=MEMBER_ID)
        [saved] = await answer(fake_discord, token)
        assert is_ephemeral(saved)
        assert text_of(saved).startswith("Saved **") and "to your reading list" in text_of(saved)
        token = fake_discord.click(save_two["custom_id"], message, user_id=MEMBER_ID)
        [again] = await answer(fake_discord, token)
        assert "is already in your reading list" in text_of(again)
        # The saver sees it; someone else's list is their own, and empty.
        token = fake_discord.slash("readinglist", user_id=MEMBER_ID)
        [shown] = await answer(fake_discord, token)
        assert is_ephemeral(shown)
        assert text_of(shown).startswith("**Your reading list** · 1 paper · page 1/1")
        assert saved_ids(text_of(shown)) == [paper_two]
        token = fake_discord.slash("readinglist", user_id=ADMIN_ID)
        [other] = await answer(fake_discord, token)
        assert text_of(other) == "Your reading list has no papers yet."
    finally:
        await stop_bot(bot, task)


async def test_save_from_search_and_paper_then_export_the_list(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    token = fake_discord.slash("search", {"query": "speculative decoding", "public": True})
    [results] = await answer(fake_discord, token)
    save_one = buttons(results["data"], "pager:save:")[0]
    first_hit = saved_ids(text_of(results))[0]
    assert save_one["custom_id"] == f"pager:save:1:{first_hit}"
    # Public results: another reader saves to their own list (the pager itself is the
    # searcher's only).
    token = fake_discord.click(save_one["custom_id"], results["message"], user_id=MEMBER_ID)
    [saved] = await answer(fake_discord, token)
    assert text_of(saved).startswith("Saved **")
    assert len(await running.store.list_entries(ListOwner.user(MEMBER_ID))) == 1
    token = fake_discord.click(save_one["custom_id"], results["message"])
    [saved] = await answer(fake_discord, token)
    assert text_of(saved).startswith("Saved **")

    other = next(p.arxiv_id for p in await running.store.papers_to_classify("", 5))
    token = fake_discord.slash("paper", {"id": other})
    [card] = await answer(fake_discord, token)
    [save] = buttons(card["data"], "paper:save:")
    token = fake_discord.click(save["custom_id"], card["message"])
    [saved] = await answer(fake_discord, token)
    assert text_of(saved).startswith("Saved **")

    token = fake_discord.slash("readinglist", {"export": True})
    [exported] = await answer(fake_discord, token)
    assert is_ephemeral(exported) and text_of(exported) == "Your reading list: 2 papers."
    [attached] = exported["_files"]
    assert attached["filename"] == "reading-list.md"
    text = attached["text"]
    assert text.startswith("# Papers\n\n## ")
    assert f"](https://arxiv.org/abs/{first_hit})\n<details>\n<summary>Short abstract" in text
    assert f"](https://arxiv.org/abs/{other})" in text


async def test_save_any_arxiv_id_fetches_it_and_unknown_ids_are_refused(
    running: ArxivBot, fake_discord: FakeDiscord, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_paper(
        "2109.14119",
        "Stochastic Training is Not Necessary for Generalization",
        "It is widely believed that SGD matters. We show full-batch training does as well.",
        "2021-09-29T17:00:00Z",
    )
    assert await running.store.get_paper("2109.14119") is None
    token = fake_discord.slash("save", {"id": "https://arxiv.org/abs/2109.14119v2"})
    deferred, saved = await answer(fake_discord, token, count=2)
    assert deferred["type"] == 5  # thinking while arXiv answers
    assert "Saved **Stochastic Training is Not Necessary" in text_of(saved)
    assert any(q.get("id_list") == ["2109.14119"] for q in fake_arxiv.requests)
    assert await running.store.get_paper("2109.14119") is not None

    token = fake_discord.slash("save", {"id": "2999.00001"})
    _, refused = await answer(fake_discord, token, count=2)
    assert text_of(refused) == "arXiv returned no paper for arXiv:2999.00001."
    token = fake_discord.slash("save", {"id": "**not** an id"})
    [refused] = await answer(fake_discord, token)
    assert text_of(refused) == "'**not** an id' is not an arXiv id; try e.g. 2511.08360."

    token = fake_discord.slash("unsave", {"id": "2109.14119"})
    [removed] = await answer(fake_discord, token)
    assert text_of(removed) == "Removed arXiv:2109.14119 from your reading list."
    token = fake_discord.slash("unsave", {"id": "2109.14119"})
    [refused] = await answer(fake_discord, token)
    assert text_of(refused) == "arXiv:2109.14119 is not in your reading list."


async def test_save_answers_when_arxiv_cannot_be_reached(
    running: ArxivBot, fake_discord: FakeDiscord, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.fail_next(*[Fault(status=503)] * 5)
    token = fake_discord.slash("save", {"id": "2109.14119"})
    _, refused = await answer(fake_discord, token, count=2)
    assert text_of(refused) == "arXiv could not be reached just now; try again later."
    token = fake_discord.slash("readinglist")
    [shown] = await answer(fake_discord, token)
    assert text_of(shown) == "Your reading list has no papers yet."


async def test_a_channel_keeps_a_shared_list_when_subscribed_with_list(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    token = fake_discord.slash("subscribe", {"list": True})
    [subscribed] = await answer(fake_discord, token)
    assert "keeps a shared reading list" in text_of(subscribed)
    await deliver_due(running.store, running.digests, running.sender, later())
    message = fake_discord.posted(CHANNEL_ID)[0]
    save_one = buttons(message, "paper:save:")[0]
    token = fake_discord.click(save_one["custom_id"], message, user_id=MEMBER_ID)
    [saved] = await answer(fake_discord, token)
    assert f"Added to <#{CHANNEL_ID}>'s list too." in text_of(saved)
    # Subscribing again without `list` keeps the channel's list.
    token = fake_discord.slash("subscribe", {"time": "09:30"})
    [resubscribed] = await answer(fake_discord, token)
    assert "keeps a shared reading list" in text_of(resubscribed)

    token = fake_discord.slash("readinglist", {"channel": CHANNEL_ID}, user_id=MEMBER_ID)
    [shown] = await answer(fake_discord, token)
    paper = save_one["custom_id"].split(":")[-1]
    assert text_of(shown).startswith(f"**<#{CHANNEL_ID}>'s reading list** · 1 paper")
    assert saved_ids(text_of(shown)) == [paper]
    token = fake_discord.slash("readinglist", {"channel": CHANNEL_ID, "export": True})
    [exported] = await answer(fake_discord, token)
    [attached] = exported["_files"]
    assert f"](https://arxiv.org/abs/{paper})" in attached["text"]

    # Only someone who may manage the channel takes a paper off its list.
    token = fake_discord.slash(
        "unsave",
        {"id": paper, "channel": CHANNEL_ID},
        user_id=MEMBER_ID,
        permissions=MEMBER_PERMISSIONS,
    )
    [refused] = await answer(fake_discord, token)
    assert text_of(refused) == (
        "You need the Manage Channels permission to change a channel's list."
    )
    token = fake_discord.slash("unsave", {"id": paper, "channel": CHANNEL_ID})
    [removed] = await answer(fake_discord, token)
    assert text_of(removed) == f"Removed arXiv:{paper} from <#{CHANNEL_ID}>'s reading list."
    assert len(await running.store.list_entries(ListOwner.user(MEMBER_ID))) == 1

    token = fake_discord.slash("readinglist", {"channel": SECOND_CHANNEL_ID})
    [refused] = await answer(fake_discord, token)
    assert text_of(refused) == (
        f"<#{SECOND_CHANNEL_ID}> keeps no shared reading list; `/subscribe list:true` there"
        " starts one."
    )
    token = fake_discord.slash("readinglist", {"channel": OTHER_GUILD_CHANNEL_ID})
    [refused] = await answer(fake_discord, token)
    assert is_ephemeral(refused)
    assert text_of(refused) == "That channel is not in this server, or the bot cannot see it."


async def test_a_month_filters_the_list_and_a_bad_month_gets_one_line(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    await deliver_due(running.store, running.digests, running.sender, later())
    saves = [(m, b) for m in fake_discord.posted(CHANNEL_ID) for b in buttons(m, "paper:save:")]
    for message, save in saves[:7]:
        await answer(fake_discord, fake_discord.click(save["custom_id"], message))
    token = fake_discord.slash("readinglist", {"month": "2025-11"})
    [shown] = await answer(fake_discord, token)
    text = text_of(shown)
    assert text.startswith("**Your reading list** · 7 papers in 2025-11 · page 1/2")
    assert "__2025-11__" in text and len(saved_ids(text)) == 5
    pager = shown["data"]["components"][0]["components"]
    token = fake_discord.click(pager[1]["custom_id"], shown["message"])
    [page_two] = await answer(fake_discord, token)
    assert "page 2/2" in text_of(page_two) and len(saved_ids(text_of(page_two))) == 2
    token = fake_discord.slash("readinglist", {"month": "2025-11", "export": True})
    [exported] = await answer(fake_discord, token)
    [attached] = exported["_files"]
    assert attached["text"].count("<summary>Short abstract</summary>") == 7
    token = fake_discord.slash("readinglist", {"month": "2020-01"})
    [empty] = await answer(fake_discord, token)
    assert text_of(empty) == "Your reading list has no papers for 2020-01 yet."
    token = fake_discord.slash("readinglist", {"month": "2025-13"})
    [refused] = await answer(fake_discord, token)
    assert is_ephemeral(refused)
    assert text_of(refused) == "'2025-13' is not a month; use YYYY-MM, e.g. 2025-11."


async def test_a_save_never_writes_another_servers_channel_list(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    """A channel's shared list belongs to its own server's subscription: a click that says
    it comes from another server saves to the clicker's list only."""
    await subscribe(
        running.store, running.digests, OTHER_GUILD_ID, OTHER_GUILD_CHANNEL_ID, shared_list=True
    )
    await subscribe_here(running)
    await deliver_due(running.store, running.digests, running.sender, later())
    posted = fake_discord.posted(CHANNEL_ID)[0]
    message = {**posted, "channel_id": OTHER_GUILD_CHANNEL_ID}
    save_one = buttons(message, "paper:save:")[0]
    token = fake_discord.click(
        save_one["custom_id"], message, user_id=MEMBER_ID, channel_id=OTHER_GUILD_CHANNEL_ID
    )
    [saved] = await answer(fake_discord, token)
    assert is_ephemeral(saved)
    assert text_of(saved).startswith("Saved **") and "list too" not in text_of(saved)
    assert await running.store.list_entries(ListOwner.channel(OTHER_GUILD_CHANNEL_ID)) == []
    assert len(await running.store.list_entries(ListOwner.user(MEMBER_ID))) == 1


async def test_digest_save_buttons_keep_working_after_a_search_pager_expires(
    running: ArxivBot, fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """discord.py drops the handler of a dynamic item everywhere when a view holding one
    times out: the pager's own Save buttons must not take the digest's with them."""
    monkeypatch.setattr("bot.discord_bot.views.PAGER_SECONDS", 0.5)
    await subscribe_here(running)
    await deliver_due(running.store, running.digests, running.sender, later())
    message = fake_discord.posted(CHANNEL_ID)[0]
    token = fake_discord.slash("search", {"query": "language models"})
    _, expired = await answer(fake_discord, token, count=2)
    assert expired["kind"] == "edit"  # the pager timed out
    save_one = buttons(message, "paper:save:")[0]
    token = fake_discord.click(save_one["custom_id"], message, user_id=MEMBER_ID)
    [saved] = await answer(fake_discord, token)
    assert text_of(saved).startswith("Saved **")


async def test_a_paper_saved_by_id_never_shows_in_a_channels_digest(
    running: ArxivBot, fake_discord: FakeDiscord, fake_arxiv: FakeArxiv
) -> None:
    """A private save is private: a paper no poll brought, even a relevant one of the day
    the channel's digest covers, stays out of digests until a poll meets it."""
    fake_arxiv.add_paper(
        "2511.99001",
        "Post-training quantization of large language models to 4-bit weights for faster inference",
        "We quantize the weights of large language models to 4 bits after training, cutting"
        " memory by 4x and speeding up inference 2.5x with little loss in accuracy.",
        "2025-11-11T15:00:00Z",
        category="cs.CV",
    )
    await subscribe_here(running)
    token = fake_discord.slash("save", {"id": "2511.99001"})
    await answer(fake_discord, token, count=2)
    saved = await running.store.get_paper("2511.99001")
    assert saved is not None and saved.announced.isoformat() == "2025-11-12"
    assert (saved.relevance or 0) >= running.digests.relevance_threshold  # it would qualify
    await deliver_due(running.store, running.digests, running.sender, later())
    posted = " ".join(str(m) for m in fake_discord.posted(CHANNEL_ID))
    assert "2511.99001" not in posted and "arxiv.org/abs/2511." in posted
