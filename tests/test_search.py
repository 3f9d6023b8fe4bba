"""Search over a real SQLite file and a real PostgreSQL database: ranking, filters, ids, and
hostile text."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from bot.classify import load_classifier
from bot.config import StorageSettings
from bot.models import SearchQuery
from bot.pipeline import classify_pending
from bot.search import SearchError, SearchMode, query_terms, search_papers
from bot.store import Store, open_store
from tests.helpers import fixture_papers, make_paper
from tests.postgres_server import PostgresServer, run_async

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


async def _fill(storage: StorageSettings) -> None:
    async with await open_store(storage) as store:
        await store.upsert_papers(fixture_papers("2025-10-03") + fixture_papers("2025-11-12"))
        await classify_pending(store, load_classifier())


@pytest.fixture(scope="module")
def archive_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both fixture days stored and classified once; each test gets its own copy."""
    path = tmp_path_factory.mktemp("archive") / "archive.db"
    run_async(_fill(StorageSettings(f"sqlite:///{path}")))
    return path


@pytest.fixture(scope="module")
def archive_database(postgres: PostgresServer) -> str:
    """The same on PostgreSQL: a database each test copies (CREATE DATABASE ... TEMPLATE)."""
    url = postgres.create_database("archive", template=postgres.template)
    run_async(_fill(StorageSettings(url)))
    return url.rsplit("/", 1)[1]


@pytest.fixture
async def archive(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Store]:
    if backend == "sqlite":
        copy = tmp_path / "archive.db"
        shutil.copyfile(request.getfixturevalue("archive_file"), copy)
        url = f"sqlite:///{copy}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(template=request.getfixturevalue("archive_database"))
    async with await open_store(StorageSettings(url)) as store:
        yield store


async def ids(store: Store, **query: object) -> list[str]:
    result = await search_papers(store, SearchQuery(**query))  # type: ignore[arg-type]
    return [p.arxiv_id for p in result.papers]


async def test_finds_papers_by_words_and_ranks_title_matches_first(store: Store) -> None:
    await store.upsert_papers(
        [
            make_paper("2511.00001", "A study of reading", "We use speculative decoding once."),
            make_paper("2511.00002", "Speculative decoding at scale", "Drafts and verifies."),
            make_paper("2511.00003", "Unrelated", "Nothing about it."),
        ]
    )
    assert await ids(store, text="speculative decoding") == ["2511.00002", "2511.00001"]


async def test_phrases_stems_and_hyphens(archive: Store) -> None:
    speculative = await ids(archive, text='"speculative decoding"')
    assert "2510.01336" in speculative  # HiSpec: Hierarchical Speculative Decoding
    assert "2510.02128" in speculative  # The Disparate Impacts of Speculative Decoding
    # `low-rank` is a phrase, not the column filter FTS5 would read it as.
    assert await ids(archive, text="low-rank") != []
    # Porter stemming: "quantized" finds papers that say "quantization".
    assert "2511.07842" in await ids(archive, text="quantized")


async def test_an_arxiv_id_or_url_finds_that_paper(archive: Store) -> None:
    for text in (
        "2511.08360",
        "2511.08360v3",
        "arXiv:2511.08360",
        "https://arxiv.org/abs/2511.08360v1",
        "https://arxiv.org/pdf/2511.08360.pdf",
    ):
        result = await search_papers(archive, SearchQuery(text=text))
        assert result.mode is SearchMode.ID
        assert [p.arxiv_id for p in result.papers] == ["2511.08360"], text
    assert await ids(archive, text="2601.99999") == []


async def test_filters_narrow_results(archive: Store) -> None:
    by_topic = await ids(archive, text="model", topic="quantization", limit=100)
    assert by_topic and "2511.08360" in by_topic
    for arxiv_id in by_topic:
        paper = await archive.get_paper(arxiv_id)
        assert paper is not None and "quantization" in paper.topics
    in_category = await ids(archive, text="model", category="cs.CV", limit=100)
    assert in_category
    for arxiv_id in in_category:
        paper = await archive.get_paper(arxiv_id)
        assert paper is not None and "cs.CV" in paper.categories
    # However it is typed, on either backend.
    assert await ids(archive, text="model", category="cs.cv", limit=100) == in_category
    assert await ids(archive, text="compression", author="Nikita Dvornik") == ["2511.08360"]
    assert await ids(archive, author="Dvornik") == ["2511.08360"]
    november = await ids(archive, text="language", since=date(2025, 11, 1), limit=100)
    assert november and all(i.startswith("2511.") for i in november)
    october = await ids(archive, text="language", until=date(2025, 10, 31), limit=100)
    assert october and all(i.startswith("2510.") for i in october)


async def test_filters_without_text_list_newest_first(archive: Store) -> None:
    result = await search_papers(archive, SearchQuery(topic="pruning", limit=50))
    assert result.mode is SearchMode.FILTERS
    days = [p.announced for p in result.papers]
    assert days and days == sorted(days, reverse=True)


async def test_no_paper_with_every_word_falls_back_to_any_word(archive: Store) -> None:
    result = await search_papers(archive, SearchQuery(text="speculative xylophonic"))
    assert result.mode is SearchMode.ANY_TERM
    assert "2510.01336" in [p.arxiv_id for p in result.papers]


async def test_pages_do_not_overlap(archive: Store) -> None:
    first = await ids(archive, text="language models", limit=5)
    second = await ids(archive, text="language models", limit=5, offset=5)
    assert len(first) == len(second) == 5
    assert not set(first) & set(second)


async def test_broad_queries_rank_only_the_newest_matches(store: Store) -> None:
    older = [
        make_paper(f"2510.{i:05d}", "Pruning pruning pruning", day=date(2025, 10, 3))
        for i in range(10)
    ]
    newer = [
        make_paper(f"2511.{i:05d}", "A note", "On pruning.", day=date(2025, 11, 12))
        for i in range(8)
    ]
    titled = [make_paper("2511.00100", "Pruning, briefly", day=date(2025, 11, 12))]
    await store.upsert_papers(older)
    await store.upsert_papers(newer + titled)
    exact = await search_papers(store, SearchQuery(text="pruning", limit=5))
    assert exact.mode is SearchMode.RANKED  # a rare word: plain bm25 over every match
    assert all(p.arxiv_id.startswith("2510.") for p in exact.papers)  # 3x the word
    # Pretend "pruning" is common: only the newest 9 matches are scored, and among
    # them the paper with the word in its title comes first.
    broad = await search_papers(
        store, SearchQuery(text="pruning", limit=5), rank_window=9, bm25_max_df=5
    )
    assert broad.mode is SearchMode.NEWEST_RANKED
    assert broad.papers[0].arxiv_id == "2511.00100"
    assert all(p.arxiv_id.startswith("2511.") for p in broad.papers)


async def test_broad_queries_with_any_term_count_every_term(store: Store) -> None:
    await store.upsert_papers(
        [
            make_paper("2511.00001", "Alpha", "alpha beta gamma"),
            make_paper("2511.00002", "Delta", "alpha only"),
            make_paper("2511.00003", "Gamma", "nothing"),
        ]
    )
    result = await search_papers(
        store, SearchQuery(text="alpha beta zeta"), rank_window=50, bm25_max_df=1
    )
    assert result.mode is SearchMode.ANY_TERM
    assert [p.arxiv_id for p in result.papers][:2] == ["2511.00001", "2511.00002"]


HOSTILE = [
    '"',
    '""',
    '"unclosed phrase',
    "*",
    "-",
    "- pruning",
    ":",
    "title:pruning",
    "authors:",
    "NEAR(a b)",
    "NEAR",
    "AND",
    "OR OR OR",
    "NOT pruning",
    "a AND OR b",
    "(((",
    ")",
    "^x",
    "'; DROP TABLE papers; --",
    "1 OR 1=1",
    "🔥🔥🔥",
    "量子化",
    "pruning 🔥",
    "\x00",
    "\\",
    "{title}: x",
    "low-rank*",
    "col:umn:s",
    "%",
    "_",
    "rank",
    "bm25(papers_fts)",
    " ",
    "x" * 300,
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_any_text_gives_results_or_a_clear_message(archive: Store, text: str) -> None:
    terms = query_terms(text)
    try:
        result = await search_papers(archive, SearchQuery(text=text))
    except SearchError as exc:
        assert str(exc) and "\n" not in str(exc)
        assert not terms or len(text) > 5000  # refused only when nothing searchable is left
    else:
        if not text.strip():  # blank: the newest papers, as /search with filters alone
            assert len(result.papers) == 10
            return
        assert terms, "text with no words must be refused with a message"
        # Every result holds a word starting like a searched one (FTS5 stems "pruning" to
        # "prune", so compare the first four letters).
        stems = {w[:4] for term in terms for w in term.split()}
        for paper in result.papers:
            text_of_paper = f"{paper.title} {paper.abstract} {' '.join(paper.authors)}".lower()
            assert any(stem in text_of_paper for stem in stems), (text, paper.arxiv_id)
    assert await archive.count_papers() == 351  # nothing was dropped


async def test_overlong_and_bad_filters_get_clear_messages(archive: Store) -> None:
    with pytest.raises(SearchError, match="5,000 characters"):
        await search_papers(archive, SearchQuery(text="x" * 5000))
    with pytest.raises(SearchError, match="Unknown topic"):
        await search_papers(archive, SearchQuery(text="x", topic="astrology"))
    with pytest.raises(SearchError, match="not an arXiv category"):
        await search_papers(archive, SearchQuery(text="x", category="cs LG; --"))
    with pytest.raises(SearchError, match="at least one word"):
        await search_papers(archive, SearchQuery(text="🔥 * -"))


def test_query_terms_keep_phrases_and_drop_syntax() -> None:
    assert query_terms('"Low-Rank adaptation" of LLMs') == ["low rank adaptation", "of", "llms"]
    assert query_terms("title:pruning NEAR(x)") == ["title", "pruning", "near", "x"]
