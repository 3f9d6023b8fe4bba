"""One cycle of the service: poll arXiv, store, then score whatever is not yet scored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.classify import Classifier
from bot.config import Settings
from bot.ingest import ArxivPacer, PollProgress, PollReport, poll_arxiv
from bot.judge import RelevanceJudge, judge_pending
from bot.models import Classification, JudgeScope, Paper
from bot.store import Store
from bot.summarize import Summarizer, summarize_pending

log = logging.getLogger(__name__)


def open_judge(settings: Settings) -> RelevanceJudge | None:
    """The LLM judge when RELEVANCE_JUDGE=llm (settings make sure a key is set)."""
    return (
        RelevanceJudge(settings.llm, settings.judge) if settings.relevance_judge == "llm" else None
    )


def _classify_all(classifier: Classifier, papers: list[Paper]) -> list[tuple[str, Classification]]:
    return [(p.arxiv_id, classifier.classify_paper(p)) for p in papers]


async def classify_pending(
    store: Store, classifier: Classifier, judge: JudgeScope | None = None, batch: int = 1000
) -> int:
    """Score papers never scored, or scored by another model or vocabulary; verdicts already
    stored for `judge` are applied in the same write. Returns how many."""
    done = 0
    while papers := await store.papers_to_classify(classifier.version, batch):
        # Scoring is CPU work; keep it off the event loop.
        results = await asyncio.to_thread(_classify_all, classifier, papers)
        done += await store.save_classifications(results, classifier.version, judge)
    if done:
        log.info("classified %d papers classifier=%s", done, classifier.version)
    return done


async def run_cycle(
    store: Store,
    settings: Settings,
    classifier: Classifier,
    summarizer: Summarizer | None = None,
    on_progress: Callable[[PollProgress], None] | None = None,
    judge: RelevanceJudge | None = None,
    pacer: ArxivPacer | None = None,
) -> PollReport:
    """Poll, classify, judge the close calls, summarize. Without a summarizer (no API key)
    readers get the extractive summary, and nothing touches the network but arXiv."""
    report = await poll_arxiv(store, settings.arxiv, on_progress=on_progress, pacer=pacer)
    # Classify and summarize even after a failed poll: the pages it stored deserve it,
    # and papers left unsummarized by an earlier poll get another chance.
    await classify_pending(store, classifier, judge.scope if judge else None)
    if judge is not None:
        # Before summaries: a paper the judge adds is summarized in the same cycle.
        await judge_pending(store, settings.judge, judge)
    if summarizer is not None:
        await summarize_pending(store, settings.summaries, summarizer)
    return report
