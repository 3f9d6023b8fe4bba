"""Summaries through the real `openai` client against a loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bot.classify import load_classifier
from bot.config import Settings
from bot.digests.export import digest_for_day
from bot.digests.terminal import render_terminal
from bot.extractive import display_summary, extractive_summary
from bot.models import SummarySource
from bot.pipeline import classify_pending, run_cycle
from bot.store import Store
from bot.summarize import (
    PROMPT_VERSION,
    Summarizer,
    parse_answer,
    summarize_pending,
)
from tests.conftest import LLM_SECRET
from tests.fake_arxiv import FakeArxiv
from tests.fake_openai import FakeOpenAI, Reply
from tests.helpers import fixture_papers, make_paper

pytestmark = pytest.mark.loopback

DAY = "2025-11-12"

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


@pytest.fixture
async def relevant_store(store: Store) -> Store:
    await store.upsert_papers(fixture_papers(DAY))
    await classify_pending(store, load_classifier())
    return store


@pytest.fixture
async def summarizer(llm_settings: Settings) -> AsyncIterator[Summarizer]:
    client = Summarizer(llm_settings.llm)
    yield client
    await client.close()


async def relevant_count(store: Store, settings: Settings) -> int:
    return await store.count_papers(settings.relevance_threshold)


async def test_every_relevant_paper_gets_a_stored_summary(
    relevant_store: Store, llm_settings: Settings, summarizer: Summarizer, fake_openai: FakeOpenAI
) -> None:
    relevant = await relevant_count(relevant_store, llm_settings)
    run = await summarize_pending(relevant_store, llm_settings.summaries, summarizer)
    assert run.summarized == relevant and run.failed == 0
    assert len(fake_openai.requests) == relevant
    assert all(a == f"Bearer {LLM_SECRET}" for a in fake_openai.authorizations)
    request = fake_openai.requests[0]
    assert request["model"] == "fake-mini"
    assert request["response_format"]["type"] == "json_schema"
    paper = await relevant_store.get_paper("2511.08360")
    assert paper is not None and paper.summary is not None
    assert paper.summary.source is SummarySource.MODEL
    assert paper.summary.model == "fake-mini" and paper.summary.prompt_version == PROMPT_VERSION
    assert len(paper.summary.bullets) == 3
    assert paper.summary.tldr.startswith("Extreme Model Compression")
    [(model, count, prompt_tokens, completion_tokens)] = await relevant_store.summary_spend()
    assert (model, count) == ("fake-mini", relevant)
    assert prompt_tokens > 0 and completion_tokens > 0
    # The digest shows the model's summary.
    digest = render_terminal(await digest_for_day(relevant_store, paper.announced, 0.5))
    assert "TL;DR: Extreme Model Compression" in digest


async def test_a_second_and_a_concurrent_poll_cost_nothing_more(
    relevant_store: Store, llm_settings: Settings, summarizer: Summarizer, fake_openai: FakeOpenAI
) -> None:
    relevant = await relevant_count(relevant_store, llm_settings)
    # Two workers on two connections to the same file, at the same time.
    other = await Store.open(llm_settings.database_path)
    try:
        first, second = await asyncio.gather(
            summarize_pending(relevant_store, llm_settings.summaries, summarizer),
            summarize_pending(other, llm_settings.summaries, summarizer),
        )
    finally:
        await other.close()
    assert first.summarized + second.summarized == relevant
    assert len(fake_openai.requests) == relevant  # nobody paid twice
    again = await summarize_pending(relevant_store, llm_settings.summaries, summarizer)
    assert again.summarized == 0
    assert len(fake_openai.requests) == relevant  # proof by request count


async def test_429_with_retry_after_is_honoured(
    relevant_store: Store, llm_settings: Settings, summarizer: Summarizer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply_for(
        "Extreme Model Compression", Reply(status=429, headers={"retry-after": "1"})
    )
    began = time.monotonic()
    run = await summarize_pending(relevant_store, llm_settings.summaries, summarizer)
    assert time.monotonic() - began >= 1.0
    assert run.failed == 0
    titles = fake_openai.titles_requested()
    assert sum("Extreme Model Compression" in t for t in titles) == 2
    paper = await relevant_store.get_paper("2511.08360")
    assert paper is not None and paper.summary is not None


async def test_500_until_retries_run_out_leaves_only_that_paper_for_later(
    relevant_store: Store, llm_settings: Settings, summarizer: Summarizer, fake_openai: FakeOpenAI
) -> None:
    relevant = await relevant_count(relevant_store, llm_settings)
    fake_openai.reply_for("Extreme Model Compression", *[Reply(status=500)] * 3)
    run = await summarize_pending(relevant_store, llm_settings.summaries, summarizer)
    assert run.failed == 1 and run.summarized == relevant - 1  # the others went through
    assert "HTTP 500" in run.errors[0]
    titles = fake_openai.titles_requested()
    assert sum("Extreme Model Compression" in t for t in titles) == 3  # 1 try + 2 retries
    paper = await relevant_store.get_paper("2511.08360")
    assert paper is not None and paper.summary is None
    # Shown meanwhile with the abstract-based fallback, marked as such.
    assert display_summary(paper).source is SummarySource.EXTRACTIVE
    # The next poll tries it again and succeeds; nobody else is asked twice.
    before = len(fake_openai.requests)
    again = await summarize_pending(relevant_store, llm_settings.summaries, summarizer)
    assert again.summarized == 1 and len(fake_openai.requests) == before + 1


async def test_a_malformed_answer_is_asked_once_more(
    relevant_store: Store, llm_settings: Settings, summarizer: Summarizer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply_for("Extreme Model Compression", Reply(content="Sure! Here is a summary:"))
    fake_openai.reply_for("Alignment-Aware Quantization", *[Reply(content='{"tldr": "x"}')] * 2)
    run = await summarize_pending(relevant_store, llm_settings.summaries, summarizer)
    fixed = await relevant_store.get_paper("2511.08360")
    assert fixed is not None and fixed.summary is not None  # second answer was valid
    broken = await relevant_store.get_paper("2511.07842")
    assert broken is not None and broken.summary is None  # two bad answers: left for later
    assert run.failed == 1 and "unusable" in run.errors[0]
    # What the bad answers cost is still counted.
    [(_, _, prompt_tokens, _)] = await relevant_store.summary_spend()
    assert prompt_tokens > 0


async def test_a_slow_answer_times_out_without_blocking_the_rest(
    relevant_store: Store, llm_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    impatient = llm_settings.model_copy(update={"openai_max_retries": 0})
    client = Summarizer(impatient.llm)
    fake_openai.reply_for("Extreme Model Compression", Reply(delay=3.0))
    try:
        run = await summarize_pending(relevant_store, impatient.summaries, client)
    finally:
        await client.close()
    assert run.failed == 1 and "in time" in run.errors[0]
    assert run.summarized == await relevant_count(relevant_store, impatient) - 1


async def test_a_refused_key_stops_the_run_at_once(
    relevant_store: Store, llm_settings: Settings, summarizer: Summarizer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply_next(*[Reply(status=401)] * 50)
    run = await summarize_pending(relevant_store, llm_settings.summaries, summarizer)
    assert run.stopped and "API key" in run.stopped
    assert len(fake_openai.requests) <= llm_settings.summary_concurrency


async def test_without_a_key_nothing_touches_the_network(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv, fake_openai: FakeOpenAI
) -> None:
    fake_arxiv.add_day(DAY)
    assert settings.openai_api_key is None
    await run_cycle(store, settings, load_classifier(), summarizer=None)
    assert fake_openai.requests == []
    digest = await digest_for_day(store, fixture_papers(DAY)[0].announced, 0.5)
    assert digest.papers
    text = render_terminal(digest)
    assert "TL;DR (from the abstract)" in text


def test_extractive_summary_takes_what_how_and_gain_from_the_abstract() -> None:
    paper = make_paper(
        "2511.00001",
        "Fast sparse attention",
        "Attention is slow on long inputs. We propose FlashSparse, a sparse attention kernel. "
        "It works by skipping blocks whose scores are negligible. "
        "Experiments cover three model sizes. FlashSparse is 3.1x faster at 64k tokens.",
    )
    summary = extractive_summary(paper)
    assert summary.source is SummarySource.EXTRACTIVE
    assert summary.bullets == (
        "We propose FlashSparse, a sparse attention kernel.",
        "It works by skipping blocks whose scores are negligible.",
        "FlashSparse is 3.1x faster at 64k tokens.",
    )
    long = make_paper("2511.00002", "Long", "word " * 400)
    assert all(len(b) <= 300 for b in extractive_summary(long).bullets)


@pytest.mark.parametrize(
    "content",
    [
        None,
        "",
        "not json",
        '{"tldr": "t", "bullets": ["a", "b"]}',
        '{"tldr": "t", "bullets": ["a", "b", "c", "d"]}',
        '{"tldr": "", "bullets": ["a", "b", "c"]}',
        '{"tldr": "t", "bullets": ["a", "b", "' + "c" * 400 + '"]}',
        '{"tldr": "t", "bullets": [1, 2, 3]}',
        "[]",
    ],
)
def test_answers_that_do_not_fit_are_refused(content: str | None) -> None:
    with pytest.raises(ValueError):
        parse_answer(content)


def test_answers_in_a_code_fence_with_bullet_marks_are_cleaned() -> None:
    output = parse_answer(
        '```json\n{"tldr": "One\\nline", "bullets": ["- a", "2. b", "• c"], "extra": 1}\n```'
    )
    assert output.tldr == "One line" and output.bullets == ["a", "b", "c"]


async def test_markdown_export_shows_summary_bullets(
    relevant_store: Store, llm_settings: Settings, summarizer: Summarizer, tmp_path
) -> None:
    from bot.digests.export import export_markdown

    await summarize_pending(relevant_store, llm_settings.summaries, summarizer)
    out = tmp_path / "papers.md"
    await export_markdown(relevant_store, out, llm_settings.relevance_threshold)
    text = out.read_text()
    entry = text.split("[Extreme Model Compression with Structured Sparsity at Low Precision]")[1]
    entry = entry.split("</details>")[0]
    assert entry.count("\n* ") == 3
    assert "* Gains 2x speed at equal accuracy, per the abstract." in entry


def test_fetch_then_stats_from_the_command_line(
    tmp_path, fake_arxiv: FakeArxiv, fake_openai: FakeOpenAI
) -> None:
    from tests.helpers import run_bot

    fake_arxiv.add_day(DAY)
    env = {
        "ARXIV_API_URL": fake_arxiv.url,
        "ARXIV_DELAY_SECONDS": "0",
        "ARXIV_LOOKBACK_DAYS": "3650",
        "OPENAI_API_KEY": LLM_SECRET,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_MODEL": "fake-mini",
        "LOG_LEVEL": "DEBUG",
    }
    fetched = run_bot(["fetch"], tmp_path, env)
    assert fetched.returncode == 0, fetched.stderr
    summarized = len(fake_openai.requests)
    assert summarized > 5
    stats = run_bot(["stats"], tmp_path, env)
    assert f"Summaries: {summarized}" in stats.stdout
    assert f"fake-mini: {summarized} summaries" in stats.stdout
    digest = run_bot(["digest"], tmp_path, env)
    assert "TL;DR: " in digest.stdout
    # A second fetch costs nothing more.
    assert run_bot(["fetch"], tmp_path, env).returncode == 0
    assert len(fake_openai.requests) == summarized
    for output in (fetched, stats, digest):
        assert LLM_SECRET not in output.stdout + output.stderr
