"""The topic vocabulary: the rubric's techniques as weighted phrases, grouped by topic.

It does two jobs. Its phrase hits are features of the learned relevance model
(bot/features.py), and its per-topic evidence decides a paper's topic tags.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

TOPICS = (
    "quantization",
    "pruning",
    "distillation",
    "efficient-architectures",
    "parameter-efficient",
    "architecture-search",
    "inference-serving",
    "training-efficiency",
    "hardware",
    "optimization",
)

GENERAL = "general"
NEGATIVE = "negative"


def normalize(text: str) -> str:
    """Lowercase, with hyphens, slashes and underscores read as spaces."""
    return re.sub(r"[\-‐‑–—/_]+", " ", text.lower())


@dataclass(frozen=True, slots=True)
class _Phrase:
    group: str  # a topic, "general" or "negative"
    pattern: str
    weight: float


class Vocabulary:
    """Phrases grouped by topic, compiled into one regex per vocabulary."""

    def __init__(self, raw: dict, source: bytes) -> None:
        scoring = raw.get("scoring", {})
        self.title_multiplier = float(scoring.get("title_multiplier", 2.0))
        self.topic_cap = float(scoring.get("topic_cap", 7.0))
        self.abstract_only_share = float(scoring.get("abstract_only_share", 1.0))
        self.tag_min = float(scoring.get("tag_min", 2.0))
        self.version = "vocab-" + hashlib.sha256(source).hexdigest()[:12]

        unknown = set(raw.get("topics", {})) - set(TOPICS)
        if unknown:
            raise ValueError(f"unknown topics in vocabulary: {', '.join(sorted(unknown))}")
        self._exact: dict[str, list[_Phrase]] = {}
        self._prefix: list[tuple[str, _Phrase]] = []
        patterns: list[str] = []
        groups = [(topic, phrases) for topic, phrases in raw.get("topics", {}).items()]
        groups += [(GENERAL, raw.get(GENERAL, {})), (NEGATIVE, raw.get(NEGATIVE, {}))]
        for group, phrases in groups:
            for phrase, weight in phrases.items():
                key = normalize(phrase).strip()
                entry = _Phrase(group, key, float(weight))
                if key.endswith("*"):
                    stem = key[:-1]
                    self._prefix.append((stem, entry))
                    patterns.append(re.escape(stem) + r"\w*")
                else:
                    self._exact.setdefault(key, []).append(entry)
                    patterns.append(re.escape(key))
        patterns.sort(key=len, reverse=True)  # longest alternative wins at a position
        self._regex = re.compile(r"(?<![\w])(?:" + "|".join(patterns) + r")(?![\w])")

    def _phrases_for(self, matched: str) -> list[_Phrase]:
        found = list(self._exact.get(matched, ()))
        found += [entry for stem, entry in self._prefix if matched.startswith(stem)]
        return found

    def matches(self, text: str) -> dict[tuple[str, str], float]:
        """Every (group, phrase) found in `text`, with its weight. Words inside a negative
        phrase count for nothing else: "vector quantized" is not model quantization."""
        normalized = normalize(text)
        found: dict[tuple[str, str], float] = {}
        masked_until = -1
        position = 0
        # The regex only matches at word starts, so searching from one character past the
        # last match start finds every phrase, overlapping ones included, in C.
        while (match := self._regex.search(normalized, position)) is not None:
            position = match.start() + 1
            # Shorter phrases starting at the same word also count ("low rank" in
            # "low rank adaptation"), so try every prefix the regex allows.
            candidate = match.group(0)
            hits: list[_Phrase] = []
            while candidate:
                hits += self._phrases_for(candidate)
                cut = candidate.rfind(" ")
                candidate = candidate[:cut] if cut > 0 else ""
            if any(h.group == NEGATIVE for h in hits):
                masked_until = max(masked_until, match.end())
            for phrase in hits:
                if phrase.group != NEGATIVE and match.start() < masked_until:
                    continue
                found[(phrase.group, phrase.pattern)] = phrase.weight
        return found

    def topic_scores(
        self, in_title: dict[tuple[str, str], float], in_abstract: dict[tuple[str, str], float]
    ) -> dict[str, float]:
        """Evidence per topic from a paper's phrase matches: title hits count
        `title_multiplier` times, and a technique named only in the abstract counts
        `abstract_only_share` (often a tool the paper uses, not its point)."""
        weights: dict[tuple[str, str], float] = dict(in_abstract)
        for key, weight in in_title.items():
            weights[key] = max(weights.get(key, 0.0), weight * self.title_multiplier)
        scores = dict.fromkeys(TOPICS, 0.0)
        for (group, _), weight in weights.items():
            if group in scores:
                scores[group] += weight
        if not any(group in scores for group, _ in in_title):
            scores = {t: s * self.abstract_only_share for t, s in scores.items()}
        return {t: min(s, self.topic_cap) for t, s in scores.items()}

    def topics(self, title: str, abstract: str) -> tuple[str, ...]:
        """Every topic with enough evidence (`tag_min`)."""
        return self.topics_from(self.matches(title), self.matches(abstract))

    def topics_from(
        self, in_title: dict[tuple[str, str], float], in_abstract: dict[tuple[str, str], float]
    ) -> tuple[str, ...]:
        scores = self.topic_scores(in_title, in_abstract)
        return tuple(t for t in TOPICS if scores[t] >= self.tag_min)


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    if path is None:
        source = (resources.files("bot") / "data" / "vocabulary.toml").read_bytes()
    else:
        source = path.read_bytes()
    return Vocabulary(tomllib.loads(source.decode("utf-8")), source)
