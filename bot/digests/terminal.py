"""A day's digest for a terminal: `python -m bot digest`."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from bot.digests.render import explain, first_authors, title_of
from bot.extractive import display_summary
from bot.models import DigestDay, Paper, SummarySource


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
        lines.append(f"{rank:>2}. {title_of(paper)}")
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


def render_search_results(papers: Sequence[Paper], some_words_only: bool) -> str:
    """`python -m bot search`: a numbered line per paper, then authors, day and link."""
    lines = ["No paper has every word; papers with some of them:"] if some_words_only else []
    for rank, paper in enumerate(papers, 1):
        topics = f" [{', '.join(paper.topics)}]" if paper.topics else ""
        lines.append(f"{rank:>2}. {title_of(paper)}{topics}")
        lines.append(f"    {first_authors(paper)} | {paper.announced} | {paper.abs_url}")
    return "\n".join(lines)
