"""The summary without a model, on every relevant paper of the labelled days."""

from __future__ import annotations

import re

import pytest

from bot.extractive import extractive_summary, shorten
from bot.models import SummarySource
from bot.training import LabelledPaper, load_labelled_days
from tests.helpers import FIXTURES, make_paper

RELEVANT = [p for d in load_labelled_days(FIXTURES / "arxiv") for p in d.papers if p.relevant]
ENUMERATION = re.compile(r"^\s*(?:\(?\d{1,2}\)|\(?[ivx]{1,4}\)|\([a-z]\)|[a-z]\)|\d{1,2}\.\s)")
NUMBER_THEN_UNIT = re.compile(r"(\d[\d.,]*)\s+(%|×|x\b|times\b)")


def summary_of(labelled: LabelledPaper):
    return extractive_summary(make_paper(labelled.arxiv_id, labelled.title, labelled.abstract))


def test_all_124_relevant_papers_are_covered() -> None:
    assert len(RELEVANT) == 124


@pytest.mark.parametrize("labelled", RELEVANT, ids=[p.arxiv_id for p in RELEVANT])
def test_three_distinct_whole_statements_and_a_tldr_of_its_own(labelled: LabelledPaper) -> None:
    summary = summary_of(labelled)
    bullets = summary.bullets
    assert summary.source is SummarySource.EXTRACTIVE
    assert len(bullets) == 3 and len(set(bullets)) == 3
    assert summary.tldr not in bullets
    for bullet in (*bullets, summary.tldr):
        assert not ENUMERATION.match(bullet), bullet
        assert not bullet.rstrip("…").endswith(":"), bullet
        assert "\\textbf" not in bullet and "\\%" not in bullet  # LaTeX rendered
        assert len(bullet.split()) >= 5, bullet
        if bullet.endswith("…"):  # clipped: never a number without its unit
            kept = bullet[:-1]
            assert not re.search(r"\d$", kept) or not NUMBER_THEN_UNIT.search(
                labelled.abstract[len(kept) - 20 :]
            )


def test_picks_what_how_and_gain_from_cues() -> None:
    paper = make_paper(
        "2511.00001",
        "Fast sparse attention",
        "Attention is slow on long inputs. In this paper, we propose FlashSparse, a sparse "
        "attention kernel that skips blocks, which we tune per layer. It works by skipping "
        "blocks whose scores are negligible. Experiments cover three model sizes. "
        "FlashSparse is 3.1x faster at 64k tokens with no loss in accuracy. "
        "Code is available at https://github.com/example/flashsparse.",
    )
    summary = extractive_summary(paper)
    assert summary.tldr == (
        "FlashSparse, a sparse attention kernel that skips blocks, which we tune per layer"
    )
    assert summary.bullets == (
        "In this paper, we propose FlashSparse, a sparse attention kernel that skips blocks, "
        "which we tune per layer.",
        "It works by skipping blocks whose scores are negligible.",
        "FlashSparse is 3.1x faster at 64k tokens with no loss in accuracy.",
    )


def test_an_enumeration_is_kept_whole_and_a_tldr_is_shortened() -> None:
    paper = make_paper(
        "2511.00002",
        "Three tricks",
        "Decoding is slow for long outputs in large models. We introduce Trio, a decoder "
        "built from three key designs. (1) Early exit stops easy tokens after four layers. "
        "(2) A draft head proposes five tokens at once. (3) A cache reuses verified prefixes. "
        "Together they make decoding 2.4x faster on eight benchmarks.",
    )
    summary = extractive_summary(paper)
    assert summary.bullets[1] == (
        "Early exit stops easy tokens after four layers; A draft head proposes five tokens at "
        "once; A cache reuses verified prefixes."
    )
    assert summary.bullets[2] == "Together they make decoding 2.4x faster on eight benchmarks."
    assert shorten(
        "We show that magnitude pruning harms the reasoning of large language models, "
        "which we then fix with a reconstruction loss."
    ) == ("Magnitude pruning harms the reasoning of large language models")
