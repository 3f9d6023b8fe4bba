"""What the relevance model sees of a paper: sparse features, each with readable evidence.

Training (bot/training.py) and scoring (bot/classify.py) call the same function, so a
feature means the same thing in both. Every feature carries the words that produced it,
so the strongest ones can be shown to readers as the reason for a pick.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bot.vocabulary import GENERAL, NEGATIVE, TOPICS, Vocabulary, normalize

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_STOPWORDS = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "than",
        "that",
        "the",
        "their",
        "these",
        "this",
        "to",
        "using",
        "via",
        "we",
        "which",
        "with",
    )
)
# A quantified cost claim: "2.1x faster", "40% fewer tokens", "reduces latency by".
_CLAIM = re.compile(
    r"\d+(?:\.\d+)?\s*(?:×|x|times)\s*(?:faster|speed ?ups?|fewer|less|smaller|cheaper|lower"
    r"|reduction|higher throughput|throughput|compression|acceleration)"
    r"|speed ?ups? of (?:up to )?\d+(?:\.\d+)?\s*(?:×|x)?"
    r"|\d+(?:\.\d+)?\s*%\s*(?:fewer|less|lower|reduction"
    r"|of the (?:compute|cost|parameters|flops|memory))"
    r"|reduc\w* (?:the )?(?:latency|memory|flops|compute|inference cost|training cost"
    r"|parameters|energy|tokens)\w* by",
    re.IGNORECASE,
)
_TITLE_FACTOR = re.compile(r"\d+(?:\.\d+)?\s*(?:×|x)(?![\w])", re.IGNORECASE)


Matches = dict[tuple[str, str], float]


@dataclass(frozen=True, slots=True)
class PaperFeatures:
    values: dict[str, float]
    evidence: dict[str, str]  # feature name -> "title: speculative decoding"
    title_matches: Matches  # the vocabulary's phrases, kept for topic tags
    abstract_matches: Matches


def _grams(words: list[str]) -> dict[str, str]:
    """Unigrams and bigrams (not both stopwords), keyed by feature suffix, valued by text."""
    grams: dict[str, str] = {}
    for i, word in enumerate(words):
        if word not in _STOPWORDS:
            grams[word] = word
        if i + 1 < len(words) and not (word in _STOPWORDS and words[i + 1] in _STOPWORDS):
            grams[f"{word}_{words[i + 1]}"] = f"{word} {words[i + 1]}"
    return grams


def _block(prefix: str, field: str, text: str, values: dict, evidence: dict) -> None:
    grams = _grams(_WORD.findall(normalize(text)))
    weight = 1.0 / math.sqrt(len(grams)) if grams else 0.0  # L2-normalised per field
    for key, words in grams.items():
        values[prefix + key] = weight
        evidence[prefix + key] = f"{field}: {words}"


def extract_features(title: str, abstract: str, vocabulary: Vocabulary) -> PaperFeatures:
    values: dict[str, float] = {}
    evidence: dict[str, str] = {}
    _block("t:", "title", title, values, evidence)
    _block("a:", "abstract", abstract, values, evidence)

    # The vocabulary's phrases grouped by topic: which topic the title names, and how much
    # of it the abstract holds. The model learns how much each is worth.
    in_title = vocabulary.matches(title)
    in_abstract = vocabulary.matches(abstract)

    def as_written(phrase: str, text: str) -> str:
        """A stem like "quantiz*" shown as the paper wrote it ("quantization")."""
        if not phrase.endswith("*"):
            return phrase
        found = re.search(r"(?<![\w])" + re.escape(phrase[:-1]) + r"\w*", normalize(text))
        return found.group(0) if found else phrase[:-1]

    for group in (*TOPICS, GENERAL, NEGATIVE):
        title_hits = {p: w for (g, p), w in in_title.items() if g == group}
        abstract_hits = {p: w for (g, p), w in in_abstract.items() if g == group}
        if title_hits:
            phrase = max(title_hits, key=lambda p: title_hits[p])
            values[f"vt:{group}"] = title_hits[phrase] / 3.0
            evidence[f"vt:{group}"] = f"title: {as_written(phrase, title)}"
        if abstract_hits:
            phrase = max(abstract_hits, key=lambda p: abstract_hits[p])
            values[f"va:{group}"] = min(sum(abstract_hits.values()), 7.0) / 5.0
            evidence[f"va:{group}"] = f"abstract: {as_written(phrase, abstract)}"

    claims = _CLAIM.findall(" ".join(abstract.split()))
    if claims:
        values["claim:abstract"] = min(len(claims), 3) / 2.0
        evidence["claim:abstract"] = f"abstract: {claims[0]}"
    title_claim = _CLAIM.search(title) or _TITLE_FACTOR.search(title)
    if title_claim:
        values["claim:title"] = 1.0
        evidence["claim:title"] = f"title: {title_claim.group(0)}"
    return PaperFeatures(values, evidence, in_title, in_abstract)
