"""Rendering and the schedule as plain data: fast, no server, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.digests.render import (
    BUTTON_TEXT_PER_PAPER,
    COMPONENTS_PER_MESSAGE,
    COMPONENTS_PER_PAPER,
    LAYOUT_COMPONENT_LIMIT,
    LAYOUT_TEXT_LIMIT,
    clip,
    escape,
    paper_block,
    paper_card,
    poll_outcome,
    poll_record,
    render_digest,
    search_line,
    summary_text,
)
from bot.digests.schedule import next_due
from bot.digests.terminal import render_terminal
from bot.models import DigestDay, Poll, PollOutcome, UpsertCounts
from tests.helpers import make_paper


def paper(number: int, **changes: object):
    base = make_paper(
        f"2511.{number:05d}",
        f"Paper {number} about 4-bit quantization",
        "We quantize weights to 4 bits. It is 2x faster.",
        authors=("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
    )
    fields: dict = {"relevance": 0.9, "topics": ("quantization",), "reason": "title: quantization"}
    return replace(base, **(fields | changes))


def test_escape_neutralises_markdown_and_mentions() -> None:
    text = escape("@everyone <@123> **bold** [x](https://e.example) ||s||")
    assert "@everyone" not in text and "<@" not in text
    assert "\\*\\*bold\\*\\*" in text and "\\[x\\]" in text and "\\|\\|" in text
    assert clip("abcdef", 4) == "abc…" and clip("abc", 4) == "abc"


def components_and_text(message) -> tuple[int, int]:
    """What Discord counts in a layout message: every component, nested ones included,
    and every character of text."""
    components = COMPONENTS_PER_MESSAGE + COMPONENTS_PER_PAPER * len(message.blocks)
    components += bool(message.note)
    text = len(message.content) + len(message.note)
    text += sum(len(b.text) + BUTTON_TEXT_PER_PAPER for b in message.blocks)
    return components, text


def test_a_digest_is_split_within_discords_limits_in_reading_order() -> None:
    papers = [paper(i) for i in range(1, 24)]
    messages = render_digest(papers, max_papers=21)
    blocks = [b for m in messages for b in m.blocks]
    assert [b.number for b in blocks] == list(range(1, 22))
    assert [b.arxiv_id for b in blocks] == [p.arxiv_id for p in papers[:21]]
    for message in messages:
        components, text = components_and_text(message)
        assert components <= LAYOUT_COMPONENT_LIMIT and text <= LAYOUT_TEXT_LIMIT
        assert message.embeds == () and message.buttons == ()
    assert [len(m.blocks) for m in messages] == [5, 5, 5, 5, 1]  # 7 components a paper
    assert messages[0].content.startswith("## arXiv efficiency digest · ")
    assert "23 new papers" in messages[0].content
    assert messages[1].content == "-# arXiv efficiency digest · part 2 of 5"
    # The last line sits under the last paper, in the same message.
    assert messages[-1].note.startswith("…and 2 more relevant papers")
    assert all(not m.note for m in messages[:-1])
    first = blocks[0].text.splitlines()
    assert first[0] == "**1. [Paper 1 about 4-bit quantization](https://arxiv.org/abs/2511.00001)**"
    assert first[1] == "Ada Lovelace, Alan Turing, Grace Hopper, et al."
    assert first[2:] == ["`quantization`", "-# Why: title: quantization"]


def test_long_papers_split_by_text_before_components() -> None:
    """Four thousand characters of text per message bind before forty components when
    titles and reasons run long (escaping Markdown doubles some of them)."""
    long = [paper(i, reason="title: " + "low_bit_*quant* " * 20) for i in range(1, 11)]
    long = [replace(p, title=p.title + " with_*long*_words" * 14) for p in long]
    messages = render_digest(long, max_papers=10)
    assert [b.number for m in messages for b in m.blocks] == list(range(1, 11))
    for message in messages:
        components, text = components_and_text(message)
        assert components <= LAYOUT_COMPONENT_LIMIT and text <= LAYOUT_TEXT_LIMIT
    assert any(len(m.blocks) < 5 for m in messages[:-1])  # text, not components, split them


def test_paper_card_search_line_and_summary_text() -> None:
    shown = paper(7, reason="against: title: agents")
    card = paper_card(shown)
    fields = {f["name"]: f["value"] for f in card["fields"]}
    assert card["url"] == "https://arxiv.org/abs/2511.00007"
    assert fields["Why"] == "against: title: agents" and fields["Relevance"] == "0.90"
    assert fields["Authors"] == "Ada Lovelace, Alan Turing, Grace Hopper, Edsger Dijkstra"
    line = search_line(3, shown)
    assert line.startswith("**3.** [Paper 7 about 4") and "et al." in line
    text = summary_text(shown)
    assert "**TL;DR**" in text and "no AI summary yet" in text and len(text) <= 2000
    assert paper_block(shown, 1).text.startswith("**1. [Paper 7 about 4-bit quantization](")


def test_poll_lines() -> None:
    started = datetime(2025, 11, 12, 9, 0, tzinfo=UTC)
    poll = Poll(
        3,
        started,
        started + timedelta(seconds=42),
        PollOutcome.FAILED,
        "arXiv answered 503",
        4,
        UpsertCounts(5, 1, 0),
        None,
    )
    assert poll_outcome(poll) == "failed: arXiv answered 503"
    assert poll_record(poll) == (
        "#3 2025-11-12 09:00 UTC in 42s: failed, 4 requests, 5 new, 1 updated, 0 unchanged"
        " (arXiv answered 503)"
    )


def test_next_due_is_strictly_after_and_at_the_digest_time() -> None:
    at = datetime(2025, 11, 12, 8, 0, tzinfo=UTC)
    assert next_due("08:00", at - timedelta(seconds=1)) == at
    assert next_due("08:00", at) == at + timedelta(days=1)
    assert next_due("23:59", at) == datetime(2025, 11, 12, 23, 59, tzinfo=UTC)


def test_terminal_digest_explains_picks_on_request() -> None:
    day = DigestDay(paper(1).announced, [paper(1), paper(2)])
    plain = render_terminal(day)
    assert plain.startswith("Wednesday, November 12, 2025: 2 papers (quantization)")
    assert "why:" not in plain
    explained = render_terminal(day, explain_picks=True)
    assert explained.count("why: title: quantization") == 2


def test_clipping_ends_at_a_word_and_keeps_numbers_with_their_units() -> None:
    from bot.text import clip as clip_words

    text = "FlashSparse decodes long prompts with a speedup of 2.1 × over dense attention"
    for limit in range(20, len(text)):
        shown = clip_words(text, limit)
        assert len(shown) <= limit and shown.endswith("…")
        kept = shown[:-1]
        assert text.startswith(kept)  # whole words, in order
        assert text[len(kept)] == " "  # cut at a word boundary
        assert not kept.endswith("2.1"), shown  # never the number without its ×
        assert not kept.endswith("2.")
    assert clip_words("retains 95.18 % of accuracy", 16) == "retains…"
    assert clip_words("short", 10) == "short"
