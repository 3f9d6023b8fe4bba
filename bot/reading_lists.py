"""Reading lists: papers a person (or a channel) saved, kept in the format of the monthly
lists readers already keep by hand.

That format, from the lists this product grew from: a `# Papers` page, a `## YYYY-MM`
heading per month (the month of the paper's first version), and per paper its linked
title and a short abstract inside `<details>`, with an optional Notes block. Export
writes it; import reads it back, so people can bring the list they have.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from bot.arxiv_ids import parse_arxiv_id
from bot.digests.export import markdown_link_text
from bot.digests.render import escape, search_line
from bot.extractive import sentences_of
from bot.ingest import LookupReport
from bot.latex import readable
from bot.models import ListEntry, ListOwner, Paper, Subscription, SubscriptionStatus
from bot.store import Store
from bot.text import clip

LIST_TITLE = "# Papers"
SHORT_ABSTRACT_CHARS = 600
PAGE_SIZE = 5
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_ENTRY = re.compile(r"^\[(?P<title>.*)\]\((?P<url>[^()\s]+)\)")  # trailing text is fine
_LIST_MARKER = re.compile(r"^(?:[-*+]|\d+[.)])\s+")
_SUMMARY = re.compile(r"^<summary>(?P<summary>.*?)</summary>$")
_ONE_LINE_DETAILS = re.compile(
    r"^<details>\s*<summary>(?P<summary>.*?)</summary>(?P<body>.*?)</details>$"
)


class ReadingListError(ValueError):
    """Bad input; the message is meant for the person who typed it."""


def parse_month(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    if not _MONTH.match(text.strip()):
        raise ReadingListError(
            f"{clip(text.strip(), 20)!r} is not a month; use YYYY-MM, e.g. 2025-11."
        )
    return text.strip()


def month_of(paper: Paper) -> str:
    """The month of the paper's first version: where hand-kept lists file it."""
    return f"{paper.published:%Y-%m}"


def short_abstract(paper: Paper) -> str:
    """The model's TL;DR when the paper has one, else the abstract's first sentences
    (about two hundred characters' worth), LaTeX rendered."""
    if paper.summary is not None:
        return readable(paper.summary.tldr)
    chosen: list[str] = []
    for sentence in sentences_of(paper.abstract):
        chosen.append(sentence)
        if len(" ".join(chosen)) >= 200 or len(chosen) == 3:
            break
    return clip(" ".join(chosen) or readable(paper.title), SHORT_ABSTRACT_CHARS)


def _details(summary: str, text: str) -> list[str]:
    lines = ["<details>", f"<summary>{summary}</summary>"]
    if text:
        lines.append(html.escape(text, quote=False))
    return [*lines, "</details>"]


def render_reading_list(entries: Sequence[ListEntry]) -> str:
    """The list as Markdown: oldest month first, each month's papers in save order."""
    ordered = sorted(entries, key=lambda e: month_of(e.paper))  # stable: save order kept
    months = []
    for month, group in groupby(ordered, key=lambda e: month_of(e.paper)):
        blocks = []
        for entry in group:
            paper = entry.paper
            lines = [f"[{markdown_link_text(readable(paper.title))}]({paper.abs_url})"]
            lines += _details("Short abstract", short_abstract(paper))
            if entry.notes is not None:
                lines += _details("Notes", entry.notes)
            blocks.append("\n".join(lines) + "\n")
        months.append(f"## {month}\n\n" + "\n".join(blocks))
    return f"{LIST_TITLE}\n\n" + "\n\n".join(months)


# -- reading a list someone kept ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListedPaper:
    line: int
    arxiv_id: str
    notes: str | None


@dataclass(frozen=True, slots=True)
class RejectedLine:
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}: {clip(self.text, 80)}"


@dataclass(slots=True)
class ParsedList:
    papers: list[ListedPaper] = field(default_factory=list)
    rejected: list[RejectedLine] = field(default_factory=list)


def parse_reading_list(text: str) -> ParsedList:
    """Entries are the `[Title](link)` lines (a list marker before one is fine); a Notes
    block after one is kept with it. Month headings and short abstracts are not read: both
    come from the paper itself. A line that looks like an entry but is not one, and a
    `<details>` block that never closes, are rejected by number."""
    parsed = ParsedList()
    first_line: dict[str, int] = {}
    lines = text.splitlines()
    current: ListedPaper | None = None

    def finish() -> None:
        nonlocal current
        if current is not None:
            parsed.papers.append(current)
        current = None

    def entry(number: int, line: str) -> None:
        nonlocal current
        finish()
        match = _ENTRY.match(line)
        if match is None:
            parsed.rejected.append(RejectedLine(number, line, "not a [Title](link) line"))
            return
        found = parse_arxiv_id(match["url"])
        if found is None:
            parsed.rejected.append(RejectedLine(number, line, "not an arXiv link"))
            return
        arxiv_id = found[0]
        if arxiv_id in first_line:
            reason = f"arXiv:{arxiv_id} again (first on line {first_line[arxiv_id]})"
            parsed.rejected.append(RejectedLine(number, line, reason))
            return
        first_line[arxiv_id] = number
        current = ListedPaper(number, arxiv_id, None)

    def details(summary: str, body: str) -> None:
        nonlocal current
        if current is not None and summary.strip() == "Notes":
            current = ListedPaper(current.line, current.arxiv_id, html.unescape(body.strip()))

    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].strip()
        index += 1
        unmarked = _LIST_MARKER.sub("", line)
        if unmarked.startswith("["):
            entry(number, unmarked)
        elif line.startswith("<details>"):
            one_line = _ONE_LINE_DETAILS.match(line)
            if one_line:
                details(one_line["summary"], one_line["body"])
                continue
            head = line.removeprefix("<details>").strip()
            if not head and index < len(lines):
                head = lines[index].strip()
                index += 1
            summary = _SUMMARY.match(head)
            body: list[str] = [] if summary else [head]
            closed = False
            while index < len(lines):
                inner = lines[index].strip()
                if inner == "</details>":
                    index, closed = index + 1, True
                    break
                if _LIST_MARKER.sub("", inner).startswith("[") or inner.startswith("#"):
                    break  # the next entry or heading: this block was never closed
                body.append(lines[index])
                index += 1
            if not closed:
                reason = "a <details> block that is never closed"
                parsed.rejected.append(RejectedLine(number, line, reason))
                continue
            details(summary["summary"] if summary else "", "\n".join(body))
        elif "](" in line or "arxiv.org/" in line:
            parsed.rejected.append(RejectedLine(number, line, "not a [Title](link) line"))
    finish()
    return parsed


# -- what Discord shows --------------------------------------------------------------------


def reading_list_page(
    entries: Sequence[ListEntry], whose: str, page: int, month: str | None = None
) -> tuple[str, bool]:
    """One page of a list for Discord, newest month first and newest save first; and
    whether a next page exists."""
    chosen = [e for e in entries if month is None or month_of(e.paper) == month]
    if not chosen:
        where = f" for {month}" if month else ""
        return f"{whose} reading list has no papers{where} yet.", False
    chosen = sorted(reversed(chosen), key=lambda e: month_of(e.paper), reverse=True)
    pages = (len(chosen) + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(page, pages - 1)
    shown = chosen[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    lines = [
        f"**{whose} reading list** · {len(chosen)} paper{'s' * (len(chosen) != 1)}"
        + (f" in {month}" if month else "")
        + f" · page {page + 1}/{pages}"
    ]
    heading = None
    for number, entry in enumerate(shown, page * PAGE_SIZE + 1):
        if month_of(entry.paper) != heading:
            heading = month_of(entry.paper)
            lines.append(f"__{heading}__")
        lines.append(search_line(number, entry.paper))
    lines.append("-# `/readinglist export:true` sends it as a Markdown file.")
    return clip("\n".join(lines), 2000), page + 1 < pages


# -- saving ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaveOutcome:
    paper: Paper
    added: bool  # new to the person's list
    channel_id: str | None = None  # the channel whose shared list it also went to
    added_to_channel: bool = False

    def text(self) -> str:
        title = escape(clip(readable(self.paper.title), 120))
        said = (
            f"Saved **{title}** to your reading list."
            if self.added
            else f"**{title}** is already in your reading list."
        )
        if self.channel_id is not None:
            said += (
                f" Added to <#{self.channel_id}>'s list too."
                if self.added_to_channel
                else f" <#{self.channel_id}>'s list has it already."
            )
        return said + " `/readinglist` shows it."


async def save_paper(
    store: Store, arxiv_id: str, user_id: int | str, shared_from: Subscription | None = None
) -> SaveOutcome | None:
    """Save a stored paper to a person's list, and to the channel's list when the channel's
    subscription shares one. None when the paper is not stored."""
    paper = await store.get_paper(arxiv_id)
    if paper is None:
        return None
    channel = (
        shared_from.channel_id
        if shared_from is not None
        and shared_from.shared_list
        and shared_from.status is not SubscriptionStatus.DELETED
        else None
    )
    owners = [ListOwner.user(user_id)] + ([ListOwner.channel(channel)] if channel else [])
    added = await store.save_to_lists(owners, arxiv_id)
    return SaveOutcome(paper, added[0], channel, channel is not None and added[-1])


@dataclass(frozen=True, slots=True)
class ImportReport:
    added: int
    already: int
    rejected: tuple[RejectedLine, ...]

    def lines(self) -> list[str]:
        said = [
            f"Imported {self.added} paper{'s' * (self.added != 1)}"
            + (f" ({self.already} were in the list already)" if self.already else "")
            + (
                f"; rejected {len(self.rejected)} line{'s' * (len(self.rejected) != 1)}:"
                if self.rejected
                else "."
            )
        ]
        return said + [f"  {r}" for r in self.rejected]


async def import_reading_list(
    store: Store,
    owner: ListOwner,
    text: str,
    fetch: Callable[[list[str]], Awaitable[LookupReport]],
) -> ImportReport:
    """Read a list in the seed format into `owner`'s list: ids the store lacks are fetched
    with `fetch` (which raises FeedError when arXiv cannot be reached: then nothing is
    written); every valid entry goes in, in one write, and each rejected line is named."""
    parsed = parse_reading_list(text)
    rejected = list(parsed.rejected)
    wanted = [p.arxiv_id for p in parsed.papers]
    unknown = set((await fetch(wanted)).unknown) if wanted else set()
    rejected += [
        RejectedLine(p.line, f"arXiv:{p.arxiv_id}", "arXiv returned no paper for this id")
        for p in parsed.papers
        if p.arxiv_id in unknown
    ]
    valid = [(p.arxiv_id, p.notes) for p in parsed.papers if p.arxiv_id not in unknown]
    added = await store.import_to_list(owner, valid)
    return ImportReport(added, len(valid) - added, tuple(sorted(rejected, key=lambda r: r.line)))
