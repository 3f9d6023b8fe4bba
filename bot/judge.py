"""A model's second opinion on close calls (RELEVANCE_JUDGE=llm).

The offline model is sure about most papers and unsure about a band of them; about
half of the labelled days' relevant papers are such close calls. Papers whose
offline score falls inside the band (JUDGE_BAND_LOW..JUDGE_BAND_HIGH) are sent to
the configured chat model with the rubric and labelled close calls as examples,
several per request. Its verdict decides inside the band and its reason becomes the
paper's reason; a verdict is paid for once per (paper, model, prompt version). When
the model fails or answers nonsense, the offline decision stands, marked as such.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot import llm
from bot.classify import Quality, measure
from bot.config import JudgeSettings, ModelSettings
from bot.models import Judgement, JudgeScope, Paper
from bot.store import Store
from bot.training import DayResult, LabelledPaper
from bot.vocabulary import TOPICS

log = logging.getLogger(__name__)

PROMPT_VERSION = "2026-11-22.1"
REASON_MAX_CHARS = 300
ABSTRACT_MAX_CHARS = 2000


def _data(name: str) -> str:
    return (resources.files("bot") / "data" / name).read_text(encoding="utf-8")


def _examples() -> list[dict]:
    return json.loads(_data("judge-examples.json"))["examples"]


EXAMPLE_IDS = frozenset(e["arxiv_id"] for e in _examples())


def system_prompt() -> str:
    examples = "\n".join(
        f'- "{e["title"]}": {"relevant" if e["relevant"] else "not relevant"}'
        + (f" ({', '.join(e['topics'])})" if e["topics"] else "")
        + f". {e['reason']}"
        for e in _examples()
    )
    return f"""\
You decide which arXiv papers belong in a daily digest for ML engineers who want to make \
deep learning cheaper. Judge each paper by its title and abstract against this rubric:

{_data("relevance.md")}

The papers you get are close calls. Decide by the main contribution: a paper that only \
uses an efficient technique as a tool, or mentions cost in passing, is not relevant; a \
paper whose headline result is lower cost (compute, memory, latency, energy, data, \
parameters) is.

Labelled close calls, for calibration:
{examples}

Answer with JSON only, one entry per paper given, with its id exactly as given:
{{"papers": [{{"id": "...", "relevant": true, "topics": ["..."], "reason": "..."}}]}}
- "topics": for a relevant paper, one or more of: {", ".join(TOPICS)}; else [].
- "reason": one line, at most 200 characters: what the paper does and why it counts or not.
Plain text, no Markdown."""


VERDICT_SCHEMA = {
    "name": "relevance_verdicts",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {
            "papers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "relevant": {"type": "boolean"},
                        "topics": {"type": "array", "items": {"type": "string", "enum": TOPICS}},
                        "reason": {"type": "string"},
                    },
                    "required": ["id", "relevant", "topics", "reason"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["papers"],
        "additionalProperties": False,
    },
}


class PaperText(Protocol):
    @property
    def arxiv_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def abstract(self) -> str: ...


def user_prompt(papers: Sequence[PaperText]) -> str:
    return "\n\n".join(
        f"id: {p.arxiv_id}\nTitle: {' '.join(p.title.split())}\n"
        f"Abstract: {' '.join(p.abstract.split())[:ABSTRACT_MAX_CHARS]}"
        for p in papers
    )


class Verdict(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    relevant: bool
    topics: list[str] = Field(default_factory=list)
    reason: str = Field(min_length=1)

    @field_validator("topics", mode="before")
    @classmethod
    def _known_topics(cls, value: object) -> object:
        # An invented tag is dropped, not a reason to throw the verdict away.
        if isinstance(value, list):
            return [t for t in value if isinstance(t, str) and t in TOPICS]
        return value

    @field_validator("reason", mode="before")
    @classmethod
    def _short_line(cls, value: object) -> object:
        # A long reason is cut, not a reason to throw the verdict away.
        if not isinstance(value, str):
            return value
        text = llm.one_line(value)
        return text if len(text) <= REASON_MAX_CHARS else text[: REASON_MAX_CHARS - 1] + "…"


class VerdictList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    papers: list[dict]


def parse_verdicts(content: str | None) -> list[Verdict]:
    """Each verdict is checked on its own: one malformed entry costs that paper only.
    An answer with no usable verdict at all is asked for again."""
    entries = llm.parse_json_answer(content, VerdictList, "verdict").papers
    verdicts = []
    for entry in entries:
        try:
            verdicts.append(Verdict.model_validate(entry))
        except ValidationError:
            log.warning("malformed verdict ignored entry=%r", str(entry)[:80])
    if entries and not verdicts:
        raise ValueError("no verdict in the answer matches the verdict format")
    return verdicts


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class RelevanceJudge:
    def __init__(self, model: ModelSettings, settings: JudgeSettings) -> None:
        self._chat = llm.ChatModel(model)
        self.scope = JudgeScope(model.model, PROMPT_VERSION, settings.band_low, settings.band_high)
        self._system = system_prompt()

    async def close(self) -> None:
        await self._chat.close()

    async def judge(self, papers: Sequence[PaperText]) -> tuple[list[Judgement], llm.ModelAnswer]:
        """Verdicts for the papers asked about; one naming another paper is ignored.
        The request's tokens are shared among the verdicts it produced."""
        answer = await self._chat.ask(
            self._system,
            user_prompt(papers),
            VERDICT_SCHEMA,
            parse_verdicts,
            subject=f"verdicts papers={','.join(p.arxiv_id for p in papers)}",
        )
        asked = {p.arxiv_id for p in papers}
        verdicts: dict[str, Verdict] = {}
        for verdict in answer.output:
            if verdict.id in asked:
                verdicts.setdefault(verdict.id, verdict)
            else:
                log.warning("verdict for a paper not asked about ignored paper=%r", verdict.id[:40])
        prompt = _shares(answer.prompt_tokens, max(len(verdicts), 1))
        completion = _shares(answer.completion_tokens, max(len(verdicts), 1))
        judgements = [
            Judgement(
                arxiv_id,
                v.relevant,
                tuple(dict.fromkeys(v.topics)) if v.relevant else (),
                v.reason,
                prompt[i],
                completion[i],
            )
            for i, (arxiv_id, v) in enumerate(verdicts.items())
        ]
        return judgements, answer


@dataclass(slots=True)
class JudgeRun:
    judged: int = 0
    failed: int = 0
    skipped: int = 0  # claimed by another worker
    requests: int = 0
    stopped: str | None = None
    errors: list[str] = field(default_factory=list)


async def judge_pending(store: Store, settings: JudgeSettings, judge: RelevanceJudge) -> JudgeRun:
    """Judge the close calls that have no verdict yet: at most `judge_max_per_poll` papers,
    `judge_batch_size` per request, `summary_concurrency` requests at a time. Stored
    verdicts are first made to decide again wherever a re-score or a new band left them."""
    run = JudgeRun()
    scope = judge.scope
    await store.sync_judgements(scope)
    candidates = await store.papers_to_judge(scope, settings.max_per_poll)
    size = settings.batch_size
    batches = [candidates[i : i + size] for i in range(0, len(candidates), size)]
    gate = asyncio.Semaphore(settings.concurrency)

    async def one(batch: list[Paper]) -> None:
        async with gate:
            if run.stopped:
                return
            # Claimed only now, right before the request: a claim never waits out its lease
            # behind other batches, so a concurrent poll cannot pay for the same paper.
            claimed = []
            for paper in batch:
                if await store.claim_judgement(paper.arxiv_id, scope.model, scope.prompt_version):
                    claimed.append(paper)
                else:
                    run.skipped += 1
            if not claimed:
                return
            ids = [p.arxiv_id for p in claimed]
            run.requests += 1
            try:
                judgements, _ = await judge.judge(claimed)
            except llm.ProviderRefused as exc:
                run.stopped = str(exc)
                await store.release_judgements(ids, scope, str(exc))
                return
            except llm.ModelUnavailable as exc:
                run.failed += len(claimed)
                run.errors.append(f"{', '.join(ids)}: {exc.reason}")
                await store.release_judgements(
                    ids, scope, exc.reason, exc.prompt_tokens, exc.completion_tokens
                )
                log.warning("judge failed papers=%s reason=%s", ",".join(ids), exc.reason)
                return
        await store.save_judgements(judgements, scope)
        run.judged += len(judgements)
        answered = {j.arxiv_id for j in judgements}
        missing = [i for i in ids if i not in answered]
        if missing:
            run.failed += len(missing)
            await store.release_judgements(missing, scope, "the answer had no usable verdict")
        for j in judgements:
            log.info("judged paper=%s relevant=%s model=%s", j.arxiv_id, j.relevant, scope.model)

    await asyncio.gather(*(one(b) for b in batches))
    if run.stopped:
        log.error("judging stopped early reason=%s", run.stopped)
    return run


@dataclass(frozen=True, slots=True)
class JudgeMeasurement:
    model: str
    low: float
    high: float
    band: int  # labelled papers whose offline score fell in the band
    judged: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    right_offline: int  # in-band papers the offline decision got right
    right_judge: int
    offline: Quality
    combined: Quality

    def lines(self) -> list[str]:
        return [
            f"Judge {self.model} (prompt {PROMPT_VERSION}) on the band"
            f" {self.low:.2f}-{self.high:.2f}: {self.band} papers, {self.judged} judged,"
            f" {self.band - self.judged} without a verdict, {self.requests} requests,"
            f" {self.prompt_tokens:,} + {self.completion_tokens:,} tokens.",
            f"In the band: offline right on {self.right_offline}/{self.judged},"
            f" judge right on {self.right_judge}/{self.judged}.",
            f"Pooled without judge: P {self.offline.precision:.2f} R {self.offline.recall:.2f}"
            f" F1 {self.offline.f1:.2f}",
            f"Pooled with judge:    P {self.combined.precision:.2f} R {self.combined.recall:.2f}"
            f" F1 {self.combined.f1:.2f}",
        ]


def in_band(
    results: Sequence[DayResult], low: float, high: float
) -> list[tuple[LabelledPaper, float]]:
    """The labelled papers whose held-out score falls in the band, the prompt's own
    examples excepted: the papers a judge decides."""
    return [
        (paper, score)
        for result in results
        for paper, score in result.scored
        if low <= score <= high and paper.arxiv_id not in EXAMPLE_IDS
    ]


def score_verdicts(
    results: Sequence[DayResult],
    verdicts: dict[str, bool],
    low: float,
    high: float,
    model: str,
    *,
    requests: int = 0,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> JudgeMeasurement:
    """Decisions with and without `verdicts` (arXiv id -> relevant) inside the band,
    against the labels. A band paper without a verdict keeps its offline decision, as
    in the service."""
    band = in_band(results, low, high)
    judged = [(p, s) for p, s in band if p.arxiv_id in verdicts]
    decided = {p.arxiv_id: verdicts[p.arxiv_id] for p, _ in judged}
    scored = [(paper, score) for result in results for paper, score in result.scored]
    truth = [paper.relevant for paper, _ in scored]
    return JudgeMeasurement(
        model=model,
        low=low,
        high=high,
        band=len(band),
        judged=len(judged),
        requests=requests,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        right_offline=sum((s >= 0.5) == p.relevant for p, s in judged),
        right_judge=sum(decided[p.arxiv_id] == p.relevant for p, _ in judged),
        offline=measure([score >= 0.5 for _, score in scored], truth),
        combined=measure([decided.get(p.arxiv_id, s >= 0.5) for p, s in scored], truth),
    )


async def measure_judge(
    model: ModelSettings, settings: JudgeSettings, results: Sequence[DayResult]
) -> JudgeMeasurement:
    """The judge against labels: every labelled paper whose offline score falls in the
    band is judged (the prompt's own examples excepted), and the decisions with and
    without the judge are compared. Nothing is stored."""
    judge = RelevanceJudge(model, settings)
    low, high = settings.band_low, settings.band_high
    verdicts: dict[str, bool] = {}
    requests = prompt_tokens = completion_tokens = 0
    band = in_band(results, low, high)
    size = settings.batch_size
    try:
        for start in range(0, len(band), size):
            batch = [paper for paper, _ in band[start : start + size]]
            requests += 1
            try:
                judgements, answer = await judge.judge(batch)
            except llm.ModelUnavailable as exc:
                prompt_tokens += exc.prompt_tokens
                completion_tokens += exc.completion_tokens
                continue
            prompt_tokens += answer.prompt_tokens
            completion_tokens += answer.completion_tokens
            verdicts.update((j.arxiv_id, j.relevant) for j in judgements)
    finally:
        await judge.close()
    return score_verdicts(
        results,
        verdicts,
        low,
        high,
        judge.scope.model,
        requests=requests,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
