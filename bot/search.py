"""Searching stored papers: user text in, ranked papers out, whatever the text holds.

FTS5 gives meaning to quotes, `*`, `-`, `:`, `^`, AND/OR/NOT and NEAR, so user
text never reaches MATCH as typed: it becomes quoted terms and phrases.

FTS5's bm25 scans, for every query term, the whole list of papers holding it
(for the idf), then scores every match: with a common word over a large archive
that is hundreds of milliseconds. So a query whose terms are all rare gets exact
bm25; a query with a common term gets the newest `RANK_WINDOW` matches scored
the same way bm25 weighs them (idf, title above authors above abstract), with
the idf estimated from cheap index probes. BENCHMARKS.md says what this costs
and keeps in ranking quality.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

from bot.arxiv_ids import is_category, parse_arxiv_id
from bot.classify import TOPICS
from bot.models import Paper, SearchQuery
from bot.store import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    SearchFilters,
    Store,
    TextQuery,
)
from bot.text import WORD

MAX_QUERY_CHARS = 300
MAX_TERMS = 16
RANK_WINDOW = 2000  # at most this many of the newest matches are scored for a broad query
BM25_MAX_DF = 5000  # bm25 is used when every term is in fewer papers than this
_TITLE_WEIGHT = 4.0
_AUTHOR_WEIGHT = 2.0
NO_FILTERS = SearchFilters()
_PHRASE = re.compile(r'"([^"]*)"')


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


def query_terms(text: str) -> list[str]:
    """Phrases and words, as plain strings: quoted text stays a phrase, `low-rank`
    becomes the phrase "low rank"; punctuation, operators and emoji carry no meaning."""
    terms: list[str] = []
    for index, chunk in enumerate(_PHRASE.split(text)):
        if index % 2:  # inside quotes
            words = WORD.findall(chunk)
            if words:
                terms.append(" ".join(w.replace("-", " ").replace("'", " ") for w in words))
        else:
            terms.extend(w.replace("-", " ").replace("'", " ") for w in WORD.findall(chunk))
    seen: dict[str, None] = {}
    for term in terms:
        seen.setdefault(" ".join(term.lower().split()), None)
    return [t for t in seen if t][:MAX_TERMS]


def validate(query: SearchQuery) -> SearchFilters:
    if len(query.text) > MAX_QUERY_CHARS:
        raise SearchError(
            f"That query is {len(query.text):,} characters long; keep it under {MAX_QUERY_CHARS}."
        )
    if query.author is not None and len(query.author) > 200:
        raise SearchError("That author name is too long; keep it under 200 characters.")
    if query.topic and query.topic not in TOPICS:
        raise SearchError(f"Unknown topic {query.topic!r}. Topics: {', '.join(TOPICS)}.")
    if query.category and not is_category(query.category):
        raise SearchError(f"{query.category!r} is not an arXiv category like cs.LG.")
    if query.since and query.until and query.since > query.until:
        raise SearchError("The start date is after the end date.")
    if query.author is not None and not WORD.search(query.author):
        raise SearchError("Give the author's name as letters, e.g. author: Hinton.")
    return SearchFilters(query.topic, query.category, query.since, query.until)


async def search_papers(
    store: Store,
    query: SearchQuery,
    rank_window: int = RANK_WINDOW,
    bm25_max_df: int = BM25_MAX_DF,
) -> SearchResult:
    """Run a search; raises SearchError with a message for the user when it cannot."""
    filters = validate(query)
    text = query.text.strip()
    parsed = parse_arxiv_id(text) if text else None
    if parsed is not None:
        paper = await store.get_paper(parsed[0])
        return SearchResult([paper] if paper else [], SearchMode.ID)

    terms = query_terms(text)
    if not terms and not query.author:
        if text:
            raise SearchError("Type at least one word or number to search for.")
        return SearchResult(
            await store.search_unranked(filters, query.limit, query.offset), SearchMode.FILTERS
        )
    papers, mode = await _ranked(
        store, terms, query, filters, rank_window, bm25_max_df, any_term=False
    )
    if not papers and len(terms) > 1 and query.offset == 0:
        papers, _ = await _ranked(
            store, terms, query, filters, rank_window, bm25_max_df, any_term=True
        )
        mode = SearchMode.ANY_TERM
    return SearchResult(papers, mode)


async def _ranked(
    store: Store,
    terms: list[str],
    query: SearchQuery,
    filters: SearchFilters,
    window: int,
    max_df: int,
    any_term: bool,
) -> tuple[list[Paper], SearchMode]:
    match = TextQuery(tuple(terms), query.author, any_term)
    # bm25 counts, for every query term, the papers holding it: cheap for rare terms,
    # a scan of most of the index for common ones. Estimate each term's share of
    # papers from where its max_df-th newest occurrence sits.
    newest = await store.newest_rowid()
    shares: dict[str, float] = {}
    for term in terms:
        kth = await store.nth_newest_match(TextQuery((term,)), NO_FILTERS, max_df)
        if kth is None:
            count = await store.count_matches(TextQuery((term,)), max_df)
            shares[term] = max(count, 1) / max(newest, 1)
        else:
            shares[term] = max_df / max(newest - kth + 1, max_df)
    if all(share * newest < max_df for share in shares.values()):
        papers = await store.search_ranked(match, filters, query.limit, query.offset)
        return papers, SearchMode.RANKED

    # Some term is common: score the newest `window` matches ourselves, bm25-style
    # (idf per term; a title hit worth 4, an author hit 2), newest first on ties.
    candidates = await store.newest_matches_marked(match, filters, window, with_abstract=any_term)
    if not candidates:
        return [], SearchMode.NEWEST_RANKED
    idf = {
        term: math.log(1.0 + (1.0 - min(share, 1.0) + 0.5 / max(newest, 1)) / max(share, 1e-9))
        for term, share in shares.items()
    }
    term_stems = {term: _stems(term) for term in terms}
    scores: dict[int, float] = {}
    for rowid, title, authors, abstract in candidates:
        in_title, in_authors = _marked_stems(title), _marked_stems(authors)
        in_abstract = _marked_stems(abstract) if abstract is not None else None
        score = 0.0
        for term, stems in term_stems.items():
            hit_title, hit_authors = stems <= in_title, stems <= in_authors
            if in_abstract is not None and not (hit_title or hit_authors or stems <= in_abstract):
                continue  # with "any term", this paper lacks this one
            score += idf[term] * (1.0 + _TITLE_WEIGHT * hit_title + _AUTHOR_WEIGHT * hit_authors)
        scores[rowid] = score
    ranked = sorted(scores, key=lambda rowid: (-scores[rowid], -rowid))
    page = ranked[query.offset : query.offset + query.limit]
    return await store.papers_by_rowids(page), SearchMode.NEWEST_RANKED


_MARKED = re.compile(f"{re.escape(HIGHLIGHT_START)}(.*?){re.escape(HIGHLIGHT_END)}", re.S)


def _stems(text: str) -> frozenset[str]:
    """Crude stems (the first five letters), enough to tell which query term a word
    FTS5's porter stemmer matched belongs to: "experts" and "expert", "quantized"
    and "quantization" share one."""
    return frozenset(word[:5] for word in re.findall(r"\w+", text.lower()))


def _marked_stems(text: str) -> frozenset[str]:
    return frozenset().union(*(_stems(span) for span in _MARKED.findall(text)))
