"""The LLM judge on close calls, against a loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.classify import load_classifier
from bot.config import Settings
from bot.judge import RelevanceJudge, judge_pending
from bot.pipeline import classify_pending, run_cycle
from bot.store import Store
from tests.conftest import LLM_SECRET
from tests.fake_arxiv import FakeArxiv
from tests.fake_openai import FakeOpenAI, Reply
from tests.helpers import FIXTURES, fixture_papers, run_bot

pytestmark = pytest.mark.loopback

DAY = "2025-11-12"

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


@pytest.fixture
def judge_settings(llm_settings: Settings) -> Settings:
    return llm_settings.model_copy(
        update={
            "openai_model": "fake-judge",
            "openai_timeout_seconds": 2.0,
            "openai_max_retries": 1,
            "relevance_judge": "llm",
            "judge_batch_size": 8,
        }
    )


def one_at_a_time(settings: Settings) -> Settings:
    """One paper per poll and per request, so a test knows which paper each answer is for."""
    return settings.model_copy(update={"judge_max_per_poll": 1, "judge_batch_size": 1})


@pytest.fixture
async def judge(judge_settings: Settings) -> AsyncIterator[RelevanceJudge]:
    client = RelevanceJudge(judge_settings.llm, judge_settings.judge)
    yield client
    await client.close()


@pytest.fixture
async def scored(store: Store) -> Store:
    await store.upsert_papers(fixture_papers(DAY))
    await classify_pending(store, load_classifier())
    return store


async def papers_by_id(store: Store) -> dict:
    return {p.arxiv_id: await store.get_paper(p.arxiv_id) for p in fixture_papers(DAY)}


def flip_offline_decision(before: dict):
    """A judge that disagrees with the offline model on every paper it sees."""
    return lambda arxiv_id, title: (
        before[arxiv_id].score < 0.5,
        ["pruning"],
        f"flipped {arxiv_id}",
    )


async def test_verdicts_decide_inside_the_band_and_only_there(
    store: Store,
    judge_settings: Settings,
    judge: RelevanceJudge,
    fake_openai: FakeOpenAI,
    fake_arxiv: FakeArxiv,
) -> None:
    fake_arxiv.add_day(DAY)
    await run_cycle(store, judge_settings, load_classifier(), summarizer=None)  # no judge yet
    before = await papers_by_id(store)
    low, high = judge_settings.judge_band_low, judge_settings.judge_band_high
    band = {i for i, p in before.items() if low <= p.score <= high}
    assert 5 <= len(band) < len(before) // 2, "the fixture day should have some close calls"
    fake_openai.verdict_for = flip_offline_decision(before)

    await run_cycle(store, judge_settings, load_classifier(), summarizer=None, judge=judge)

    asked = fake_openai.verdict_requests()
    assert {i for request in asked for i in request} == band
    assert all(1 <= len(request) <= judge_settings.judge_batch_size for request in asked)
    after = await papers_by_id(store)
    for arxiv_id, paper in after.items():
        was = before[arxiv_id]
        if arxiv_id in band:
            assert (paper.relevance >= 0.5) != (was.relevance >= 0.5), arxiv_id
            assert paper.decided_by == "judge"
            assert paper.reason == f"judge: flipped {arxiv_id}"
            if paper.relevance >= 0.5:
                assert paper.topics == ("pruning",)
        else:
            assert paper.relevance == was.relevance and paper.decided_by == "model"
            assert paper.reason == was.reason


async def test_nothing_is_judged_twice_not_even_after_a_rescore(
    scored: Store, judge_settings: Settings, judge: RelevanceJudge, fake_openai: FakeOpenAI
) -> None:
    first = await judge_pending(scored, judge_settings.judge, judge)
    assert first.judged > 0 and first.requests == len(fake_openai.requests)
    decided = {i: p.relevance for i, p in (await papers_by_id(scored)).items()}
    again = await judge_pending(scored, judge_settings.judge, judge)
    assert again.requests == 0 and again.judged == 0

    # A model upgrade re-scores every paper; the stored verdicts decide again, unpaid.
    await scored.save_classifications(
        [(p.arxiv_id, load_classifier().classify_paper(p)) for p in fixture_papers(DAY)],
        "an-upgraded-model",
        judge.scope,
    )
    assert {i: p.relevance for i, p in (await papers_by_id(scored)).items()} == decided
    assert (await judge_pending(scored, judge_settings.judge, judge)).requests == 0
    assert len(fake_openai.requests) == first.requests


async def test_the_per_poll_cap_holds_and_the_rest_waits(
    scored: Store, judge_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    capped = judge_settings.model_copy(update={"judge_max_per_poll": 5, "judge_batch_size": 2})
    client = RelevanceJudge(capped.llm, capped.judge)
    try:
        run = await judge_pending(scored, capped.judge, client)
        assert run.judged == 5 and run.requests == 3
        nxt = await judge_pending(scored, capped.judge, client)
        assert nxt.judged == 5
    finally:
        await client.close()
    judged = [i for r in fake_openai.verdict_requests() for i in r]
    assert len(judged) == len(set(judged)) == 10


async def test_a_malformed_answer_is_asked_again_then_the_offline_decision_stands(
    scored: Store, judge_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    one = one_at_a_time(judge_settings)
    client = RelevanceJudge(one.llm, one.judge)
    try:
        fake_openai.reply_next(Reply(content="no JSON here"))
        run = await judge_pending(scored, one.judge, client)
        assert run.judged == 1 and len(fake_openai.requests) == 2  # asked once more

        fake_openai.reply_next(Reply(content='{"papers": "nonsense"}'), Reply(content="[]"))
        run = await judge_pending(scored, one.judge, client)
        assert run.judged == 0 and run.failed == 1
        (failed_id,) = fake_openai.verdict_requests()[-1]
        paper = await scored.get_paper(failed_id)
        assert paper is not None and paper.relevance == paper.score
        assert paper.decided_by.startswith("model; judge failed: two unusable answers")

        # The claim was given back: the next poll asks again and the verdict lands.
        run = await judge_pending(scored, one.judge, client)
        assert run.judged == 1 and fake_openai.verdict_requests()[-1] == [failed_id]
        paper = await scored.get_paper(failed_id)
        assert paper is not None and paper.decided_by == "judge"
    finally:
        await client.close()


async def test_rate_limits_are_retried_and_a_refusal_stops_the_run(
    scored: Store, judge_settings: Settings, judge: RelevanceJudge, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply_next(Reply(status=429, headers={"Retry-After": "0"}))
    small = judge_settings.model_copy(update={"judge_max_per_poll": 8})
    run = await judge_pending(scored, small.judge, judge)
    assert run.judged == 8 and run.stopped is None

    fake_openai.reply_next(*[Reply(status=401)] * 20)
    run = await judge_pending(scored, judge_settings.judge, judge)
    assert run.stopped and "API key" in run.stopped and run.judged == 0
    assert len(fake_openai.requests) <= 2 + 1 + judge_settings.summary_concurrency


async def test_a_verdict_about_a_paper_not_asked_about_is_ignored(
    scored: Store, judge_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    one = one_at_a_time(judge_settings)
    (target,) = await scored.papers_to_judge(RelevanceJudge(one.llm, one.judge).scope, 1)
    other = next(p for p in fixture_papers(DAY) if p.arxiv_id != target.arxiv_id)
    answer = {
        "papers": [
            {"id": other.arxiv_id, "relevant": True, "topics": [], "reason": "not asked"},
            {
                "id": target.arxiv_id,
                "relevant": True,
                "topics": ["astrology", "hardware"],
                "reason": "asked",
            },
        ]
    }
    fake_openai.reply_next(Reply(content=json.dumps(answer)))
    before = await scored.get_paper(other.arxiv_id)
    client = RelevanceJudge(one.llm, one.judge)
    try:
        run = await judge_pending(scored, one.judge, client)
    finally:
        await client.close()
    assert run.judged == 1
    assert await scored.get_paper(other.arxiv_id) == before
    paper = await scored.get_paper(target.arxiv_id)
    assert paper is not None and paper.reason == "judge: asked"
    assert paper.topics == ("hardware",)  # the invented tag is dropped


def _oracle(labels_dir: Path):
    truth = {}
    for path in labels_dir.glob("labels-*.tsv"):
        for line in path.read_text().splitlines()[1:]:
            arxiv_id, relevant, *_ = line.split("\t")
            truth[arxiv_id] = relevant == "1"
    return lambda arxiv_id, title: (truth[arxiv_id], [], "labelled")


def test_stats_and_evaluate_judge_from_the_command_line(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    for name in ("2025-06-18.jsonl", "labels-2025-06-18.tsv"):
        (labels / name).write_bytes((FIXTURES / "arxiv" / name).read_bytes())
    environment = {
        "OPENAI_API_KEY": LLM_SECRET,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_MODEL": "fake-judge",
    }
    # A judge that knows the labels: the plumbing is measured, not a real model.
    fake_openai.verdict_for = _oracle(labels)
    result = run_bot(["evaluate", "--labels", str(labels), "--judge"], tmp_path, environment)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    band = next(line for line in lines if line.startswith("Judge fake-judge"))
    assert "0 without a verdict" in band
    without = next(line for line in lines if line.startswith("Pooled without judge"))
    with_judge = next(line for line in lines if line.startswith("Pooled with judge"))
    assert float(with_judge.split("F1 ")[1]) >= float(without.split("F1 ")[1])
    assert LLM_SECRET not in result.stdout + result.stderr

    no_key = run_bot(["evaluate", "--labels", str(labels), "--judge"], tmp_path)
    assert no_key.returncode == 2 and "needs OPENAI_API_KEY" in no_key.stderr
    needs_key = run_bot(["classify"], tmp_path, {"RELEVANCE_JUDGE": "llm"})
    assert needs_key.returncode == 2
    assert needs_key.stderr.strip() == (
        "error: invalid setting RELEVANCE_JUDGE=llm needs OPENAI_API_KEY (the judge is a model)"
    )


async def test_stats_counts_verdicts_and_their_tokens(
    scored: Store, judge_settings: Settings, judge: RelevanceJudge, tmp_path: Path
) -> None:
    run = await judge_pending(scored, judge_settings.judge, judge)
    result = run_bot(["stats"], tmp_path, {"DATABASE_URL": judge_settings.database_url})
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("fake-judge"))
    assert f"{run.judged:,} verdicts" in line
    spent = await scored.judgement_spend()
    assert spent[0][1] == run.judged and spent[0][2] > 0 and spent[0][3] > 0


async def test_verdicts_come_back_after_a_rescore_with_the_judge_off_and_follow_the_band(
    scored: Store, judge_settings: Settings, judge: RelevanceJudge, fake_openai: FakeOpenAI
) -> None:
    await judge_pending(scored, judge_settings.judge, judge)
    requests = len(fake_openai.requests)
    judged = {i: p for i, p in (await papers_by_id(scored)).items() if p.decided_by == "judge"}
    assert judged
    # A model upgrade re-scores everything while the judge is off: the offline model decides.
    classifier = load_classifier()
    await scored.save_classifications(
        [(p.arxiv_id, classifier.classify_paper(p)) for p in fixture_papers(DAY)], "v2"
    )
    for arxiv_id in judged:
        assert (await scored.get_paper(arxiv_id)).decided_by == "model"
    # The judge on again: its stored verdicts decide again, without a single new request.
    await judge_pending(scored, judge_settings.judge, judge)
    assert len(fake_openai.requests) == requests
    for arxiv_id, before in judged.items():
        now = await scored.get_paper(arxiv_id)
        assert now.decided_by == "judge" and now.relevance == before.relevance

    # A narrower band: verdicts outside it stop deciding, and the papers are re-scored.
    narrow = judge_settings.model_copy(update={"judge_band_low": 0.45, "judge_band_high": 0.55})
    narrow_judge = RelevanceJudge(narrow.llm, narrow.judge)
    try:
        await judge_pending(scored, narrow.judge, narrow_judge)
    finally:
        await narrow_judge.close()
    await classify_pending(scored, classifier, narrow_judge.scope)
    for arxiv_id in judged:
        paper = await scored.get_paper(arxiv_id)
        if not 0.45 <= paper.score <= 0.55:
            assert paper.decided_by == "model" and paper.relevance == paper.score
            assert not paper.reason.startswith("judge: ")


async def test_a_verdict_decides_whatever_threshold_or_min_score_inside_the_band(
    scored: Store, judge_settings: Settings, judge: RelevanceJudge, fake_openai: FakeOpenAI
) -> None:
    before = await papers_by_id(scored)
    fake_openai.verdict_for = flip_offline_decision(before)
    await judge_pending(scored, judge_settings.judge, judge)
    low, high = judge_settings.judge_band_low, judge_settings.judge_band_high
    decided = [p for p in (await papers_by_id(scored)).values() if p.decided_by == "judge"]
    assert decided
    for paper in decided:
        relevant = before[paper.arxiv_id].score < 0.5  # what the flipping judge said
        assert paper.relevance > high if relevant else paper.relevance < low


async def test_two_judges_at_once_never_pay_twice(
    scored: Store, judge_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    other_store = await Store.open(judge_settings.database_path)
    first, second = (
        RelevanceJudge(judge_settings.llm, judge_settings.judge),
        RelevanceJudge(judge_settings.llm, judge_settings.judge),
    )
    try:
        runs = await asyncio.gather(
            judge_pending(scored, judge_settings.judge, first),
            judge_pending(other_store, judge_settings.judge, second),
        )
    finally:
        await first.close()
        await second.close()
        await other_store.close()
    asked = [i for request in fake_openai.verdict_requests() for i in request]
    assert asked and len(asked) == len(set(asked))
    assert sum(r.judged for r in runs) == len(asked)


async def test_one_malformed_verdict_costs_only_its_paper_and_three_failures_end_it(
    scored: Store, judge_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    two = judge_settings.model_copy(update={"judge_max_per_poll": 2, "judge_batch_size": 2})
    first, second = await scored.papers_to_judge(RelevanceJudge(two.llm, two.judge).scope, 2)
    answer = {
        "papers": [
            {"id": first.arxiv_id, "relevant": "perhaps", "topics": [], "reason": "?"},
            {"id": second.arxiv_id, "relevant": False, "topics": [], "reason": "x" * 900},
        ]
    }
    client = RelevanceJudge(two.llm, two.judge)
    try:
        fake_openai.reply_next(Reply(content=json.dumps(answer)))
        run = await judge_pending(scored, two.judge, client)
        assert run.judged == 1 and run.failed == 1
        kept = await scored.get_paper(second.arxiv_id)
        assert kept.decided_by == "judge" and len(kept.reason) <= len("judge: ") + 300
        failed = await scored.get_paper(first.arxiv_id)
        assert failed.decided_by.startswith("model; judge failed")
        # Two more failed attempts, and the paper is left to the offline model for good.
        one = one_at_a_time(judge_settings)
        for _ in range(2):
            fake_openai.reply_next(Reply(status=500), Reply(status=500))
            await judge_pending(scored, one.judge, client)
        asked = len(fake_openai.requests)
        assert first.arxiv_id not in [
            p.arxiv_id for p in await scored.papers_to_judge(client.scope, 500)
        ]
        await judge_pending(scored, one.judge, client)
        assert fake_openai.verdict_requests()[-1] != [first.arxiv_id]
        assert len(fake_openai.requests) == asked + 1
    finally:
        await client.close()
