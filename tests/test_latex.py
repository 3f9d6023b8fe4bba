"""LaTeX shown as text people read, from real titles and abstracts, and malformed input."""

from __future__ import annotations

import json

import pytest

from bot.latex import readable, readable_outside_math
from tests.helpers import FIXTURES


def fixture_row(arxiv_id: str) -> dict:
    for path in sorted((FIXTURES / "arxiv").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["id"] == arxiv_id:
                return row
    raise KeyError(arxiv_id)


@pytest.mark.parametrize(
    ("arxiv_id", "expected"),
    [
        ("2603.16362", "D³-RSMDE: 40× Faster and High-Fidelity Remote Sensing"),
        ("2506.14158", "S⁴C: Speculative Sampling with Syntactic and Semantic Coherence"),
        ("2601.11214", "T*: Progressive Block Scaling for MDM"),
        ("2509.12810", "H²R: Hierarchical Hindsight Reflection"),
        ("2511.07719", "detection of CH₄ point sources"),
        ("2603.16822", "SurgΣ: A Spectrum of Large-Scale Multimodal Data"),
        ("2510.02194", "UpSafe°C: Upcycling for Controllable Safety"),
    ],
)
def test_real_titles_read_as_text(arxiv_id: str, expected: str) -> None:
    shown = readable(" ".join(fixture_row(arxiv_id)["title"].split()))
    assert expected in shown
    assert "$" not in shown and "\\" not in shown


def test_formatting_commands_and_percent_in_abstracts() -> None:
    text = (
        "the \\textbf{I}mportance and \\textbf{D}iversity Pruner (\\textbf{IDPruner})"
        " retains 95.18\\% of baseline performance"
    )
    assert readable(text) == (
        "the Importance and Diversity Pruner (IDPruner) retains 95.18% of baseline performance"
    )
    for row in (json.loads(x) for x in (FIXTURES / "arxiv" / "2025-11-12.jsonl").open()):
        shown = readable(row["summary"])
        assert "\\textbf" not in shown and "\\%" not in shown and shown.strip()


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("unbalanced {brace and more", "{brace"),
        ("a lone $ sign costs nothing", "$ sign"),
        ("closing } without opening", "}"),
        ("\\unknowncommand{x} stays readable", "stays readable"),
        ("$$ empty math and $x^{2}$", "empty math and x"),
        ("a trailing backslash \\", "a trailing backslash"),
    ],
)
def test_malformed_latex_comes_back_readable_and_never_loses_text(text: str, kept: str) -> None:
    shown = readable(text)
    assert kept in shown
    assert len(shown.split()) >= len(text.split()) - 2  # nothing but markup was dropped


def test_the_markdown_export_keeps_math_github_renders() -> None:
    text = "\\textbf{Fast} $O(n^2)$ attention at 95\\% recall"
    assert readable_outside_math(text) == "Fast $O(n^2)$ attention at 95% recall"
    assert readable("plain text, no markup") == "plain text, no markup"


def test_no_abstract_loses_its_text() -> None:
    """A bare % starts a comment in LaTeX; in an abstract it means per cent. Rendering
    must keep (nearly) every word of every real abstract."""
    checked = 0
    for path in sorted((FIXTURES / "arxiv").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            abstract = json.loads(line)["summary"]
            words = len(abstract.split())
            assert len(readable(abstract).split()) >= 0.9 * words, abstract[:80]
            checked += 1
    assert checked == 1341
    assert readable("a 11.85% reduction, R&D on issue #3 \\textbf{now}") == (
        "a 11.85% reduction, R&D on issue #3 now"
    )
