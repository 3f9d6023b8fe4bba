"""What one channel likes: a small model fitted on its readers' votes, on top of the
global relevance score.

arxiv-sanity fits one model per user tag on the papers a person tagged; this fits one per
channel on the papers its readers voted on, with the global classifier's features, once
the channel has enough votes. The model only moves papers: a paper's score in that
channel is its global relevance shifted (in log-odds) by what the channel's votes say
about papers like it, and the channel's digests are chosen and ordered by that score.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bot.classify import Classifier
from bot.digests.render import NOTICEABLE_SHIFT, votes_moved
from bot.models import Paper
from bot.store import Store

# Never lift a paper the global model scores below this into a channel's digest: votes
# reorder and pick among plausible papers, they do not make an off-topic one relevant.
TASTE_FLOOR = 0.2
MAX_SHIFT = 4.0  # log-odds: a channel's votes move a paper at most this far
GLOBAL_CAP = 2.5  # log-odds: the most the global score says for or against a paper
_ITERATIONS = 200
_LEARNING_RATE = 8.0  # features are L2-normalised per field: steps must be large
_L2 = 0.002
RECENT_PAPERS = 300  # a channel's taste is learned from its latest votes: tastes drift


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True, slots=True)
class ChannelTaste:
    weights: dict[str, float]
    votes: int

    def shift(self, values: dict[str, float]) -> float:
        weights = self.weights
        total = sum(weights.get(name, 0.0) * value for name, value in values.items())
        return max(-MAX_SHIFT, min(MAX_SHIFT, total))


def fit_taste(examples: Sequence[tuple[dict[str, float], bool]], votes: int) -> ChannelTaste:
    """L2-regularised logistic regression by full-batch gradient descent, in pure Python.
    Only features seen in at least two voted papers (2% of them, for many) are learned:
    one paper's words say nothing about a channel's taste. The intercept is fitted but not
    kept, so a channel that likes most of what it gets is not handed everything."""
    if not examples:
        return ChannelTaste({}, votes)
    seen = Counter(name for values, _ in examples for name in values)
    enough = max(2, len(examples) // 50)
    kept = {name for name, count in seen.items() if count >= enough}
    data = [({n: v for n, v in values.items() if n in kept}, liked) for values, liked in examples]
    weights = dict.fromkeys(kept, 0.0)
    intercept = 0.0
    size = len(data)
    for _ in range(_ITERATIONS):
        gradient = dict.fromkeys(kept, 0.0)
        intercept_gradient = 0.0
        for values, liked in data:
            margin = intercept + sum(weights[n] * v for n, v in values.items())
            error = _sigmoid(margin) - (1.0 if liked else 0.0)
            intercept_gradient += error
            for name, value in values.items():
                gradient[name] += error * value
        for name in kept:
            weights[name] -= _LEARNING_RATE * (gradient[name] / size + _L2 * weights[name])
        intercept -= _LEARNING_RATE * intercept_gradient / size
    return ChannelTaste({n: w for n, w in weights.items() if abs(w) > 1e-4}, votes)


class ChannelTastes:
    """Each channel's taste, fitted again only when its votes changed."""

    def __init__(self, classifier: Classifier, votes_to_learn: int) -> None:
        self.classifier = classifier
        self.votes_to_learn = votes_to_learn
        self._fitted: dict[str, tuple[tuple[int, str, int], ChannelTaste]] = {}

    def _values(self, paper: Paper) -> dict[str, float]:
        return self.classifier.features(paper.title, paper.abstract).values

    async def learns(self, store: Store, channel_id: str) -> bool:
        """Whether the channel has votes enough for a taste (fitting one may take a while)."""
        return (await store.channel_vote_stamp(channel_id))[0] >= self.votes_to_learn

    async def for_channel(self, store: Store, channel_id: str) -> ChannelTaste | None:
        """None until the channel has `votes_to_learn` votes."""
        stamp = await store.channel_vote_stamp(channel_id)
        if stamp[0] < self.votes_to_learn:
            return None
        cached = self._fitted.get(channel_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        voted = [(p, net) for p, net in await store.channel_votes(channel_id, RECENT_PAPERS) if net]
        if not voted:  # votes that cancel out teach nothing
            return None

        def fit() -> ChannelTaste:
            examples = [(self._values(paper), net > 0) for paper, net in voted]
            return fit_taste(examples, stamp[0])

        taste = await asyncio.to_thread(fit)  # CPU work: off the event loop
        self._fitted[channel_id] = (stamp, taste)
        return taste

    def adjusted(self, taste: ChannelTaste, paper: Paper) -> tuple[float, float]:
        """The paper's score in this channel (what its min_score applies to), and how far
        (log-odds) its votes moved it."""
        shift = taste.shift(self._values(paper))
        return _sigmoid(_logit(paper.relevance or 0.0) + shift), shift

    def rank(self, taste: ChannelTaste, papers: Sequence[Paper], floor: float) -> list[Paper]:
        """The papers scoring at least `floor` for this channel, each with that score as its
        relevance and, when the votes moved it, a reason saying so. Ordered by the votes'
        shift on top of the global score capped: among papers the global model is sure of
        anyway (0.99 and 0.999 alike) the channel's taste decides."""
        ranked = []
        for paper in papers:
            score, shift = self.adjusted(taste, paper)
            if score < floor:
                continue
            reason = paper.reason
            if abs(shift) >= NOTICEABLE_SHIFT:
                moved = votes_moved(shift)
                reason = f"{reason} · {moved}" if reason else moved
            base = max(-GLOBAL_CAP, min(GLOBAL_CAP, _logit(paper.relevance or 0.0)))
            order = base + shift
            ranked.append((order, dataclasses.replace(paper, relevance=score, reason=reason)))
        ranked.sort(key=lambda item: (-item[0], -item[1].announced.toordinal(), item[1].arxiv_id))
        return [paper for _, paper in ranked]
