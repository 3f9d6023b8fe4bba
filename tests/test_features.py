"""What the relevance model sees of a paper, and the vocabulary under it: fast unit tests."""

from __future__ import annotations

from bot.classify import load_classifier
from bot.features import extract_features
from bot.vocabulary import load_vocabulary

VOCABULARY = load_vocabulary()


def test_title_and_abstract_are_separate_fields_with_readable_evidence() -> None:
    features = extract_features(
        "Speculative decoding for LLM serving",
        "Our sampler is 2.1x faster and uses 40% fewer tokens.",
        VOCABULARY,
    )
    values, evidence = features.values, features.evidence
    assert "t:speculative_decoding" in values and "a:speculative_decoding" not in values
    assert evidence["t:speculative_decoding"] == "title: speculative decoding"
    assert evidence["claim:abstract"] == "abstract: 2.1x faster"
    assert values["claim:abstract"] == 1.0  # two claims, counted up to three
    assert evidence["vt:inference-serving"] == "title: speculative decoding"


def test_stems_are_shown_as_the_paper_wrote_them() -> None:
    features = extract_features("Quantized transformers", "We study quantization.", VOCABULARY)
    assert features.evidence["vt:quantization"] == "title: quantized"
    assert features.evidence["va:quantization"] == "abstract: quantization"


def test_off_topic_phrases_mask_their_words() -> None:
    found = VOCABULARY.matches("vector quantized tokenizers and low-rank adaptation")
    groups = {group for group, _ in found}
    assert ("negative", "vector quantiz*") in found
    assert "quantization" not in groups  # "quantized" sits inside "vector quantized"
    assert ("parameter-efficient", "low rank adaptation") in found
    assert any(p == "low rank" for _, p in found)  # overlapping shorter phrase counts too


def test_a_relevant_paper_without_vocabulary_tags_gets_a_learned_topic() -> None:
    classifier = load_classifier()
    tags = classifier.topics("Cheaper thinking", "We shorten chains of thought.", relevant=True)
    assert len(tags) == 1
    assert classifier.topics("Cheaper thinking", "We shorten chains.", relevant=False) == ()
