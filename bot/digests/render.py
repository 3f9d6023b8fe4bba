"""Every way the bot shows a paper or a digest, as plain data within Discord's limits.

Digest messages, the search result line, the /paper card, the summary a button
reveals: strings, embed dicts and `OutgoingMessage`s. The Discord layer only turns
them into discord.py objects; nothing here imports discord.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Sequence
from datetime import date

from bot.extractive import display_summary
from bot.latex import readable
from bot.models import (
    OutgoingMessage,
    Paper,
    PaperBlock,
    Poll,
    PollOutcome,
    Subscription,
    SubscriptionStatus,
    SummarySource,
    WatchMention,
)
from bot.text import clip
from bot.vocabulary import TOPICS

# Discord's limits, with a margin.
CONTENT_LIMIT = 2000


EMBED_TITLE_LIMIT = 256

EMBED_DESCRIPTION_LIMIT = 4096

EMBED_COLOUR = 0xB31B1B  # arXiv red
NOTICEABLE_SHIFT = 0.5  # log-odds: a channel's votes moving a paper this far are shown
FIELD_LIMIT = 1024


_MARKDOWN = re.compile(r"([\\*_~`|>\[\]#])")


def escape(text: str) -> str:
    """Untrusted text (titles, authors, summaries) shown literally: no formatting, no
    masked links, no mentions. Allowed mentions are off for every post as well."""
    text = _MARKDOWN.sub(r"\\\1", text)
    return text.replace("@", "@\u200b").replace("<", "<\u200b")


def title_of(paper: Paper) -> str:
    """The title as readers see it: LaTeX rendered, one line."""
    return readable(paper.title)


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


def _day_label(days: Sequence[date]) -> str:
    first, last = min(days), max(days)
    if first == last:
        return f"{last:%A, %B} {last.day}, {last:%Y}"
    return f"{first:%B} {first.day} – {last:%B} {last.day}, {last:%Y}"


# Layout messages (Discord's components v2): at most 40 components and 4,000 characters
# of text in one message. A paper is a section (its text, its Summary button) and a row of
# 👍, 👎 and Save: seven components. The container and the message's own line are two more.
LAYOUT_COMPONENT_LIMIT = 40
LAYOUT_TEXT_LIMIT = 4000
COMPONENTS_PER_PAPER = 7
COMPONENTS_PER_MESSAGE = 2
PART_LINE_CHARS = 60  # "part 2 of 3" heading a later message
BUTTON_TEXT_PER_PAPER = len("Summary") + len("Save") + 4  # labels and emoji count as text


def paper_block(paper: Paper, number: int) -> PaperBlock:
    """A paper as its digest section shows it: numbered linked title, first authors,
    topics and the one-line reason."""
    lines = [
        f"**{number}. [{escape(clip(title_of(paper), 250))}]({paper.abs_url})**",
        escape(first_authors(paper)),
    ]
    if paper.topics:
        lines.append(" ".join(f"`{t}`" for t in paper.topics))
    if paper.reason:
        lines.append(f"-# Why: {escape(clip(explain(paper), 300))}")
    return PaperBlock(number, paper.arxiv_id, "\n".join(lines))


def _block_cost(block: PaperBlock) -> tuple[int, int]:
    return COMPONENTS_PER_PAPER, len(block.text) + BUTTON_TEXT_PER_PAPER


def render_digest(
    papers: Sequence[Paper],
    max_papers: int,
    topics_filter: Sequence[str] = (),
    mention_role: str | None = None,
    watchers: Sequence[WatchMention] = (),
    thread: bool = False,
) -> list[OutgoingMessage]:
    """A header, then each paper its own block with its buttons, split in reading order
    into layout messages within Discord's limits; a last line for papers beyond
    `max_papers`."""
    shown, more = list(papers[:max_papers]), len(papers) - max_papers
    counts = Counter(t for p in papers for t in p.topics)
    topic_line = ", ".join(f"{t} ({n})" for t, n in counts.most_common())
    header = clip(
        f"## arXiv efficiency digest · {_day_label([p.announced for p in papers])}\n"
        f"{len(papers)} new paper{'s' * (len(papers) != 1)}"
        + (f" · {topic_line}" if topic_line else "")
        + "\n-# **Summary** shows a paper's summary to you · 🔖 **Save** keeps it in your"
        " `/readinglist` · 👍 👎 tell the bot what this channel likes",
        1000,
    )
    note = ""
    if more > 0:
        since = min(p.announced for p in papers).isoformat()
        topic_hint = f" topic:{topics_filter[0]}" if len(topics_filter) == 1 else ""
        note = (
            f"…and {more} more relevant paper{'s' * (more != 1)}: "
            f"`/search{topic_hint} since:{since}` lists them."
        )
    blocks = [
        _with_watchers(paper_block(paper, number), watchers)
        for number, paper in enumerate(shown, 1)
    ]
    messages = [
        dataclasses.replace(
            m,
            mention_users=tuple(
                dict.fromkeys(
                    w.user_id for w in watchers for b in m.blocks if b.arxiv_id == w.arxiv_id
                )
            ),
        )
        for m in layout_messages("" if thread else header, blocks, note, "arXiv efficiency digest")
    ]
    if thread:
        # The day's header in the channel; the papers in a thread under it.
        messages = [
            OutgoingMessage(header),
            *(dataclasses.replace(m, in_thread=True) for m in messages),
        ]
    if mention_role is None:
        return messages
    # The role the admin chose is mentioned once, in the header; nothing else pings.
    first = messages[0]
    mentioned = dataclasses.replace(
        first, content=f"<@&{mention_role}>\n{first.content}", mention_role=mention_role
    )
    return [mentioned, *messages[1:]]


def _with_watchers(block: PaperBlock, watchers: Sequence[WatchMention]) -> PaperBlock:
    """A line under a paper for each person following something it matches, who asked
    to be mentioned here (or whose DMs are closed: told so once)."""
    lines = [
        f"-# for <@{w.user_id}>: you follow “{escape(w.watch)}”"
        + (" (your DMs are closed, so you are mentioned here)" if w.tell_why else "")
        for w in watchers
        if w.arxiv_id == block.arxiv_id
    ]
    if not lines:
        return block
    return dataclasses.replace(block, text="\n".join([block.text, *lines]))


def layout_messages(
    header: str, blocks: Sequence[PaperBlock], note: str, title: str
) -> list[OutgoingMessage]:
    """Papers split in reading order into layout messages within Discord's limits: the
    header opens the first, "part 2 of 3" the others, and the note closes the last (on its
    own when it does not fit there)."""
    chunks: list[list[PaperBlock]] = [[]]
    components, text = COMPONENTS_PER_MESSAGE, len(header)
    for block in blocks:
        cost, chars = _block_cost(block)
        if chunks[-1] and (
            components + cost > LAYOUT_COMPONENT_LIMIT or text + chars > LAYOUT_TEXT_LIMIT
        ):
            chunks.append([])
            components, text = COMPONENTS_PER_MESSAGE, PART_LINE_CHARS
        chunks[-1].append(block)
        components, text = components + cost, text + chars
    note_fits = components + 1 <= LAYOUT_COMPONENT_LIMIT and text + len(note) <= LAYOUT_TEXT_LIMIT
    messages = []
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        line = header if index == 0 else f"-# {title} · part {index + 1} of {len(chunks)}"
        messages.append(
            OutgoingMessage(
                content=line, blocks=tuple(chunk), note=note if last and note_fits else ""
            )
        )
    if note and not note_fits:
        messages.append(OutgoingMessage(note))
    return messages


POST_TITLE_LIMIT = 100  # Discord's limit for a thread's name


def render_forum_posts(
    papers: Sequence[Paper],
    max_papers: int,
    watchers: Sequence[WatchMention] = (),
    create_tags: bool = False,
    mention_role: str | None = None,
) -> list[OutgoingMessage]:
    """A forum subscription: each paper a post of its own, titled with the paper, its
    section inside, tagged with its topics; papers beyond `max_papers` wait for `/search`."""
    posts = []
    for number, paper in enumerate(papers[:max_papers], 1):
        block = _with_watchers(paper_block(paper, number), watchers)
        users = tuple(dict.fromkeys(w.user_id for w in watchers if w.arxiv_id == paper.arxiv_id))
        posts.append(
            OutgoingMessage(
                content="",
                blocks=(block,),
                mention_users=users,
                # The id keeps titles apart: a crash's retry finds its post by title.
                post_title=(
                    f"{clip(title_of(paper), POST_TITLE_LIMIT - len(paper.arxiv_id) - 3)}"
                    f" · {paper.arxiv_id}"
                ),
                post_tags=paper.topics,
                create_tags=create_tags,
            )
        )
    if posts and mention_role:  # the chosen role, once, on the day's first post
        posts[0] = dataclasses.replace(
            posts[0], content=f"<@&{mention_role}>", mention_role=mention_role
        )
    return posts


def render_weekly(ranked: Sequence[tuple[Paper, int, int]]) -> list[OutgoingMessage]:
    """The week's most liked papers in a channel, best first, with their votes."""
    blocks = []
    for number, (paper, likes, dislikes) in enumerate(ranked, 1):
        block = paper_block(paper, number)
        votes = f"👍 {likes}" + (f" · 👎 {dislikes}" if dislikes else "")
        blocks.append(PaperBlock(block.number, block.arxiv_id, f"{block.text}\n-# {votes}"))
    header = (
        "## This week's most liked here\n-# The papers this channel voted up in the last 7 days."
    )
    return layout_messages(header, blocks, "", "This week's most liked")


TODAY = {
    "weekend": "arXiv announces nothing on weekends",
    "holiday": "arXiv announced nothing today (a holiday, most likely)",
    "arxiv-holiday": "arXiv announced nothing today (an arXiv holiday)",
    "listed": "arXiv listed today's papers",
    "unreachable": "arXiv could not be reached since today's announcement",
    "pending": "today's listing is not read yet",
}


def render_note(
    kind: str, reasons: Sequence[str] = (), today: str | None = None
) -> OutgoingMessage:
    if kind == "arxiv-down":
        why = f" ({escape(reasons[-1])})" if reasons else ""
        return OutgoingMessage(
            "**arXiv efficiency digest** · arXiv could not be reached since the last digest"
            f"{why}. The next digest will catch up on everything missed."
        )
    if today in ("weekend", "holiday", "arxiv-holiday"):
        return OutgoingMessage(f"**arXiv efficiency digest** · {TODAY[today]}: no new papers.")
    if today == "unreachable":
        return OutgoingMessage(
            f"**arXiv efficiency digest** · {TODAY[today]}: no new papers yet. The next digest"
            " will catch up on everything missed."
        )
    return OutgoingMessage("**arXiv efficiency digest** · No new papers today.")


def search_line(number: int, paper: Paper) -> str:
    topics = " ".join(f"`{t}`" for t in paper.topics)
    return (
        f"**{number}.** [{escape(clip(title_of(paper), 180))}](<{paper.abs_url}>)\n"
        f"{escape(first_authors(paper))} · {paper.announced.isoformat()}"
        + (f" · {topics}" if topics else "")
    )


def summary_text(paper: Paper) -> str:
    summary = display_summary(paper)
    lines = [
        f"**{escape(clip(title_of(paper), 250))}**",
        f"**TL;DR** {escape(readable(summary.tldr))}",
    ]
    lines += [f"• {escape(readable(b))}" for b in summary.bullets]
    if summary.source is SummarySource.EXTRACTIVE:
        lines.append("-# Sentences picked from the abstract; no AI summary yet.")
    else:
        lines.append(f"-# Summary by {escape(summary.model or 'the model')}.")
    lines.append(f"<{paper.abs_url}> · <{paper.pdf_url}>")
    return clip("\n".join(lines), 2000)


def paper_card(paper: Paper) -> dict:
    """/paper: one paper in full, as an embed dict."""
    fields = [
        ("Authors", clip(escape(", ".join(paper.authors)), FIELD_LIMIT), False),
        ("Categories", " ".join(paper.categories) or "-", True),
        ("Listed", paper.announced.isoformat(), True),
        ("Version", f"v{paper.version} · {paper.updated:%Y-%m-%d}", True),
        ("Topics", ", ".join(paper.topics) or "-", True),
        ("Relevance", f"{paper.relevance or 0:.2f}", True),
    ]
    if paper.reason:  # evidence for the model's decision; "against: ..." when it said no
        fields.append(("Why", clip(escape(explain(paper)), FIELD_LIMIT), False))
    fields.append(("Links", f"[abs]({paper.abs_url}) · [pdf]({paper.pdf_url})", True))
    return {
        "title": clip(escape(title_of(paper)), EMBED_TITLE_LIMIT),
        "url": paper.abs_url,
        "color": EMBED_COLOUR,
        "description": summary_text(paper).split("\n", 1)[1][:EMBED_DESCRIPTION_LIMIT],
        "fields": [{"name": n, "value": v, "inline": i} for n, v, i in fields],
    }


def poll_outcome(poll: Poll) -> str:
    """What a poll found, in a few words (/status)."""
    return {
        PollOutcome.OK: f"ok, {poll.counts.new} new, {poll.counts.updated} updated",
        PollOutcome.NOTHING: "ok, nothing new announced",
        PollOutcome.FAILED: f"failed: {poll.reason}",
        PollOutcome.RUNNING: "running",
    }[poll.outcome]


def poll_record(poll: Poll) -> str:
    """A poll in full, one line (`python -m bot status`)."""
    started = poll.started_at.strftime("%Y-%m-%d %H:%M")
    took = ""
    if poll.finished_at:
        took = f" in {(poll.finished_at - poll.started_at).total_seconds():.0f}s"
    c = poll.counts
    line = (
        f"#{poll.id} {started} UTC{took}: {poll.outcome.value}, {poll.requests} requests, "
        f"{c.new} new, {c.updated} updated, {c.unchanged} unchanged"
    )
    return line + (f" ({poll.reason})" if poll.reason else "")


def search_page(
    query: str, page: int, size: int, papers: Sequence[Paper], some_words_only: bool
) -> str:
    """One page of /search results (`papers` may hold one more than `size`)."""
    if not papers:
        return "No papers found."
    what = f"`{escape(clip(query, 80))}`" if query else "your filters"
    lines = [f"Results for {what} · page {page + 1}"]
    if some_words_only:
        lines[0] += " (no paper has every word; these have some)"
    first = page * size
    lines += [search_line(first + i + 1, p) for i, p in enumerate(papers[:size])]
    return clip("\n".join(lines), CONTENT_LIMIT)


def votes_moved(shift: float) -> str:
    return "liked here ▲" if shift > 0 else "less liked here ▼"


def channel_score_text(paper: Paper, score: float, shift: float) -> str:
    """/paper in a channel whose votes steer its digests: what they make of this paper."""
    said = f"{score:.2f} here (global {paper.relevance or 0.0:.2f})"
    if abs(shift) < NOTICEABLE_SHIFT:
        return f"{said}: this channel's votes barely move it"
    return f"{said}: {votes_moved(shift)}, by this channel's votes"


def top_text(ranked: Sequence[tuple[Paper, int, int]], days: int) -> str:
    """/top: the server's most liked papers of the period, with their votes."""
    period = f"the last {days} day{'s' * (days != 1)}"
    if not ranked:
        return f"No liked papers in this server in {period} yet: 👍 under a digest paper counts."
    lines = [f"**Most liked in this server, {period}**"]
    for number, (paper, likes, dislikes) in enumerate(ranked, 1):
        votes = f" · 👍 {likes}" + (f" 👎 {dislikes}" if dislikes else "")
        lines.append(search_line(number, paper) + votes)
    return clip("\n".join(lines), CONTENT_LIMIT)


def topics_text(counts: dict[str, int]) -> str:
    lines = ["**Topics** (relevant papers listed in the last 7 days)"]
    lines += [f"`{t}`: {counts.get(t, 0)}" for t in TOPICS]
    return "\n".join(lines)


def status_text(
    polls: Sequence[Poll],
    total: int,
    relevant: int,
    subscription: Subscription | None,
    today: str | None = None,
) -> str:
    """/status: what is stored, today's listing, the last polls, and this channel's digest."""
    lines = [f"**Papers stored:** {total:,} ({relevant:,} relevant)"]
    if today is not None:
        lines.append(f"**Today:** {TODAY[today]}.")
    lines.append("**Last polls:**")
    if not polls:
        lines.append("none yet")
    for poll in polls:
        lines.append(f"<t:{int(poll.started_at.timestamp())}:R> · {escape(poll_outcome(poll))}")
    if subscription and subscription.status is SubscriptionStatus.ACTIVE:
        lines.append(f"**Next digest here:** <t:{int(subscription.next_due_at.timestamp())}:f>")
    elif subscription and subscription.status is SubscriptionStatus.PAUSED:
        lines.append(f"**Digest here paused:** {escape(subscription.status_reason or '')}")
    else:
        lines.append("**This channel has no digest.** `/subscribe` sets one up.")
    return "\n".join(lines)
