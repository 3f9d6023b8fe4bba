"""Searching stored papers: user text in, ranked papers out, whatever the text holds.

FTS5 gives meaning to quotes, `*`, `-`, `:`, `^`, AND/OR/NOT and NEAR, so user
text never reaches MATCH as typed: it becomes quoted terms and phrases.
Ranking every match by bm25 costs time in proportion to the matches, and a
common word matches most of a large archive; when a query matches more than
`RANK_WINDOW` papers, only the newest `RANK_WINDOW` of them are ranked (see
BENCHMARKS.md for what that costs in ranking quality).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from bot.arxiv_ids import parse_arxiv_id
from bot.classify import TOPICS
from bot.models import Paper, SearchQuery
from bot.store import SearchFilters, Store

MAX_QUERY_CHARS = 300
MAX_TERMS = 16
RANK_WINDOW = 2000
_CATEGORY = re.compile(r"^[a-z][a-z\-]*(\.[A-Za-z][A-Za-z\-]*)?$")
_PHRASE = re.compile(r'"([^"]*)"')
_WORD = re.compile(r"\w+(?:['’\-]\w+)*")


class SearchError(ValueError):
    """The query cannot be run; the message is meant for the person who typed it."""


class SearchMode(StrEnum):
    ID = "id"  # the text was an arXiv id or URL
    RANKED = "ranked"  # every match ranked by bm25
    NEWEST_RANKED = "newest-ranked"  # the newest RANK_WINDOW matches ranked by bm25
    ANY_TERM = "any-term"  # no paper had every term; ranked papers with any of them
    FILTERS = "filters"  # no text: newest papers matching the filters


@dataclass(frozen=True, slots=True)
class SearchResult:
    papers: list[Paper]
    mode: SearchMode
    terms: list[str] = field(default_factory=list)


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def query_terms(text: str) -> list[str]:
    """Phrases and words, as plain strings: quoted text stays a phrase, `low-rank`
    becomes the phrase "low rank"; punctuation, operators and emoji carry no meaning."""
    terms: list[str] = []
    for index, chunk in enumerate(_PHRASE.split(text)):
        if index % 2:  # inside quotes
            words = _WORD.findall(chunk)
            if words:
                terms.append(" ".join(w.replace("-", " ").replace("'", " ") for w in words))
        else:
            terms.extend(w.replace("-", " ").replace("'", " ") for w in _WORD.findall(chunk))
    seen: dict[str, None] = {}
    for term in terms:
        seen.setdefault(" ".join(term.lower().split()), None)
    return [t for t in seen if t][:MAX_TERMS]


def match_expression(terms: list[str], author: str | None = None, any_term: bool = False) -> str:
    parts = [_quote(t) for t in terms]
    expression = (" OR " if any_term else " AND ").join(parts)
    if any_term and len(parts) > 1:
        expression = f"({expression})"
    if author:
        names = [_quote(w) for w in _WORD.findall(author)][:8]
        author_part = " AND ".join(f"authors : {n}" for n in names)
        expression = f"{expression} AND {author_part}" if expression else author_part
    return expression


def validate(query: SearchQuery) -> SearchFilters:
    if len(query.text) > MAX_QUERY_CHARS:
        raise SearchError(
            f"That query is {len(query.text):,} characters long; keep it under {MAX_QUERY_CHARS}."
        )
    if query.author is not None and len(query.author) > 200:
        raise SearchError("That author name is too long; keep it under 200 characters.")
    if query.topic and query.topic not in TOPICS:
        raise SearchError(f"Unknown topic {query.topic!r}. Topics: {', '.join(TOPICS)}.")
    if query.category and not _CATEGORY.match(query.category):
        raise SearchError(f"{query.category!r} is not an arXiv category like cs.LG.")
    if query.since and query.until and query.since > query.until:
        raise SearchError("The start date is after the end date.")
    if query.author is not None and not _WORD.search(query.author):
        raise SearchError("Give the author's name as letters, e.g. author: Hinton.")
    return SearchFilters(query.topic, query.category, query.since, query.until)


async def search_papers(
    store: Store, query: SearchQuery, rank_window: int = RANK_WINDOW
) -> SearchResult:
    """Run a search; raises SearchError with a message for the user when it cannot."""
    filters = validate(query)
    text = query.text.strip()
    parsed = parse_arxiv_id(text) if text else None
    if parsed is not None:
        paper = await store.get_paper(parsed[0])
        return SearchResult([paper] if paper else [], SearchMode.ID, [parsed[0]])

    terms = query_terms(text)
    if not terms and not query.author:
        if text:
            raise SearchError("Type at least one word or number to search for.")
        return SearchResult(
            await store.search_unranked(filters, query.limit, query.offset), SearchMode.FILTERS
        )
    match = match_expression(terms, query.author)
    papers, mode = await _ranked(store, match, filters, query, rank_window)
    if not papers and len(terms) > 1 and query.offset == 0:
        match = match_expression(terms, query.author, any_term=True)
        papers, _ = await _ranked(store, match, filters, query, rank_window)
        mode = SearchMode.ANY_TERM
    return SearchResult(papers, mode, terms)


async def _ranked(
    store: Store, match: str, filters: SearchFilters, query: SearchQuery, window: int
) -> tuple[list[Paper], SearchMode]:
    oldest_ranked = await store.nth_newest_match(match, filters, window)
    papers = await store.search_ranked(
        match, filters, query.limit, query.offset, min_rowid=oldest_ranked
    )
    return papers, SearchMode.RANKED if oldest_ranked is None else SearchMode.NEWEST_RANKED
