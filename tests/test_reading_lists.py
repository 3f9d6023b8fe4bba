"""Reading lists: the seed lists' format written and read back, saving, bad input."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import Settings
from bot.ingest import ArxivPacer, FeedError, LookupReport, fetch_papers
from bot.models import ListEntry, ListOwner, Summary, SummarySource
from bot.reading_lists import (
    ReadingListError,
    import_reading_list,
    parse_month,
    parse_reading_list,
    render_reading_list,
    save_paper,
    short_abstract,
)
from bot.store import Store
from tests.fake_arxiv import FakeArxiv
from tests.helpers import FIXTURES, make_paper, run_bot

SEEDS = FIXTURES / "seeds"
KEPT_LIST = SEEDS / "000_0a5382d718074ef8.txt"  # headings by first-version month
MISFILED_LIST = SEEDS / "001_ceaadfcd8511a293.txt"  # a 2021 paper under 2020-10
ENTRY = re.compile(r"^\[(?P<title>.*)\]\(https://arxiv\.org/abs/(?P<id>[\d.]+)\)$")
ALICE, BOB = ListOwner.user(111), ListOwner.user(222)

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


def serve_seed_papers(fake: FakeArxiv, seed: Path) -> dict[str, str]:
    """The seed's arXiv papers on the loopback arXiv: its titles, its short abstracts as
    the abstracts, published in the month their ids say. Returns id -> title."""
    lines = seed.read_text().splitlines()
    titles = {}
    for index, line in enumerate(lines):
        match = ENTRY.match(line)
        if match:
            arxiv_id = match["id"]
            abstract = lines[index + 3]  # [Title](link), <details>, <summary>, the text
            yymm = arxiv_id.split(".")[0]
            published = f"20{yymm[:2]}-{yymm[2:]}-15T17:00:00Z"
            fake.add_paper(arxiv_id, match["title"], abstract, published)
            titles[arxiv_id] = match["title"]
    return titles


def fetcher(store: Store, settings: Settings) -> Callable[[list[str]], Awaitable[LookupReport]]:
    async def fetch(ids: list[str]) -> LookupReport:
        return await fetch_papers(store, settings.arxiv, ids, ArxivPacer(0))

    return fetch


def without_abstract_text(markdown: str) -> list[str]:
    """The list's lines with each short abstract's text replaced and blank runs collapsed
    (the seed puts one or two blank lines before a month heading)."""
    lines, out = markdown.splitlines(), []
    for index, line in enumerate(lines):
        if index and lines[index - 1] == "<summary>Short abstract</summary>":
            out.append("(abstract)")
        elif line or (out and out[-1]):
            out.append(line)
    return out


async def test_a_kept_list_round_trips_through_import_and_export(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    serve_seed_papers(fake_arxiv, KEPT_LIST)
    seed = KEPT_LIST.read_text()
    report = await import_reading_list(store, ALICE, seed, fetcher(store, settings))
    # The one entry that links to OpenReview, not arXiv, is named and left out.
    assert report.added == 9 and report.already == 0
    [rejected] = report.rejected
    assert rejected.line == 55 and rejected.reason == "not an arXiv link"
    exported = render_reading_list(await store.list_entries(ALICE))
    expected = seed.splitlines()
    start = expected.index(
        "[ZerO Initialization: Initializing Residual Networks with only Zeros and Ones]"
        "(https://openreview.net/forum?id=EYCm0AFjaSS)"
    )
    del expected[start : start + 6]  # the rejected entry, its details block, its blank line
    assert without_abstract_text(exported) == without_abstract_text("\n".join(expected))
    # The short abstracts are the abstracts' first sentences, LaTeX rendered.
    assert "self-attention mechanism can be approximated by a low-rank matrix" in exported
    # The Notes block a paper carried survives, even empty.
    assert "<summary>Notes</summary>\n</details>" in exported
    # Importing again adds nothing.
    again = await import_reading_list(store, ALICE, seed, fetcher(store, settings))
    assert again.added == 0 and again.already == 9


async def test_export_files_papers_by_their_first_version_month(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    """The second seed files The Efficiency Misnomer (2110.12894) under 2020-10; the
    export puts it under 2021-10, the month of its first version."""
    serve_seed_papers(fake_arxiv, MISFILED_LIST)
    report = await import_reading_list(
        store, ALICE, MISFILED_LIST.read_text(), fetcher(store, settings)
    )
    assert report.added == 5
    exported = render_reading_list(await store.list_entries(ALICE))
    headings = [line for line in exported.splitlines() if line.startswith("## ")]
    assert headings == ["## 2020-06", "## 2020-09", "## 2021-09", "## 2021-10"]
    october = exported.split("## 2021-10")[1]
    assert "[The Efficiency Misnomer](https://arxiv.org/abs/2110.12894)" in october


async def test_bad_lines_are_named_and_the_valid_entries_imported(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_paper(
        "2006.04768", "Linformer", "We approximate attention.", "2020-06-08T17:00:00Z"
    )
    fake_arxiv.add_paper(
        "2009.14794", "Performers", "We introduce Performers.", "2020-09-30T17:00:00Z"
    )
    text = "\n".join(
        [
            "# Papers",
            "## 2020-06",
            "[Linformer](https://arxiv.org/abs/2006.04768)",
            "[Broken link](https://arxiv.org/abs/2009.14794",
            "[Not a paper](https://example.com/paper.pdf)",
            "[Linformer again](https://arxiv.org/pdf/2006.04768v2)",
            "[Unknown to arXiv](https://arxiv.org/abs/2999.00001)",
            "[Performers](https://arxiv.org/abs/2009.14794v3)",
        ]
    )
    report = await import_reading_list(store, ALICE, text, fetcher(store, settings))
    assert report.added == 2
    assert [(r.line, r.reason) for r in report.rejected] == [
        (4, "not a [Title](link) line"),
        (5, "not an arXiv link"),
        (6, "arXiv:2006.04768 again (first on line 3)"),
        (7, "arXiv returned no paper for this id"),
    ]
    lines = report.lines()
    assert lines[0] == "Imported 2 papers; rejected 4 lines:"
    assert lines[1].startswith("  line 4: not a [Title](link) line: [Broken link]")
    assert [e.paper.arxiv_id for e in await store.list_entries(ALICE)] == [
        "2006.04768",
        "2009.14794",
    ]


async def test_nothing_is_written_when_arxiv_cannot_be_reached(store: Store) -> None:
    async def arxiv_down(ids: list[str]) -> LookupReport:
        raise FeedError("could not connect to arXiv (gave up after 3 attempts)")

    await store.upsert_papers([make_paper("2006.04768", "Linformer")])
    text = "[A](https://arxiv.org/abs/2006.04768)\n[B](https://arxiv.org/abs/2009.14794)\n"
    with pytest.raises(FeedError):
        await import_reading_list(store, ALICE, text, arxiv_down)
    assert await store.list_entries(ALICE) == []


async def test_saving_twice_changes_nothing_and_lists_are_private(store: Store) -> None:
    await store.upsert_papers([make_paper("2511.00001", "One"), make_paper("2511.00002", "Two")])
    first = await save_paper(store, "2511.00001", 111)
    again = await save_paper(store, "2511.00001", 111)
    assert first is not None and first.added and "Saved **" in first.text()
    assert again is not None and not again.added and "already in your reading list" in again.text()
    await save_paper(store, "2511.00002", 222)
    assert [e.paper.arxiv_id for e in await store.list_entries(ALICE)] == ["2511.00001"]
    assert [e.paper.arxiv_id for e in await store.list_entries(BOB)] == ["2511.00002"]
    assert await save_paper(store, "2511.99999", 111) is None  # not stored
    assert await store.remove_from_list(ALICE, "2511.00001")
    assert not await store.remove_from_list(ALICE, "2511.00001")
    assert await store.list_entries(ALICE) == []


def test_short_abstract_is_the_tldr_or_the_first_sentences_with_latex_rendered() -> None:
    paper = make_paper(
        "2511.00001",
        "Linear attention",
        abstract=(
            "Attention costs $O(n^2)$ in the sequence length. We approximate it with a"
            " low-rank matrix. This reduces the cost to $O(n)$ in time and space. We test"
            " it on many tasks. It works."
        ),
    )
    text = short_abstract(paper)
    assert text.startswith("Attention costs O(n²) in the sequence length. We approximate")
    assert "It works." not in text  # a short abstract, not the whole one
    summarized = replace(
        paper,
        summary=Summary("Low-rank attention in $O(n)$.", ("a", "b", "c"), SummarySource.MODEL),
    )
    assert short_abstract(summarized) == "Low-rank attention in O(n)."


def test_export_escapes_what_would_break_the_markdown() -> None:
    paper = make_paper(
        "2511.00001", title="[Brackets] and <tags>", abstract="A <b>bold</b> & claim. More."
    )
    text = render_reading_list([ListEntry(paper, notes="mine: <3")])
    assert "[\\[Brackets\\] and &lt;tags&gt;](https://arxiv.org/abs/2511.00001)" in text
    assert "A &lt;b&gt;bold&lt;/b&gt; &amp; claim." in text
    assert "<summary>Notes</summary>\nmine: &lt;3\n</details>" in text
    [parsed] = parse_reading_list(text).papers
    assert parsed.arxiv_id == "2511.00001" and parsed.notes == "mine: <3"


@pytest.mark.parametrize("month", ["2025-13", "25-11", "2025/11", "November", "2025-1"])
def test_a_month_must_be_yyyy_mm(month: str) -> None:
    with pytest.raises(ReadingListError, match="is not a month; use YYYY-MM"):
        parse_month(month)
    assert parse_month(" 2025-11 ") == "2025-11" and parse_month(None) is None


@pytest.mark.loopback
def test_the_command_line_imports_a_kept_list_and_exports_it_again(
    tmp_path: Path, fake_arxiv: FakeArxiv
) -> None:
    serve_seed_papers(fake_arxiv, KEPT_LIST)
    env = {"ARXIV_API_URL": fake_arxiv.url, "ARXIV_DELAY_SECONDS": "0"}
    user = "123456789012345678"
    imported = run_bot(["readinglist", "import", str(KEPT_LIST), "--user", user], tmp_path, env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines() == [
        "Imported 9 papers; rejected 1 line:",
        "  line 55: not an arXiv link: [ZerO Initialization: Initializing Residual Networks"
        " with only Zeros and…",
    ]
    out = tmp_path / "list.md"
    exported = run_bot(
        ["readinglist", "export", "--user", user, "--output", str(out)], tmp_path, env
    )
    assert exported.returncode == 0, exported.stderr
    text = out.read_text()
    assert text.startswith("# Papers\n\n## 2020-06\n\n[Linformer: Self-Attention")
    assert text.count("<summary>Short abstract</summary>") == 9
    # Another person's list, and a channel's, are empty: nothing leaks between lists.
    other = run_bot(["readinglist", "export", "--user", "987654321098765432"], tmp_path, env)
    assert other.stdout == "# Papers\n\n"
    channel = run_bot(["readinglist", "export", "--channel", "920000000000000001"], tmp_path, env)
    assert channel.returncode == 0 and channel.stdout == "# Papers\n\n"
    # Bad input: one line, exit 2, nothing written.
    missing = run_bot(["readinglist", "import", "nope.md", "--user", user], tmp_path, env)
    assert missing.returncode == 2 and missing.stderr.startswith("error: cannot read nope.md")
    bad_id = run_bot(["readinglist", "export", "--user", "alice"], tmp_path, env)
    assert bad_id.returncode == 2 and "'alice' is not a Discord id" in bad_id.stderr


@pytest.mark.loopback
def test_the_command_line_import_writes_nothing_when_arxiv_is_down(
    tmp_path: Path, fake_arxiv: FakeArxiv
) -> None:
    env = {"ARXIV_API_URL": "http://127.0.0.1:9/api/query", "ARXIV_RETRIES": "0"}
    user = "123456789012345678"
    result = run_bot(["readinglist", "import", str(KEPT_LIST), "--user", user], tmp_path, env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: arXiv could not be reached")
    assert "nothing imported" in result.stderr
    exported = run_bot(["readinglist", "export", "--user", user], tmp_path, env)
    assert exported.stdout == "# Papers\n\n"


def test_lists_kept_less_tidily_are_read_and_what_is_lost_is_named() -> None:
    text = "\n".join(
        [
            "# Papers",
            "- [Listed with a marker](https://arxiv.org/abs/2006.04768) (great)",
            "<details><summary>Notes</summary>one-line notes</details>",
            "1. [Numbered](https://arxiv.org/abs/2009.14794)",
            "<details>",
            "<summary>Notes</summary>",
            "never closed",
            "[After the open block](https://arxiv.org/abs/2104.01136)",
            "See https://arxiv.org/abs/2107.10624 too",
            "Some free text the reader wrote.",
        ]
    )
    parsed = parse_reading_list(text)
    assert [(p.line, p.arxiv_id, p.notes) for p in parsed.papers] == [
        (2, "2006.04768", "one-line notes"),
        (4, "2009.14794", None),
        (8, "2104.01136", None),
    ]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (5, "a <details> block that is never closed"),
        (9, "not a [Title](link) line"),
    ]
