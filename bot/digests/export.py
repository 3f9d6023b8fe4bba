"""The archive in the format of the hand-curated list this product grew from.

The Markdown export keeps the format of "Daily arXiv papers about efficiency": a
heading per day, linked titles, the summary behind "Summary", so readers of the list
find it unchanged.
"""

from __future__ import annotations

import asyncio
import html
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

from bot.latex import readable_outside_math
from bot.models import DigestDay, Paper
from bot.store import Store

MARKDOWN_HEADER = """# Daily arXiv papers about efficiency

Papers about making deep learning more efficient (quantization, pruning,
distillation, efficient architectures, serving, training efficiency, hardware
and optimization), picked from arXiv's cs.AI, cs.CL, cs.ET, cs.LG, cs.NE and
stat.ML listings. Click "Summary" to reveal a summary.

Disclaimer: not affiliated with arXiv.
"""


async def digest_for_day(store: Store, day: date, threshold: float) -> DigestDay:
    return DigestDay(day, await store.relevant_papers(day, day, threshold))


async def latest_listing_day(store: Store) -> date | None:
    span = await store.listing_days()
    return span[1] if span else None


def markdown_link_text(title: str) -> str:
    return html.escape(title, quote=False).replace("[", "\\[").replace("]", "\\]")


def render_markdown_day(day: date, papers: Iterable[Paper]) -> str:
    parts = [f"## {day:%B} {day.day}, {day:%Y}\n"]
    body = []
    for paper in papers:
        if paper.summary:  # the curated list's three "* " bullets
            summary = "\n".join(
                "* " + html.escape(readable_outside_math(b), quote=False)
                for b in paper.summary.bullets
            )
        else:
            summary = html.escape(readable_outside_math(paper.abstract), quote=False)
        body.append(
            f"[{markdown_link_text(readable_outside_math(paper.title))}]({paper.pdf_url}) "
            f"<details><summary>Summary</summary><p>\n{summary}\n</p></details>\n"
        )
    parts.append("\n".join(body) if body else "No new papers on arXiv\n")
    return "\n".join(parts)


def render_markdown(papers: Iterable[Paper], first: date, last: date) -> str:
    """Every calendar day from `last` back to `first`, as in the curated list."""
    by_day: dict[date, list[Paper]] = defaultdict(list)
    for paper in papers:
        by_day[paper.announced].append(paper)
    sections = [MARKDOWN_HEADER]
    day = last
    while day >= first:
        sections.append(render_markdown_day(day, by_day.get(day, ())))
        day -= timedelta(days=1)
    return "\n".join(sections)


async def export_markdown(store: Store, path: Path, threshold: float) -> int:
    """Write the whole archive; returns the number of papers written."""
    span = await store.listing_days()
    if span is None:
        text, count = MARKDOWN_HEADER, 0
    else:
        papers = await store.relevant_papers(span[0], span[1], threshold)
        text, count = render_markdown(papers, span[0], span[1]), len(papers)
    await asyncio.to_thread(_write_atomically, path, text)
    return count


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
