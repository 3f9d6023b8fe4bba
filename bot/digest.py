"""Digests: which relevant papers a day brought, rendered for a terminal or as the curated list.

The Markdown export keeps the format of the hand-curated list "Daily arXiv papers
about efficiency" this product grew from, so readers of the list find it unchanged.
"""

from __future__ import annotations

import asyncio
import html
import textwrap
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

from bot.models import DigestDay, Paper, SummarySource
from bot.store import Store
from bot.summarize import display_summary

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


def first_authors(paper: Paper, count: int = 3) -> str:
    names = list(paper.authors[:count])
    if len(paper.authors) > count:
        names.append("et al.")
    return ", ".join(names)


def explain(paper: Paper) -> str:
    """Why the paper was picked (or not): its strongest evidence, or the judge's words,
    and whether the judge was asked but could not decide."""
    if not paper.reason:
        return ""
    if (paper.decided_by or "").startswith("model; judge failed"):
        return f"{paper.reason} (the judge could not decide; the offline model did)"
    return paper.reason


def render_terminal(digest: DigestDay, width: int = 100, explain_picks: bool = False) -> str:
    heading = f"{digest.day:%A, %B} {digest.day.day}, {digest.day:%Y}"
    if not digest.papers:
        return f"{heading}\nNo relevant papers for this day.\n"
    topics = sorted({t for p in digest.papers for t in p.topics})
    lines = [
        f"{heading}: {len(digest.papers)} paper{'s' * (len(digest.papers) != 1)}"
        + (f" ({', '.join(topics)})" if topics else ""),
        "",
    ]
    for rank, paper in enumerate(digest.papers, 1):
        lines.append(f"{rank:>2}. {paper.title}")
        indent = " " * 4
        details = [first_authors(paper), paper.abs_url]
        if paper.topics:
            details.insert(1, ", ".join(paper.topics))
        lines.append(indent + " | ".join(details))
        lines.append(indent + f"relevance {paper.relevance:.2f}")
        if explain_picks and paper.reason:
            lines.extend(
                textwrap.wrap(
                    f"why: {explain(paper)}", width, initial_indent=indent, subsequent_indent=indent
                )
            )
        summary = display_summary(paper)
        label = "TL;DR" if summary.source is SummarySource.MODEL else "TL;DR (from the abstract)"
        lines.extend(
            textwrap.wrap(
                f"{label}: {summary.tldr}", width, initial_indent=indent, subsequent_indent=indent
            )
        )
        for bullet in summary.bullets:
            lines.extend(
                textwrap.wrap(
                    bullet, width, initial_indent=indent + "- ", subsequent_indent=indent + "  "
                )
            )
        lines.append("")
    return "\n".join(lines)


def _markdown_link_text(title: str) -> str:
    return html.escape(title, quote=False).replace("[", "\\[").replace("]", "\\]")


def render_markdown_day(day: date, papers: Iterable[Paper]) -> str:
    parts = [f"## {day:%B} {day.day}, {day:%Y}\n"]
    body = []
    for paper in papers:
        if paper.summary:  # the curated list's three "* " bullets
            summary = "\n".join("* " + html.escape(b, quote=False) for b in paper.summary.bullets)
        else:
            summary = html.escape(paper.abstract, quote=False)
        body.append(
            f"[{_markdown_link_text(paper.title)}]({paper.pdf_url}) "
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
