"""Watches: a person follows an author or a phrase, and hears when a matching paper
arrives, by direct message or as a mention in their channel's digest, as they chose.

After each poll the new papers are matched against every watch. Direct messages are
recorded (one per person per round, listing its papers) before they are sent, and sent
with a nonce, as digests are; a person whose DMs are closed is mentioned in the digest of
the channel where they set the watch instead, and that mention says why, once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from bot.digests.render import escape, title_of
from bot.models import OutgoingMessage, Paper, Watch, WatchKind, WatchMention
from bot.store import Store
from bot.text import clip

log = logging.getLogger(__name__)

MAX_WATCHES = 20
MENTIONS_PER_PAPER = 5  # a paper's digest block names at most this many watchers
MAX_TEXT = 100
PAPERS_PER_NOTICE = 10
_PLAIN = re.compile(r"[\w\s.\-+#/'’]+")


class WatchError(ValueError):
    """Bad input; the message is meant for the person who typed it."""


class DirectMessagesClosed(Exception):
    """Discord refused a direct message: the person does not accept them from the bot."""


@runtime_checkable
class DirectSender(Protocol):
    async def send_direct(self, user_id: str, message: OutgoingMessage, nonce: str) -> str:
        """Send a direct message and return its id; raise DirectMessagesClosed, or the
        delivery errors of `Sender` for a transient failure."""
        ...


def _folded(text: str) -> str:
    """Lower case, accents dropped, spaces collapsed: 'Müller ' matches 'muller'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def parse_watch(author: str | None, phrase: str | None) -> tuple[WatchKind, str]:
    if (author is None) == (phrase is None):
        raise WatchError("Give either `author` or `phrase` (one watch at a time).")
    kind = WatchKind.AUTHOR if author is not None else WatchKind.PHRASE
    text = " ".join((author if author is not None else phrase or "").split())
    if len(text) < 2:
        raise WatchError(f"That {kind.value} is too short to follow.")
    if len(text) > MAX_TEXT:
        raise WatchError(f"A {kind.value} to follow has at most {MAX_TEXT} characters.")
    if not _PLAIN.fullmatch(text):
        raise WatchError(
            f"Use plain words for a {kind.value}: letters, digits, spaces and - . + # / '."
        )
    return kind, text


class Matcher:
    """Every watch compiled once; each paper's text folded once. Pure CPU: run it in a
    thread when the papers are many."""

    def __init__(self, watches: Sequence[Watch]) -> None:
        self.watches = [
            (w, re.compile(rf"(?<!\w){re.escape(_folded(w.text))}(?!\w)")) for w in watches
        ]

    def of(self, paper: Paper) -> list[Watch]:
        if not self.watches:
            return []
        authors = [_folded(name) for name in paper.authors]
        text = _folded(f"{paper.title} {paper.abstract}")
        found = []
        for watch, pattern in self.watches:
            if watch.kind is WatchKind.AUTHOR:
                if any(pattern.search(name) for name in authors):
                    found.append(watch)
            elif pattern.search(text):
                found.append(watch)
        return found


def describe_watch(watch: Watch) -> str:
    how = "by DM" if watch.by_dm and not watch.dms_closed else f"in <#{watch.channel_id}>'s digest"
    return f"{watch.kind.value} “{escape(watch.text)}” ({how})"


def notice_text(found: list[tuple[Watch, Paper]]) -> str:
    lines = ["**arXiv efficiency digest** · new papers you follow:"]
    for watch, paper in found[:PAPERS_PER_NOTICE]:
        lines.append(
            f"• [{escape(clip(title_of(paper), 180))}](<{paper.abs_url}>)"
            f" · {watch.kind.value} “{escape(watch.text)}”"
        )
    if len(found) > PAPERS_PER_NOTICE:
        lines.append(f"…and {len(found) - PAPERS_PER_NOTICE} more.")
    lines.append("-# `/watches` lists what you follow and stops any of it.")
    return clip("\n".join(lines), 2000)


async def add_watch(
    store: Store,
    user_id: str,
    guild_id: str,
    channel_id: str,
    author: str | None,
    phrase: str | None,
    by_dm: bool,
) -> str:
    kind, text = parse_watch(author, phrase)
    if len(await store.user_watches(user_id)) >= MAX_WATCHES:
        raise WatchError(f"You follow {MAX_WATCHES} things already; `/watches` removes one.")
    if not await store.add_watch(user_id, guild_id, channel_id, kind, text, by_dm):
        raise WatchError(f"You already follow that {kind.value}.")
    where = "by direct message" if by_dm else f"with a mention in <#{channel_id}>'s digest"
    return f"Following {kind.value} “{escape(text)}”: new matching papers reach you {where}."


async def match_new_papers(store: Store) -> int:
    """Match the papers polls stored since the last round against every watch, and record
    the direct messages to send (one per person). Returns the matches told by DM; mentions
    are found when a channel's digest is planned (`watch_mentions`)."""
    total = 0
    while papers := await store.unwatched_papers():
        matcher = Matcher([w for w in await store.all_watches() if w.by_dm and not w.dms_closed])

        by_person = await asyncio.to_thread(_by_person, matcher, papers)  # CPU: off the loop
        notices = [
            (user, OutgoingMessage(notice_text(found)), [(w.id, p.arxiv_id) for w, p in found])
            for user, found in by_person.items()
        ]
        await store.record_watch_round([p.arxiv_id for p in papers], notices)
        matched = sum(len(found) for found in by_person.values())
        total += matched
        if matched:
            log.info(
                "watches matched papers=%d matches=%d dms=%d", len(papers), matched, len(notices)
            )
    return total


def _by_person(matcher: Matcher, papers: Sequence[Paper]) -> dict[str, list[tuple[Watch, Paper]]]:
    by_person: dict[str, list[tuple[Watch, Paper]]] = defaultdict(list)
    for paper in papers:
        for watch in matcher.of(paper):
            by_person[watch.user_id].append((watch, paper))
    return by_person


async def watch_mentions(
    store: Store, channel_id: str, papers: Sequence[Paper]
) -> list[WatchMention]:
    """The people to mention under these papers in this channel's digest: their watch was
    set here and asked for mentions, or their DMs are closed. At most a few per paper."""
    watches = await store.mention_watches(channel_id)
    if not watches or not papers:
        return []
    matcher = Matcher(watches)

    def match() -> list[WatchMention]:
        found = []
        told: set[str] = set()  # the note about closed DMs: once per person
        for paper in papers:
            seen: set[str] = set()
            for watch in matcher.of(paper):
                if watch.user_id in seen or len(seen) == MENTIONS_PER_PAPER:
                    continue
                seen.add(watch.user_id)
                tell = watch.dms_closed and not watch.told_why and watch.user_id not in told
                if tell:
                    told.add(watch.user_id)
                found.append(WatchMention(paper.arxiv_id, watch.user_id, watch.text, tell))
        return found

    return await asyncio.to_thread(match)


async def send_notices(store: Store, sender: DirectSender) -> int:
    """Send the recorded direct messages; closed DMs turn into digest mentions."""
    # Imported here: delivery plans digests, whose mentions come from this module.
    from bot.digests.delivery import ChannelUnavailable

    sent = 0
    for notice in await store.unsent_notices():
        try:
            message_id = await sender.send_direct(notice.user_id, notice.message, f"w{notice.id}")
        except DirectMessagesClosed:
            await store.notice_refused(notice.id, notice.user_id)
            log.info("watch DM refused user=%s: mentioned in digests instead", notice.user_id)
            continue
        except ChannelUnavailable as exc:
            # This one waits for the next round; the others still go.
            log.warning(
                "watch DM not sent, retrying next round user=%s reason=%s", notice.user_id, exc
            )
            continue
        await store.notice_sent(notice.id, message_id)
        sent += 1
    return sent
