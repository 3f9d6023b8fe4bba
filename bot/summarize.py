"""Three-bullet summaries: written by any OpenAI-compatible model, paid for once per paper.

The prompt lives here and only here; `PROMPT_VERSION` names it, and a summary
is stored per (paper, model, prompt version), so changing the prompt or the
model is the only thing that makes a paper cost again. Without an API key, or
before a paper's turn comes, readers get an extractive summary made from the
abstract, marked as such.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.config import ModelSettings, SummarySettings
from bot.llm import (
    ChatModel,
    ModelAnswer,
    ModelUnavailable,
    ProviderRefused,
    one_line,
    parse_json_answer,
)
from bot.models import Paper, Summary, SummarySource
from bot.store import Store

log = logging.getLogger(__name__)

PROMPT_VERSION = "2026-11-22.1"
BULLET_MAX_CHARS = 320  # "about 300": a little slack before an answer is refused
TLDR_MAX_CHARS = 200

SYSTEM_PROMPT = """\
You summarize arXiv papers about efficient deep learning for ML engineers who are \
deciding whether to read the paper.

Answer with JSON only, in this shape:
{"tldr": "...", "bullets": ["...", "...", "..."]}

- "tldr": one line, at most 150 characters: the paper's contribution.
- "bullets": exactly three, each at most 300 characters:
  1. what the paper proposes or finds;
  2. how it works;
  3. what it gains, quoting the paper's own figures (speed-ups, memory, accuracy) \
when the abstract gives them.
- Use only facts stated in the title and abstract. Do not speculate or praise.
- Plain text: no Markdown, no links, no mentions."""

SUMMARY_SCHEMA = {
    "name": "paper_summary",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {
            "tldr": {"type": "string"},
            "bullets": {"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 3},
        },
        "required": ["tldr", "bullets"],
        "additionalProperties": False,
    },
}


def user_prompt(paper: Paper) -> str:
    authors = ", ".join(paper.authors[:10]) + (" et al." if len(paper.authors) > 10 else "")
    return f"Title: {paper.title}\nAuthors: {authors}\nAbstract: {paper.abstract}"


_BULLET_MARK = re.compile(r"^\s*(?:[-*•·]|\d+[.)])\s*")


class SummaryOutput(BaseModel):
    """What the model must return; anything else is refused and asked again once."""

    model_config = ConfigDict(extra="ignore")

    tldr: str = Field(min_length=1, max_length=TLDR_MAX_CHARS)
    bullets: list[str] = Field(min_length=3, max_length=3)

    @field_validator("tldr", mode="before")
    @classmethod
    def _one_line(cls, value: object) -> object:
        return one_line(value) if isinstance(value, str) else value

    @field_validator("bullets", mode="before")
    @classmethod
    def _plain_bullets(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        bullets = [one_line(_BULLET_MARK.sub("", b)) if isinstance(b, str) else b for b in value]
        for bullet in bullets:
            if isinstance(bullet, str) and not 1 <= len(bullet) <= BULLET_MAX_CHARS:
                raise ValueError(f"each bullet must be 1 to {BULLET_MAX_CHARS} characters")
        return bullets


def parse_answer(content: str | None) -> SummaryOutput:
    """Validate a model's answer, tolerating a Markdown code fence around the JSON."""
    return parse_json_answer(content, SummaryOutput, "summary")


# -- the model ---------------------------------------------------------------------------


class Summarizer:
    """Writes summaries with the configured chat model (bot/llm.py)."""

    def __init__(self, settings: ModelSettings) -> None:
        self._chat = ChatModel(settings)
        self.model = self._chat.model

    async def close(self) -> None:
        await self._chat.close()

    async def summarize(self, paper: Paper) -> ModelAnswer[SummaryOutput]:
        return await self._chat.ask(
            SYSTEM_PROMPT,
            user_prompt(paper),
            SUMMARY_SCHEMA,
            parse_answer,
            subject=f"summary paper={paper.arxiv_id}",
        )


@dataclass(slots=True)
class SummaryRun:
    summarized: int = 0
    failed: int = 0
    skipped: int = 0  # claimed by another worker, or already summarized meanwhile
    stopped: str | None = None  # why the run stopped early, if it did
    errors: list[str] = field(default_factory=list)


async def summarize_pending(
    store: Store, settings: SummarySettings, summarizer: Summarizer
) -> SummaryRun:
    """Summarize relevant papers that have no summary from this model and prompt version,
    best first, at most `summary_max_per_poll`, `summary_concurrency` at a time."""
    run = SummaryRun()
    papers = await store.papers_needing_summary(
        settings.relevance_threshold,
        summarizer.model,
        PROMPT_VERSION,
        settings.max_per_poll,
    )
    if not papers:
        return run
    gate = asyncio.Semaphore(settings.concurrency)
    refused = asyncio.Event()

    async def one(paper: Paper) -> None:
        async with gate:
            if refused.is_set():
                return
            if not await store.claim_summary(paper.arxiv_id, summarizer.model, PROMPT_VERSION):
                run.skipped += 1
                return
            try:
                answer = await summarizer.summarize(paper)
            except ProviderRefused as exc:
                refused.set()
                run.stopped = str(exc)
                await store.release_summary(
                    paper.arxiv_id, summarizer.model, PROMPT_VERSION, str(exc)
                )
                return
            except ModelUnavailable as exc:
                run.failed += 1
                run.errors.append(f"{paper.arxiv_id}: {exc.reason}")
                await store.release_summary(
                    paper.arxiv_id,
                    summarizer.model,
                    PROMPT_VERSION,
                    exc.reason,
                    exc.prompt_tokens,
                    exc.completion_tokens,
                )
                log.warning("summary failed paper=%s reason=%s", paper.arxiv_id, exc.reason)
                return
            summary = Summary(
                tldr=answer.output.tldr,
                bullets=tuple(answer.output.bullets),
                source=SummarySource.MODEL,
                model=summarizer.model,
                prompt_version=PROMPT_VERSION,
            )
            await store.save_summary(
                paper.arxiv_id, summary, answer.prompt_tokens, answer.completion_tokens
            )
            run.summarized += 1
            log.info(
                "summarized paper=%s model=%s tokens=%d+%d",
                paper.arxiv_id,
                summarizer.model,
                answer.prompt_tokens,
                answer.completion_tokens,
            )

    await asyncio.gather(*(one(p) for p in papers))
    if run.stopped:
        log.error("summaries stopped early reason=%s", run.stopped)
    return run
