"""The unmodified discord.py bot against a loopback Discord (REST + gateway websocket)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.classify import load_classifier
from bot.config import Settings
from bot.digests.delivery import deliver_due, deliver_subscription
from bot.digests.schedule import plan_digest
from bot.discord_bot.client import ArxivBot
from bot.models import OutgoingMessage
from bot.pipeline import classify_pending
from bot.store import Store
from tests.discord_bot.harness import (
    FULL_DIGEST,
    all_text,
    answer,
    buttons,
    components_of,
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
    CHANNEL_ID,
    GUILD_ID,
    MEMBER_ID,
    MEMBER_PERMISSIONS,
    OTHER_GUILD_CHANNEL_ID,
    SECOND_CHANNEL_ID,
    ChannelFault,
    FakeDiscord,
)
from tests.helpers import ROOT, fixture_papers, make_paper

pytestmark = pytest.mark.loopback

# -- registration -----------------------------------------------------------------------

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


async def test_commands_are_registered_with_their_options(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    names = {c["name"] for c in fake_discord.commands}
    assert names == {
        "search",
        "paper",
        "topics",
        "status",
        "help",
        "subscribe",
        "unsubscribe",
        "subscriptions",
        "digest",
        "save",
        "unsave",
        "readinglist",
        "top",
        "watch",
        "watches",
    }
    search = next(c for c in fake_discord.commands if c["name"] == "search")
    options = {o["name"]: o for o in search["options"]}
    assert not options["query"].get("required")  # filters alone list papers
    assert options["topic"]["autocomplete"] is True
    assert set(options) == {"query", "topic", "category", "author", "since", "public"}
    subscribe = next(c for c in fake_discord.commands if c["name"] == "subscribe")
    assert str(subscribe["default_member_permissions"]) == str(1 << 4)  # Manage Channels
    assert "list" in {o["name"] for o in subscribe["options"]}
    readinglist = next(c for c in fake_discord.commands if c["name"] == "readinglist")
    assert {o["name"] for o in readinglist["options"]} == {"month", "export", "channel"}
    digest = next(c for c in fake_discord.commands if c["name"] == "digest")
    assert {o["name"] for o in digest["options"]} == {"preview", "now"}
    # Commands went to the configured server only (instant), not globally.
    puts = [r.path for r in fake_discord.requests if r.method == "PUT"]
    assert puts == [f"/applications/900000000000000001/guilds/{GUILD_ID}/commands"]


# -- search -----------------------------------------------------------------------------


async def test_search_answers_privately_with_pages_only_the_searcher_can_turn(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    token = fake_discord.slash("search", {"query": "language models"})
    [first] = await answer(fake_discord, token)
    assert is_ephemeral(first)
    text = text_of(first)
    assert text.startswith("Results for `language models` · page 1")
    assert text.count("](<https://arxiv.org/abs/") == 5
    buttons = first["data"]["components"][0]["components"]
    assert [b["label"] for b in buttons] == ["Previous", "Next"]
    assert buttons[0]["disabled"] is True and buttons[1]["disabled"] is False
    saves = first["data"]["components"][1]["components"]  # one per paper shown
    assert [b["label"] for b in saves] == [f"Save {n}" for n in range(1, 6)]
    assert all(b["custom_id"].startswith("pager:save:") for b in saves)
    message = first["message"]  # the message Discord created for the reply
    # Someone else clicks Next: refused, privately.
    stranger = fake_discord.click(buttons[1]["custom_id"], message, user_id=MEMBER_ID)
    [refusal] = await answer(fake_discord, stranger)
    assert "someone else's results" in text_of(refusal) and is_ephemeral(refusal)
    # The searcher clicks Next: the message turns to page 2.
    owner = fake_discord.click(buttons[1]["custom_id"], message)
    [page_two] = await answer(fake_discord, owner)
    assert page_two["type"] == 7  # update the message
    assert "page 2" in text_of(page_two)
    assert "**6.**" in text_of(page_two)
    saves = page_two["data"]["components"][1]["components"]
    assert saves[0]["label"] == "Save 6"


async def test_an_expired_pager_disables_its_buttons_and_says_so(
    running: ArxivBot, fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.discord_bot.views.PAGER_SECONDS", 0.5)
    token = fake_discord.slash("search", {"query": "language models"})
    first, expired = await answer(fake_discord, token, count=2)
    assert first["type"] == 4  # the reply with live buttons
    assert [b["disabled"] for b in first["data"]["components"][0]["components"]] == [True, False]
    assert expired["kind"] == "edit"  # the same message, edited when the pager timed out
    data = expired["data"]
    assert data["content"].startswith("Results for `language models` · page 1")
    assert data["content"].endswith("run `/search` again to page further.")
    assert all(b["disabled"] for b in data["components"][0]["components"])


async def test_topic_option_autocompletes(running: ArxivBot, fake_discord: FakeDiscord) -> None:
    token = fake_discord.autocomplete("search", "topic", "quant", query="llm")
    [response] = await answer(fake_discord, token)
    assert response["type"] == 8  # autocomplete result
    assert [c["value"] for c in response["data"]["choices"]] == ["quantization"]
    token = fake_discord.autocomplete("search", "topic", "", query="llm")
    [response] = await answer(fake_discord, token)
    assert len(response["data"]["choices"]) == 10


async def test_the_digest_overflow_hint_is_a_search_that_works(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    token = fake_discord.slash("search", {"since": "2025-11-12"})
    [response] = await answer(fake_discord, token)
    text = text_of(response)
    assert text.startswith("Results for your filters · page 1")
    assert "2025-11-12" in text and "2025-10-03" not in text


async def test_public_search_and_id_lookup(running: ArxivBot, fake_discord: FakeDiscord) -> None:
    token = fake_discord.slash(
        "search", {"query": "https://arxiv.org/abs/2511.08360v2", "public": True}
    )
    [response] = await answer(fake_discord, token)
    assert not is_ephemeral(response)
    assert "Extreme Model Compression with Structured Sparsity at Low Precision" in text_of(
        response
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"query": "x" * 5000}, "keep it under 300"),
        ({"query": "pruning", "topic": "astrology"}, "Unknown topic"),
        ({"query": "pruning", "since": "yesterday"}, "is not a date"),
        ({"query": "🔥 * -"}, "at least one word"),
    ],
)
async def test_bad_search_input_gets_one_private_line(
    running: ArxivBot, fake_discord: FakeDiscord, options: dict, expected: str
) -> None:
    token = fake_discord.slash("search", options)
    [response] = await answer(fake_discord, token)
    assert expected in text_of(response)
    assert is_ephemeral(response) and "\n" not in text_of(response)


async def test_paper_shows_one_paper_in_full(running: ArxivBot, fake_discord: FakeDiscord) -> None:
    token = fake_discord.slash("paper", {"id": "2511.08360"})
    [response] = await answer(fake_discord, token)
    [embed] = response["data"]["embeds"]
    assert embed["url"] == "https://arxiv.org/abs/2511.08360"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "Dan Liu" in fields["Authors"] and "quantization" in fields["Topics"]
    assert "https://arxiv.org/pdf/2511.08360.pdf" in fields["Links"]
    assert "**TL;DR**" in embed["description"]
    assert fields["Why"].startswith("title: ")  # the model's strongest evidence
    missing = fake_discord.slash("paper", {"id": "2601.99999"})
    assert "has not seen" in text_of((await answer(fake_discord, missing))[0])


async def test_topics_status_and_help(running: ArxivBot, fake_discord: FakeDiscord) -> None:
    # /topics counts the last 7 days: the fixture days are older, so add two papers now.
    today = datetime.now(UTC).date()
    listed = next(
        today - timedelta(days=back)
        for back in range(7)
        if (today - timedelta(days=back)).weekday() < 5
    )
    await running.store.upsert_papers(
        [
            make_paper(
                "2611.00001",
                "4-bit post-training quantization of LLMs",
                "We quantize the weights of large language models to 4 bits after training, "
                "cutting memory by 3x with no loss in accuracy.",
                day=listed,
            ),
            make_paper(
                "2611.00002",
                "Binarized weights for tiny language models",
                "We binarize the weights of small language models, cutting memory 16x and "
                "inference energy 10x at similar perplexity.",
                day=listed,
            ),
        ]
    )
    await classify_pending(running.store, running.service.classifier)
    for name, expected in (
        ("topics", "`quantization`: 2"),
        ("status", "Papers stored:** 353"),
        ("status", "**Today:** "),  # what arXiv did for today's listing
        ("help", "/subscribe"),
    ):
        token = fake_discord.slash(name)
        [response] = await answer(fake_discord, token)
        assert expected in text_of(response), name


# -- subscriptions ------------------------------------------------------------------------


async def test_subscribe_needs_manage_channels_and_writes_nothing_otherwise(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    token = fake_discord.slash("subscribe", {}, user_id=MEMBER_ID, permissions=MEMBER_PERMISSIONS)
    [response] = await answer(fake_discord, token)
    assert "Manage Channels" in text_of(response) and is_ephemeral(response)
    assert await running.store.guild_subscriptions(GUILD_ID) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"topics": "quantization, astrology"}, "Unknown topic"),
        ({"time": "8am"}, "not a time of day"),
        ({"min_score": 3.0}, "between 0 and 1"),
    ],
)
async def test_bad_subscription_input_is_refused(
    running: ArxivBot, fake_discord: FakeDiscord, options: dict, expected: str
) -> None:
    token = fake_discord.slash("subscribe", options)
    [response] = await answer(fake_discord, token)
    assert expected in text_of(response) and is_ephemeral(response)
    assert await running.store.guild_subscriptions(GUILD_ID) == []


async def test_subscribe_update_list_unsubscribe(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    token = fake_discord.slash("subscribe", {"topics": "quantization,pruning", "time": "7:30"})
    assert "Subscribed <#" in text_of((await answer(fake_discord, token))[0])
    token = fake_discord.slash("subscribe", {"time": "09:15", "min_score": 0.8})  # update
    await answer(fake_discord, token)
    [subscription] = await running.store.guild_subscriptions(GUILD_ID)
    assert subscription.digest_time == "09:15" and subscription.min_score == 0.8
    assert subscription.topics == ()
    listed = fake_discord.slash("subscriptions")
    assert "daily at 09:15 UTC" in text_of((await answer(fake_discord, listed))[0])
    gone = fake_discord.slash("unsubscribe")
    assert "no more digests" in text_of((await answer(fake_discord, gone))[0])
    assert await running.store.guild_subscriptions(GUILD_ID) == []


# -- digests ------------------------------------------------------------------------------


async def test_daily_digest_posts_each_paper_as_its_own_block_with_its_buttons(
    running: ArxivBot, bot_settings: Settings, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    day = fixture_papers("2025-11-12")[0].announced
    relevant = len(
        await running.store.relevant_papers(day, day, running.digests.relevance_threshold)
    )
    shown = 12
    assert relevant > shown  # more than one digest shows
    settings = bot_settings.model_copy(update={"digest_max_papers": shown})
    posted = await deliver_due(running.store, settings.digests, running.sender, later())
    messages = fake_discord.posted(CHANNEL_ID)
    assert posted == len(messages) == 3  # 12 papers: 5 + 5 + 2, seven components each
    for message in messages:
        # Layout messages: no content or embeds, Discord's limits kept (the loopback
        # Discord refuses anything else with a 400, as Discord does).
        assert message["flags"] & (1 << 15) and not message["content"] and not message["embeds"]
        assert len(components_of(message)) <= 40
        assert message["allowed_mentions"] == {"parse": []}
    header = text_displays(messages[0])[0]
    assert header.startswith("## arXiv efficiency digest · Wednesday, November 12, 2025")
    assert f"{relevant} new papers" in header
    assert text_displays(messages[1])[0] == "-# arXiv efficiency digest · part 2 of 3"
    papers = [p for m in messages for p in papers_of(m)]
    assert len(papers) == len(set(papers)) == shown
    assert all(p.startswith("2511.") for p in papers)  # latest day only
    # Each paper is a section: its numbered linked title, authors, topics and reason, with
    # its Summary button beside it, and 👍 👎 Save for the same paper below it.
    container = messages[0]["components"][0]
    assert container["type"] == 17  # a container
    section, row = container["components"][1], container["components"][2]
    assert section["type"] == 9 and row["type"] == 1
    [text] = section["components"]
    lines = text["content"].splitlines()
    assert lines[0].startswith("**1. [") and f"](https://arxiv.org/abs/{papers[0]})**" in lines[0]
    assert lines[-1].startswith("-# Why: ")  # every pick explains itself
    assert section["accessory"]["label"] == "Summary"
    assert section["accessory"]["custom_id"] == f"paper:summary:{papers[0]}"
    assert [b["custom_id"] for b in row["components"]] == [
        f"paper:vote:up:{papers[0]}",
        f"paper:vote:down:{papers[0]}",
        f"paper:save:{papers[0]}",
    ]
    assert [b["emoji"]["name"] for b in row["components"]] == ["👍", "👎", "🔖"]
    # The overflow line comes after the last paper, in the last message.
    assert f"…and {relevant - shown} more relevant paper" in text_displays(messages[-1])[-1]
    # Nothing is posted twice.
    assert await deliver_due(running.store, settings.digests, running.sender, later()) == 0
    assert len(fake_discord.posted(CHANNEL_ID)) == 3


async def test_summary_button_answers_only_the_clicker_even_after_a_restart(
    bot_settings: Settings, papers_store: Store, fake_discord: FakeDiscord
) -> None:
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    await subscribe_here(bot)
    await deliver_due(bot.store, bot.digests, bot.sender, later())
    message = fake_discord.posted(CHANNEL_ID)[0]
    await stop_bot(bot, task)
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)  # a new process, say
    try:
        button = buttons(message, "paper:summary:")[0]
        token = fake_discord.click(button["custom_id"], message, user_id=MEMBER_ID)
        [response] = await answer(fake_discord, token)
        assert is_ephemeral(response)
        text = text_of(response)
        assert "**TL;DR**" in text and text.count("\n• ") == 3
        assert "picked from the abstract" in text  # no LLM configured: marked fallback
    finally:
        await stop_bot(bot, task)


async def test_restart_between_two_messages_resumes_without_duplicates(
    bot_settings: Settings, papers_store: Store, fake_discord: FakeDiscord
) -> None:
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    await subscribe_here(bot)
    # The process dies (its task is cancelled) right after Discord accepted message 1:
    # message 2 is recorded but unsent, and the bot is stopped.
    original = bot.sender.send
    calls = 0

    async def dies_after_first(channel_id: str, message: OutgoingMessage, nonce: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise asyncio.CancelledError
        return await original(channel_id, message, nonce)

    bot.sender.send = dies_after_first  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await deliver_due(bot.store, bot.digests, bot.sender, later())
    await stop_bot(bot, task)
    assert len(fake_discord.posted(CHANNEL_ID)) == 1
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    try:
        await asyncio.to_thread(fake_discord.wait_for_messages, CHANNEL_ID, 3)
        await asyncio.sleep(0.3)
        messages = fake_discord.posted(CHANNEL_ID)
        assert len(messages) == 3  # resumed at message 2, no repeat of message 1
        assert text_displays(messages[1])[0] == "-# arXiv efficiency digest · part 2 of 3"
        papers = [p for m in messages for p in papers_of(m)]
        assert len(papers) == len(set(papers)) == 15
    finally:
        await stop_bot(bot, task)


def shifted_model(tmp_path: Path, intercept: float) -> Path:
    """The shipped model with its intercept moved: everything relevant, or nothing."""
    model = json.loads((ROOT / "bot" / "data" / "relevance-model.json").read_text())
    model["intercept"] = intercept
    path = tmp_path / f"model{intercept:+}.json"
    path.write_text(json.dumps(model))
    return path


async def test_a_model_upgrade_never_redelivers_or_withdraws_a_paper(
    running: ArxivBot, bot_settings: Settings, fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    store, settings = running.store, bot_settings
    await subscribe_here(running)
    [subscription] = await store.guild_subscriptions(GUILD_ID)
    # A digest is recorded (its papers chosen), and before it is posted the model changes
    # so that no paper is relevant any more: the recorded digest is still posted whole.
    assert await plan_digest(store, settings.digests, subscription, later(), scheduled=True)
    await classify_pending(store, load_classifier(model_path=shifted_model(tmp_path, -60.0)))
    assert await store.count_papers(settings.relevance_threshold) == 0
    await deliver_due(store, settings.digests, running.sender, later() + timedelta(days=1))
    first = [p for m in fake_discord.posted(CHANNEL_ID) for p in papers_of(m)]
    assert len(first) == 15

    # Now a model that finds every paper relevant: the next digest holds new papers only.
    await classify_pending(store, load_classifier(model_path=shifted_model(tmp_path, 60.0)))
    await deliver_due(store, settings.digests, running.sender, later() + timedelta(days=2))
    urls = [p for m in fake_discord.posted(CHANNEL_ID) for p in papers_of(m)]
    second = urls[len(first) :]
    assert second and not set(second) & set(first)
    assert len(urls) == len(set(urls))


async def test_untrusted_paper_text_cannot_ping_or_break_layout(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    hostile = make_paper(
        "2511.99999",
        "@everyone <@&123> ||spoiler|| **bold** [click](https://evil.example) quantization",
        "We quantize LLM weights to 4 bits. @here <@456> ||x||",
        authors=("@everyone", "Mallory [x](https://evil.example)"),
    )
    await running.store.upsert_papers([hostile])
    await classify_pending(running.store, running.service.classifier)
    await subscribe_here(running)
    await deliver_due(running.store, running.digests, running.sender, later())
    message = fake_discord.posted(CHANNEL_ID)[0]
    block = next(
        t for m in fake_discord.posted(CHANNEL_ID) for t in text_displays(m) if "2511.99999" in t
    )
    title_line, rest = block.split("\n", 1)
    # The paper's own link is the only one: the title's text cannot make another.
    assert title_line.endswith("](https://arxiv.org/abs/2511.99999)**")
    for text in (title_line.rsplit("](", 1)[0], rest):
        assert "@everyone" not in text and "<@&" not in text
        assert "||" not in text.replace("\\|", "")
        assert not re.search(r"(?<!\\)\]\(", text)  # no masked link survives
    assert message["allowed_mentions"] == {"parse": []}


async def test_403_pauses_404_ends_and_other_channels_still_get_digests(
    running: ArxivBot, bot_settings: Settings, fake_discord: FakeDiscord
) -> None:
    from bot.subscriptions import subscribe

    store, settings = running.store, bot_settings
    await subscribe(store, settings.digests, GUILD_ID, CHANNEL_ID)
    await subscribe(store, settings.digests, GUILD_ID, SECOND_CHANNEL_ID)
    await subscribe(store, settings.digests, GUILD_ID, "920000000000000077")  # deleted channel
    fake_discord.channel_faults[CHANNEL_ID] = ChannelFault(403)
    await deliver_due(store, settings.digests, running.sender, later())
    assert len(fake_discord.posted(SECOND_CHANNEL_ID)) == FULL_DIGEST
    statuses = {s.channel_id: s for s in await store.guild_subscriptions(GUILD_ID)}
    assert statuses[CHANNEL_ID].status.value == "paused"
    assert "missing permission" in (statuses[CHANNEL_ID].status_reason or "")
    assert "920000000000000077" not in statuses  # deactivated
    listed = fake_discord.slash("subscriptions")
    assert "paused: missing permission" in text_of((await answer(fake_discord, listed))[0])
    # The admin fixes permissions and subscribes again: the paused digest is posted.
    del fake_discord.channel_faults[CHANNEL_ID]
    token = fake_discord.slash("subscribe")
    await answer(fake_discord, token)
    await deliver_due(store, settings.digests, running.sender, later() + timedelta(days=1))
    assert len(fake_discord.posted(CHANNEL_ID)) == FULL_DIGEST


async def test_429_is_waited_out_by_discord_py(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    fake_discord.channel_faults[CHANNEL_ID] = ChannelFault(429, times=1, retry_after=0.3)
    await deliver_due(running.store, running.digests, running.sender, later())
    assert len(fake_discord.posted(CHANNEL_ID)) == FULL_DIGEST


async def test_429s_outlasting_discord_py_are_retried_later_not_a_refusal(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    """Found by the fault soak: a global limit answering `retry_after: 0` six times made
    discord.py give up, and the channel was paused as if Discord had refused the message."""
    await subscribe_here(running)
    fake_discord.channel_faults[CHANNEL_ID] = ChannelFault(429, times=6, retry_after=0)
    due = later()
    await deliver_due(running.store, running.digests, running.sender, due)
    assert fake_discord.posted(CHANNEL_ID) == []
    [subscription] = await running.store.guild_subscriptions(GUILD_ID)
    assert subscription.status.value == "active"
    await deliver_due(running.store, running.digests, running.sender, due + timedelta(minutes=2))
    assert len(fake_discord.posted(CHANNEL_ID)) == FULL_DIGEST


async def test_digest_preview_and_now(running: ArxivBot, fake_discord: FakeDiscord) -> None:
    await subscribe_here(running, topics="inference-serving")
    token = fake_discord.slash("digest", subcommand="preview")
    [preview] = await answer(fake_discord, token)
    assert is_ephemeral(preview) and preview["data"]["flags"] & (1 << 15)
    assert papers_of(preview["data"])  # the first message's papers, with their buttons
    assert fake_discord.posted(CHANNEL_ID) == []
    token = fake_discord.slash("digest", subcommand="now")
    responses = await answer(fake_discord, token, count=2)
    assert "Posted 2 messages" in text_of(responses[-1])  # six papers: five, then one
    assert len(fake_discord.posted(CHANNEL_ID)) == 2
    # It counted as delivered: the scheduled digest has nothing left to post.
    await deliver_due(running.store, running.digests, running.sender, later())
    assert len(fake_discord.posted(CHANNEL_ID)) == 2


async def test_channel_in_another_server_is_refused(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    fake_discord.channels[OTHER_GUILD_CHANNEL_ID]  # exists, but elsewhere
    token = fake_discord.slash("subscribe", {"channel": OTHER_GUILD_CHANNEL_ID})
    [response] = await answer(fake_discord, token)
    assert is_ephemeral(response)
    assert text_of(response) == "That channel is not in this server, or the bot cannot see it."
    assert await running.store.guild_subscriptions(GUILD_ID) == []


async def test_heartbeats_continue_during_a_slow_arxiv_poll(
    bot_settings: Settings, papers_store: Store, fake_discord: FakeDiscord, fake_arxiv
) -> None:
    from tests.fake_arxiv import Fault

    fake_discord.heartbeat_interval_ms = 200
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    try:
        fake_arxiv.add_day("2025-11-12")
        fake_arxiv.fail_next(*[Fault(delay=1.0)] * 2)
        before = len(fake_discord.heartbeats)
        began = time.monotonic()
        await bot.service.poll_once()
        took = time.monotonic() - began
        beats = len(fake_discord.heartbeats) - before
        assert took >= 2.0
        assert beats >= int(took / 0.2) - 3  # heartbeats kept flowing while arXiv was slow
    finally:
        await stop_bot(bot, task)


async def test_days_of_downtime_are_caught_up_in_one_digest(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    from bot.subscriptions import subscribe

    store = running.store
    # Subscribed when only October was stored; the bot then sleeps through November.
    first_day = fixture_papers("2025-10-03")[0].announced
    await subscribe(store, running.digests, GUILD_ID, CHANNEL_ID)
    await store._conn.execute("UPDATE subscriptions SET starts_on = ?", (first_day.isoformat(),))
    relevant = await store.count_papers(running.digests.relevance_threshold)
    await deliver_due(store, running.digests, running.sender, later() + timedelta(days=40))
    messages = fake_discord.posted(CHANNEL_ID)
    assert "October 3 – November 12, 2025" in all_text(messages[0])
    assert f"{relevant} new papers" in all_text(messages[0])  # both days, in one digest
    assert f"…and {relevant - 15} more" in all_text(messages[-1])
    # Everything is now delivered: the next day posts nothing.
    assert (
        await deliver_due(store, running.digests, running.sender, later() + timedelta(days=41)) == 0
    )


async def test_min_score_and_topics_filter_what_a_channel_gets(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running, topics="quantization", min_score=0.9)
    await deliver_due(running.store, running.digests, running.sender, later())
    shown = [p for m in fake_discord.posted(CHANNEL_ID) for p in papers_of(m)]
    assert shown
    for arxiv_id in shown:
        paper = await running.store.get_paper(arxiv_id)
        assert paper is not None and "quantization" in paper.topics and paper.relevance >= 0.9


async def test_empty_days_post_nothing_unless_asked(
    running: ArxivBot, bot_settings: Settings, fake_discord: FakeDiscord
) -> None:
    from bot.subscriptions import subscribe

    store, settings = running.store, bot_settings
    await subscribe(store, settings.digests, GUILD_ID, CHANNEL_ID)
    await subscribe(store, settings.digests, GUILD_ID, SECOND_CHANNEL_ID, post_empty=True)
    await deliver_due(store, settings.digests, running.sender, later())  # the first digests
    await store.start_poll()  # a poll that found nothing new
    polls = await store.recent_polls(1)
    from bot.models import PollOutcome, UpsertCounts

    await store.finish_poll(polls[0].id, PollOutcome.NOTHING, 1, UpsertCounts())
    before = {c: len(fake_discord.posted(c)) for c in (CHANNEL_ID, SECOND_CHANNEL_ID)}
    await deliver_due(store, settings.digests, running.sender, later() + timedelta(days=1))
    assert len(fake_discord.posted(CHANNEL_ID)) == before[CHANNEL_ID]
    [note] = fake_discord.posted(SECOND_CHANNEL_ID)[before[SECOND_CHANNEL_ID] :]
    assert "No new papers today" in note["content"]


async def test_when_every_poll_failed_the_channel_is_told(
    running: ArxivBot, bot_settings: Settings, fake_discord: FakeDiscord
) -> None:
    from bot.models import PollOutcome, UpsertCounts

    store, settings = running.store, bot_settings
    await subscribe_here(running)
    await deliver_due(store, settings.digests, running.sender, later())
    before = len(fake_discord.posted(CHANNEL_ID))
    for _ in range(3):
        poll_id = await store.start_poll()
        await store.finish_poll(
            poll_id, PollOutcome.FAILED, 5, UpsertCounts(), "HTTP 503 from arXiv (gave up)"
        )
    await deliver_due(store, settings.digests, running.sender, later() + timedelta(days=1))
    [note] = fake_discord.posted(CHANNEL_ID)[before:]
    assert "arXiv could not be reached" in note["content"]
    assert "next digest will catch up" in note["content"]


async def test_global_commands_are_synced_only_when_they_change(
    bot_settings: Settings, papers_store: Store, fake_discord: FakeDiscord
) -> None:
    everywhere = bot_settings.model_copy(update={"discord_guild_id": None})
    for _ in range(2):
        bot, task = await start_bot(everywhere, papers_store, fake_discord)
        await stop_bot(bot, task)
    puts = [r.path for r in fake_discord.requests if r.method == "PUT"]
    assert puts == ["/applications/900000000000000001/commands"]  # once, not per start


# -- delivery under faults ----------------------------------------------------------------


async def test_digest_now_racing_the_schedule_posts_everything_once(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    fake_discord.post_latency = 0.3  # each post takes a while: the two runs overlap
    scheduled = asyncio.create_task(
        deliver_due(running.store, running.digests, running.sender, later())
    )
    await asyncio.sleep(0.1)
    token = fake_discord.slash("digest", subcommand="now")
    answered = (await answer(fake_discord, token, count=2))[-1]
    await scheduled
    assert "being posted right now" in text_of(answered) and is_ephemeral(answered)
    posted = fake_discord.posted(CHANNEL_ID)
    papers = [p for m in posted for p in papers_of(m)]
    assert len(posted) == FULL_DIGEST and len(papers) == len(set(papers)) == 15


async def test_two_deliveries_of_one_subscription_never_overlap(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    [subscription] = await running.store.guild_subscriptions(GUILD_ID)
    fake_discord.post_latency = 0.2
    results = await asyncio.gather(
        deliver_subscription(running.store, running.digests, running.sender, subscription, later()),
        deliver_subscription(running.store, running.digests, running.sender, subscription, later()),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["DeliveryBusy", "int"]
    assert len(fake_discord.posted(CHANNEL_ID)) == FULL_DIGEST  # 15 papers, once


async def test_discord_failing_a_while_delays_the_digest_by_minutes_not_a_day(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    fake_discord.channel_faults[CHANNEL_ID] = ChannelFault(503, times=3)

    def posts() -> int:
        return sum(1 for r in fake_discord.requests if r.method == "POST" and CHANNEL_ID in r.path)

    due = later()
    await deliver_due(running.store, running.digests, running.sender, due)
    assert posts() == 1  # failed once
    # Backing off: a round ten seconds later does not try again.
    await deliver_due(running.store, running.digests, running.sender, due + timedelta(seconds=10))
    assert posts() == 1
    minute = 0
    while len(fake_discord.posted(CHANNEL_ID)) < FULL_DIGEST and minute < 15:
        minute += 1
        moment = due + timedelta(minutes=minute)
        await deliver_due(running.store, running.digests, running.sender, moment)
    messages = fake_discord.posted(CHANNEL_ID)
    assert len(messages) == FULL_DIGEST
    assert all_text(messages[0]).startswith("\n## arXiv efficiency digest")
    assert minute <= 8  # three failures and backoff: minutes, not a day
    [subscription] = await running.store.guild_subscriptions(GUILD_ID)
    assert subscription.status.value == "active"
    # Nothing more to post, and nothing posted twice.
    await deliver_due(running.store, running.digests, running.sender, due + timedelta(hours=1))
    assert len(fake_discord.posted(CHANNEL_ID)) == FULL_DIGEST


async def test_a_channel_failing_for_a_day_is_paused_with_the_reason(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    fake_discord.channel_faults[CHANNEL_ID] = ChannelFault(503)
    first = later()
    await deliver_due(running.store, running.digests, running.sender, first)
    [subscription] = await running.store.guild_subscriptions(GUILD_ID)
    assert subscription.status.value == "active"  # a few hours of failure: still retrying
    await deliver_due(running.store, running.digests, running.sender, first + timedelta(hours=25))
    [subscription] = await running.store.guild_subscriptions(GUILD_ID)
    assert subscription.status.value == "paused"
    assert subscription.status_reason == "Discord kept failing for 24 hours (Discord answered 503)"
    listed = fake_discord.slash("subscriptions")
    assert "Discord kept failing for 24 hours" in text_of((await answer(fake_discord, listed))[0])
    assert fake_discord.posted(CHANNEL_ID) == []


async def test_a_crash_between_discords_answer_and_the_record_posts_nothing_twice(
    bot_settings: Settings, papers_store: Store, fake_discord: FakeDiscord
) -> None:
    """Discord accepted message 1, then the process died before the database recorded
    it. After the restart message 1 is sent again with the same nonce: Discord (enforcing
    nonces) returns the message it already has, and the digest goes on with message 2."""
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    await subscribe_here(bot)
    original = papers_store.mark_message_sent

    async def dead_process_releases_nothing(subscription_id: int, holder: str) -> None:
        return None  # a killed process runs no cleanup: its lease stays in the database

    async def dies_before_recording(digest_id: int, position: int, message_id: str) -> None:
        raise asyncio.CancelledError  # the process is killed right here

    papers_store.mark_message_sent = dies_before_recording  # type: ignore[method-assign]
    papers_store.release_delivery = dead_process_releases_nothing  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await deliver_due(bot.store, bot.digests, bot.sender, later())
    papers_store.mark_message_sent = original  # type: ignore[method-assign]
    del papers_store.release_delivery  # back to the class's method
    await stop_bot(bot, task)
    assert len(fake_discord.posted(CHANNEL_ID)) == 1  # Discord has message 1; we never knew
    # The dead process's lease is still held: the restarted service voids it and resumes.
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    try:
        await asyncio.to_thread(fake_discord.wait_for_messages, CHANNEL_ID, FULL_DIGEST)
        await asyncio.sleep(0.3)
        messages = fake_discord.posted(CHANNEL_ID)
        assert len(messages) == FULL_DIGEST
        assert text_displays(messages[1])[0] == "-# arXiv efficiency digest · part 2 of 3"
        posts = [r for r in fake_discord.requests if r.method == "POST" and "/messages" in r.path]
        assert len(posts) == FULL_DIGEST + 1  # message 1 again, answered with the original
        assert posts[0].body["nonce"] == posts[1].body["nonce"]
        assert posts[0].body["enforce_nonce"] is True
    finally:
        await stop_bot(bot, task)


async def test_a_digest_is_not_posted_before_its_time_and_is_posted_at_it(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running, digest_time="07:30")
    [subscription] = await running.store.guild_subscriptions(GUILD_ID)
    due = subscription.next_due_at
    assert (due.hour, due.minute) == (7, 30)
    early = due - timedelta(seconds=1)
    assert await deliver_due(running.store, running.digests, running.sender, early) == 0
    assert fake_discord.posted(CHANNEL_ID) == []
    assert await deliver_due(running.store, running.digests, running.sender, due) == FULL_DIGEST
    assert len(fake_discord.posted(CHANNEL_ID)) == FULL_DIGEST


async def test_a_connection_reset_mid_post_is_retried_next_tick_without_duplicates(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    fake_discord.resets = 1  # the digest's first post loses its connection, unanswered
    due = later()
    assert await deliver_due(running.store, running.digests, running.sender, due) == 0
    assert fake_discord.posted(CHANNEL_ID) == []
    # After the backoff (30 s, give or take 20%), the next round posts the digest, once.
    await deliver_due(running.store, running.digests, running.sender, due + timedelta(minutes=1))
    messages = fake_discord.posted(CHANNEL_ID)
    papers = [p for m in messages for p in papers_of(m)]
    assert len(messages) == FULL_DIGEST and len(papers) == len(set(papers)) == 15


async def test_a_message_discord_refuses_pauses_the_channel_with_the_reason(
    running: ArxivBot, fake_discord: FakeDiscord
) -> None:
    await subscribe_here(running)
    fake_discord.channel_faults[CHANNEL_ID] = ChannelFault(400, times=1)
    await deliver_due(running.store, running.digests, running.sender, later())
    [subscription] = await running.store.guild_subscriptions(GUILD_ID)
    assert subscription.status.value == "paused"
    assert (subscription.status_reason or "").startswith("Discord refused a digest message (400")
    # /subscribe again resumes it, and its failure history starts afresh.
    token = fake_discord.slash("subscribe")
    await answer(fake_discord, token)
    await deliver_due(running.store, running.digests, running.sender, later())
    assert len(fake_discord.posted(CHANNEL_ID)) == FULL_DIGEST
