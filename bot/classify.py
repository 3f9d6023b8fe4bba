"""Relevance scoring and topic tagging, offline, by a model learned from labelled days.

The model is a logistic regression over the features of bot/features.py, trained by
`python -m bot train-classifier` (bot/training.py) and shipped as a JSON file of
weights, so scoring is a dictionary lookup per feature: no heavy dependency, no
download. Its decision threshold was chosen by cross-validation; stored scores are
shifted so that 0.5 is that threshold, which keeps RELEVANCE_THRESHOLD and a
subscription's min_score meaning "how sure", whatever model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from bot.features import PaperFeatures, extract_features
from bot.models import Classification, Paper
from bot.vocabulary import TOPICS, Vocabulary, load_vocabulary

__all__ = ["TOPICS", "Classifier", "ModelFileError", "RelevanceModel", "load_classifier"]

MODEL_FORMAT = 1
REASON_ITEMS = 3


class ModelFileError(Exception):
    """The relevance model file is missing or not a model this code can read."""


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@dataclass(frozen=True, slots=True)
class RelevanceModel:
    weights: dict[str, float]
    intercept: float
    threshold: float  # probability at which a paper counts as relevant
    version: str
    metadata: dict = field(default_factory=dict)
    topics: dict[str, dict] = field(default_factory=dict)  # topic -> {intercept, weights}

    def to_json(self) -> str:
        body = {
            "format": MODEL_FORMAT,
            "intercept": round(self.intercept, 6),
            "threshold": round(self.threshold, 6),
            "metadata": self.metadata,
            "topics": {
                t: {"intercept": m["intercept"], "weights": dict(sorted(m["weights"].items()))}
                for t, m in sorted(self.topics.items())
            },
            "weights": {k: round(v, 5) for k, v in sorted(self.weights.items())},
        }
        return json.dumps(body, indent=0, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, data: bytes, source: str) -> RelevanceModel:
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict) or raw.get("format") != MODEL_FORMAT:
                raise ValueError(f"not a relevance model of format {MODEL_FORMAT}")
            weights = {str(k): float(v) for k, v in raw["weights"].items()}
            topics = {
                str(t): {
                    "intercept": float(m["intercept"]),
                    "weights": {str(k): float(v) for k, v in m["weights"].items()},
                }
                for t, m in raw.get("topics", {}).items()
            }
            threshold = float(raw["threshold"])
            if not 0.0 < threshold < 1.0:
                raise ValueError("threshold must be between 0 and 1")
            return cls(
                weights=weights,
                intercept=float(raw["intercept"]),
                threshold=threshold,
                version="lr-" + hashlib.sha256(data).hexdigest()[:12],
                metadata=dict(raw.get("metadata", {})),
                topics=topics,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problem = str(exc) if isinstance(exc, ValueError) else f"missing or bad field {exc}"
            raise ModelFileError(f"{source}: not a usable relevance model ({problem})") from None

    def margin(self, features: PaperFeatures) -> float:
        weights = self.weights
        return self.intercept + sum(
            weights.get(name, 0.0) * value for name, value in features.values.items()
        )

    def probability(self, features: PaperFeatures) -> float:
        return _sigmoid(self.margin(features))

    def relevance(self, features: PaperFeatures) -> float:
        """The probability shifted so that the model's decision threshold sits at 0.5."""
        return _sigmoid(self.margin(features) - _logit(self.threshold))

    def likeliest_topic(self, features: PaperFeatures) -> str | None:
        """The topic whose model is surest, for a relevant paper no vocabulary phrase tags."""
        scores = {
            topic: m["intercept"]
            + sum(m["weights"].get(name, 0.0) * v for name, v in features.values.items())
            for topic, m in self.topics.items()
        }
        return max(scores, key=lambda t: scores[t]) if scores else None

    def reason(self, features: PaperFeatures, relevant: bool) -> str:
        """The strongest evidence for the decision, grouped by where it was found:
        'title: speculative decoding · abstract: 2.1x faster, kv cache'."""
        sign = 1.0 if relevant else -1.0
        contributions = sorted(
            (
                (sign * self.weights.get(name, 0.0) * value, name)
                for name, value in features.values.items()
            ),
            reverse=True,
        )
        by_field: dict[str, list[str]] = {}
        chosen = 0
        for contribution, name in contributions:
            if contribution <= 0 or chosen == REASON_ITEMS:
                break
            where, _, words = features.evidence[name].partition(": ")
            taken = by_field.setdefault(where, [])
            if any(words in t or t in words for t in taken):
                continue  # "kv cache" after "kv cache compression" says nothing new
            taken.append(words)
            chosen += 1
        text = " · ".join(f"{where}: {', '.join(words)}" for where, words in by_field.items())
        return text if relevant or not text else "against: " + text


def load_model(path: Path | None = None) -> RelevanceModel:
    source = str(path) if path else "bot/data/relevance-model.json"
    try:
        if path is None:
            data = (resources.files("bot") / "data" / "relevance-model.json").read_bytes()
        else:
            data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(
            f"{source}: cannot read the relevance model ({exc.strerror})"
        ) from None
    return RelevanceModel.from_json(data, source)


class Classifier:
    """The learned model decides relevance; the vocabulary supplies features and topic tags."""

    def __init__(self, model: RelevanceModel, vocabulary: Vocabulary) -> None:
        self.model = model
        self.vocabulary = vocabulary

    @property
    def version(self) -> str:
        return f"{self.model.version}+{self.vocabulary.version}"

    def features(self, title: str, abstract: str) -> PaperFeatures:
        return extract_features(title, abstract, self.vocabulary)

    def classify(self, title: str, abstract: str) -> Classification:
        features = self.features(title, abstract)
        relevance = self.model.relevance(features)
        relevant = relevance >= 0.5
        topics = self._topics(features, relevant)
        return Classification(round(relevance, 4), topics, self.model.reason(features, relevant))

    def topics(self, title: str, abstract: str, relevant: bool) -> tuple[str, ...]:
        return self._topics(self.features(title, abstract), relevant)

    def _topics(self, features: PaperFeatures, relevant: bool) -> tuple[str, ...]:
        """The vocabulary's tags; a relevant paper it leaves untagged gets the likeliest
        topic of the learned topic models, so every relevant paper can match a filter."""
        tagged = self.vocabulary.topics_from(features.title_matches, features.abstract_matches)
        if tagged or not relevant:
            return tagged
        likeliest = self.model.likeliest_topic(features)
        return (likeliest,) if likeliest else ()

    def classify_paper(self, paper: Paper) -> Classification:
        return self.classify(paper.title, paper.abstract)


def load_classifier(
    vocabulary_path: Path | None = None, model_path: Path | None = None
) -> Classifier:
    return Classifier(load_model(model_path), load_vocabulary(vocabulary_path))


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
    return quality_from_counts(tp, fp, fn)


def quality_from_counts(tp: int, fp: int, fn: int) -> Quality:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Quality(precision, recall, f1, tp, fp, fn)
