"""Digests for a terminal and the curated list's Markdown format."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from bot.classify import load_classifier
from bot.digests.export import digest_for_day, export_markdown
from bot.digests.terminal import render_terminal
from bot.models import DigestDay
from bot.pipeline import classify_pending
from bot.store import Store
from tests.helpers import fixture_papers, make_paper

THRESHOLD = 0.5

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


async def test_digest_lists_the_days_relevant_papers_best_first(store: Store) -> None:
    await store.upsert_papers(fixture_papers("2025-11-12") + fixture_papers("2025-10-03"))
    await classify_pending(store, load_classifier())
    digest = await digest_for_day(store, date(2025, 11, 12), THRESHOLD)
    assert len(digest.papers) >= 10
    scores = [p.relevance for p in digest.papers]
    assert scores == sorted(scores, reverse=True)
    assert all(p.announced == date(2025, 11, 12) for p in digest.papers)
    assert all(p.topics for p in digest.papers)
    ids = {p.arxiv_id for p in digest.papers}
    assert {"2511.08360", "2511.07842", "2511.08003"} <= ids  # labelled relevant that day
    text = render_terminal(digest)
    assert text.startswith("Wednesday, November 12, 2025:")
    assert "Extreme Model Compression with Structured Sparsity at Low Precision" in text
    assert "https://arxiv.org/abs/2511.08360" in text


async def test_empty_day_says_so(store: Store) -> None:
    digest = await digest_for_day(store, date(2025, 11, 15), THRESHOLD)
    assert "No relevant papers" in render_terminal(digest)


async def test_markdown_export_keeps_the_curated_list_format(store: Store, tmp_path: Path) -> None:
    await store.upsert_papers(
        [
            make_paper(
                "2511.00001",
                "Quantized [LoRA] <adapters>",
                "We quantize LoRA & adapters < 1%.",
                day=date(2025, 11, 12),
            ),
            make_paper(
                "2511.00002",
                "4-bit quantization of LLMs",
                "We quantize weights.",
                day=date(2025, 11, 10),
            ),
            make_paper("2511.00003", "A dataset of poems", "Poetry.", day=date(2025, 11, 11)),
        ]
    )
    await classify_pending(store, load_classifier())
    out = tmp_path / "export" / "papers.md"
    count = await export_markdown(store, out, THRESHOLD)
    text = out.read_text()
    assert count == 2
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings == ["November 12, 2025", "November 11, 2025", "November 10, 2025"]
    day_11 = text.split("## November 11, 2025")[1].split("## ")[0]
    assert day_11.strip() == "No new papers on arXiv"
    assert (
        "[Quantized \\[LoRA\\] &lt;adapters&gt;](https://arxiv.org/pdf/2511.00001.pdf) "
        "<details><summary>Summary</summary><p>\n"
        "We quantize LoRA &amp; adapters &lt; 1%.\n</p></details>"
    ) in text
    assert "[4-bit quantization of LLMs](https://arxiv.org/pdf/2511.00002.pdf)" in text
    assert "poems" not in text


async def test_latex_is_rendered_where_shown_and_stored_as_sent(
    store: Store, tmp_path: Path
) -> None:
    title = "$D^3$-RSMDE: 40$\\times$ Faster Depth \\textbf{Estimation}"
    abstract = "We quantize depth models to 4 bits, retaining 95.18\\% of accuracy at 3x speed."
    await store.upsert_papers([make_paper("2511.00009", title, abstract, day=date(2025, 11, 12))])
    await classify_pending(store, load_classifier())
    stored = await store.get_paper("2511.00009")
    assert stored is not None and stored.title == title and stored.abstract == abstract
    shown = render_terminal(DigestDay(stored.announced, [stored]))
    assert "D³-RSMDE: 40× Faster Depth Estimation" in shown
    out = tmp_path / "papers.md"
    await export_markdown(store, out, 0.0)
    exported = out.read_text()
    # GitHub renders $...$ math, so the export keeps it; the rest is rendered.
    assert "[$D^3$-RSMDE: 40$\\times$ Faster Depth Estimation](https://arxiv.org/pdf/" in exported
    assert "retaining 95.18% of accuracy" in exported
