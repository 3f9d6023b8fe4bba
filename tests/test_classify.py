"""The offline classifier against the hand-labelled days, and its vocabulary file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.classify import TOPICS, Classifier, load_vocabulary, measure
from bot.config import Settings
from bot.pipeline import classify_pending
from bot.store import Store
from tests.helpers import fixture_labels, fixture_papers, make_paper

DAYS = ("2025-10-03", "2025-11-12")


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(load_vocabulary())


@pytest.mark.parametrize("day", DAYS)
def test_quality_on_labelled_day(
    classifier: Classifier, day: str, settings: Settings, report_line: Callable[[str], None]
) -> None:
    labels = fixture_labels(day)
    papers = fixture_papers(day)
    predicted = [
        classifier.classify_paper(p).relevance >= settings.relevance_threshold for p in papers
    ]
    quality = measure(predicted, [labels[p.arxiv_id][0] for p in papers])
    report_line(
        f"classifier on {day}: precision {quality.precision:.2f}, recall {quality.recall:.2f},"
        f" F1 {quality.f1:.2f} ({quality.true_positives} TP, {quality.false_positives} FP,"
        f" {quality.false_negatives} FN of {len(papers)} papers)"
    )
    # The README reports 0.81 and 0.84; this floor catches a vocabulary edit that breaks it.
    assert quality.f1 >= 0.8


@pytest.mark.parametrize("day", DAYS)
def test_topics_of_relevant_papers_match_the_labels(
    classifier: Classifier, day: str, report_line: Callable[[str], None]
) -> None:
    labels = fixture_labels(day)
    hits = total = 0
    for paper in fixture_papers(day):
        relevant, tags = labels[paper.arxiv_id]
        if not relevant:
            continue
        predicted = set(classifier.classify_paper(paper).topics)
        assert predicted <= set(TOPICS)
        total += 1
        hits += bool(predicted & set(tags))
    report_line(f"topics on {day}: {hits}/{total} relevant papers share a tag with the label")
    assert hits / total >= 0.7


def test_scores_are_probabilities_and_topics_follow_the_text(classifier: Classifier) -> None:
    quantized = classifier.classify(
        "GPTQ-style 4-bit post-training quantization for LLMs",
        "We quantize weights to 4 bits and cut memory by 3x with no accuracy loss.",
    )
    unrelated = classifier.classify(
        "A benchmark of clinical question answering agents",
        "We release a dataset of patient questions and evaluate agentic systems.",
    )
    assert 0.0 <= unrelated.relevance < 0.5 < quantized.relevance <= 1.0
    assert "quantization" in quantized.topics
    # Vector quantization in generative models is not model compression.
    vq = classifier.classify(
        "Vector-quantized tokenizers for image generation",
        "We train a VQ-VAE whose vector quantization codebook yields better images.",
    )
    assert vq.relevance < 0.5


def test_vocabulary_file_can_be_overridden(tmp_path: Path) -> None:
    custom = tmp_path / "vocab.toml"
    custom.write_text('[scoring]\nbias = 1.0\nscale = 1.0\n[topics.hardware]\n"zebrafish" = 5.0\n')
    classifier = Classifier(load_vocabulary(custom))
    assert classifier.version != Classifier(load_vocabulary()).version
    result = classifier.classify("Zebrafish chips", "Nothing else.")
    assert result.relevance > 0.9 and result.topics == ("hardware",)
    with pytest.raises(ValueError, match="unknown topics"):
        bad = tmp_path / "bad.toml"
        bad.write_text('[topics.astrology]\n"stars" = 1.0\n')
        load_vocabulary(bad)


async def test_a_new_vocabulary_rescores_stored_papers(store: Store, tmp_path: Path) -> None:
    await store.upsert_papers([make_paper("2511.00010", "Zebrafish chips")])
    default = Classifier(load_vocabulary())
    assert await classify_pending(store, default) == 1
    assert await classify_pending(store, default) == 0  # already scored by this version
    paper = await store.get_paper("2511.00010")
    assert paper is not None and paper.relevance is not None and paper.relevance < 0.5
    custom = tmp_path / "vocab.toml"
    custom.write_text('[scoring]\nbias = 1.0\n[topics.hardware]\n"zebrafish" = 5.0\n')
    assert await classify_pending(store, Classifier(load_vocabulary(custom))) == 1
    paper = await store.get_paper("2511.00010")
    assert paper is not None and paper.relevance > 0.9 and paper.topics == ("hardware",)
