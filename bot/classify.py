"""Relevance scoring and topic tagging, offline, from a weighted phrase vocabulary.

Why phrases and not a trained model: two labelled days hold 29 relevant papers,
far too few to learn from without memorising them, while the rubric
(docs/relevance.md) names its techniques outright. The vocabulary spells out
those techniques; the weights were set on the rubric and checked against the
labelled days and the seed corpus (see README, "Classifier quality").
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bot.models import Classification, Paper

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

_GENERAL = "general"
_NEGATIVE = "negative"


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
        self.general_cap = float(scoring.get("general_cap", 3.0))
        self.negative_cap = float(scoring.get("negative_cap", 4.0))
        self.abstract_negative_share = float(scoring.get("abstract_negative_share", 0.5))
        self.abstract_only_share = float(scoring.get("abstract_only_share", 1.0))
        self.second_topic_share = float(scoring.get("second_topic_share", 0.3))
        self.bias = float(scoring.get("bias", 5.0))
        self.scale = float(scoring.get("scale", 1.2))
        self.tag_min = float(scoring.get("tag_min", 2.0))
        self.version = "vocab-" + hashlib.sha256(source).hexdigest()[:12]

        unknown = set(raw.get("topics", {})) - set(TOPICS)
        if unknown:
            raise ValueError(f"unknown topics in vocabulary: {', '.join(sorted(unknown))}")
        self._exact: dict[str, list[_Phrase]] = {}
        self._prefix: list[tuple[str, _Phrase]] = []
        patterns: list[str] = []
        groups = [(topic, phrases) for topic, phrases in raw.get("topics", {}).items()]
        groups += [(_GENERAL, raw.get(_GENERAL, {})), (_NEGATIVE, raw.get(_NEGATIVE, {}))]
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
        # Overlapping phrases ("low rank" inside "low rank adaptation") are found by
        # also scanning from each word start, see _matches.

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
        for word in re.finditer(r"(?<![\w])\w", normalized):
            match = self._regex.match(normalized, word.start())
            if match is None:
                continue
            # Shorter phrases starting at the same word also count ("low rank" in
            # "low rank adaptation"), so try every prefix the regex allows.
            candidate = match.group(0)
            hits: list[_Phrase] = []
            while candidate:
                hits += self._phrases_for(candidate)
                cut = candidate.rfind(" ")
                candidate = candidate[:cut] if cut > 0 else ""
            negative = [h for h in hits if h.group == _NEGATIVE]
            if negative:
                masked_until = max(masked_until, match.end())
            for phrase in hits:
                if phrase.group != _NEGATIVE and word.start() < masked_until:
                    continue
                found[(phrase.group, phrase.pattern)] = phrase.weight
        return found


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    if path is None:
        source = (resources.files("bot") / "data" / "vocabulary.toml").read_bytes()
    else:
        source = path.read_bytes()
    return Vocabulary(tomllib.loads(source.decode("utf-8")), source)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a paper scored as it did: for tuning and for `python -m bot explain`."""

    topic_scores: dict[str, float]
    general: float
    negative: float
    score: float


class Classifier:
    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary

    @property
    def version(self) -> str:
        return self.vocabulary.version

    def evidence(self, title: str, abstract: str) -> Evidence:
        vocab = self.vocabulary
        weights: dict[tuple[str, str], float] = {}
        in_title = vocab.matches(title)
        for key, weight in vocab.matches(abstract).items():
            # An off-topic word in the abstract is weaker evidence than in the title.
            share = vocab.abstract_negative_share if key[0] == _NEGATIVE else 1.0
            weights[key] = weight * share
        for key, weight in in_title.items():
            weights[key] = max(weights.get(key, 0.0), weight * vocab.title_multiplier)
        topic_scores = dict.fromkeys(TOPICS, 0.0)
        general = negative = 0.0
        for (group, _), weight in weights.items():
            if group == _GENERAL:
                general += weight
            elif group == _NEGATIVE:
                negative += weight
            else:
                topic_scores[group] += weight
        if not any(group != _NEGATIVE for group, _ in in_title):
            # A technique named only in the abstract is often a tool the paper uses
            # ("fine-tuned with LoRA"), not what it contributes.
            topic_scores = {t: s * vocab.abstract_only_share for t, s in topic_scores.items()}
        topic_scores = {t: min(s, vocab.topic_cap) for t, s in topic_scores.items()}
        general = min(general, vocab.general_cap)
        negative = min(negative, vocab.negative_cap)
        ranked = sorted(topic_scores.values(), reverse=True)
        score = ranked[0] + vocab.second_topic_share * ranked[1] + general - negative
        return Evidence(topic_scores, general, negative, score)

    def classify(self, title: str, abstract: str) -> Classification:
        vocab = self.vocabulary
        evidence = self.evidence(title, abstract)
        relevance = 1.0 / (1.0 + math.exp(-(evidence.score - vocab.bias) / vocab.scale))
        topics = tuple(t for t in TOPICS if evidence.topic_scores[t] >= vocab.tag_min)
        return Classification(round(relevance, 4), topics)

    def classify_paper(self, paper: Paper) -> Classification:
        return self.classify(paper.title, paper.abstract)


@dataclass(frozen=True, slots=True)
class Quality:
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int


def measure(predicted: Iterable[bool], actual: Iterable[bool]) -> Quality:
    tp = fp = fn = 0
    for guess, truth in zip(predicted, actual, strict=True):
        tp += guess and truth
        fp += guess and not truth
        fn += truth and not guess
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Quality(precision, recall, f1, tp, fp, fn)
