"""Watches: a person follows an author or a phrase, and hears when a matching paper
arrives, by direct message or as a mention in their channel's digest, as they chose.

After each poll the new papers are matched against every watch. Direct messages are
recorded (one per person per round, listing its papers) before they are sent, and sent
with a nonce, as digests are; a person whose DMs are closed is mentioned in the digest of
the channel where they set the watch instead, and that mention says why, once.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import defaultdict
from typing import Protocol, runtime_checkable

from bot.digests.delivery import ChannelUnavailable
from bot.digests.render import escape, title_of
from bot.models import OutgoingMessage, Paper, Watch, WatchKind
from bot.store import Store
from bot.text import clip

log = logging.getLogger(__name__)

MAX_WATCHES = 20
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


def matches(watch: Watch, paper: Paper) -> bool:
    wanted = _folded(watch.text)
    pattern = re.compile(rf"(?<!\w){re.escape(wanted)}(?!\w)")
    if watch.kind is WatchKind.AUTHOR:
        return any(pattern.search(_folded(name)) for name in paper.authors)
    return bool(pattern.search(_folded(f"{paper.title} {paper.abstract}")))


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
    the mentions and the direct messages to send. Returns the matches."""
    mark = await store.watch_scan_mark()
    if mark is None:  # the first round: watches follow papers arriving from now on
        await store.record_watch_round(await store.newest_paper_row(), [], [])
        return 0
    papers = await store.papers_polled_after(mark)
    if not papers:
        return 0
    watches = await store.all_watches()
    mentions: list[tuple[int, str]] = []
    by_person: dict[str, list[tuple[Watch, Paper]]] = defaultdict(list)
    for _, paper in papers:
        for watch in watches:
            if not matches(watch, paper):
                continue
            if watch.by_dm and not watch.dms_closed:
                by_person[watch.user_id].append((watch, paper))
            else:
                mentions.append((watch.id, paper.arxiv_id))
    notices = [
        (user, OutgoingMessage(notice_text(found)), [(w.id, p.arxiv_id) for w, p in found])
        for user, found in by_person.items()
    ]
    await store.record_watch_round(papers[-1][0], mentions, notices)
    total = len(mentions) + sum(len(found) for found in by_person.values())
    if total:
        log.info("watches matched papers=%d matches=%d dms=%d", len(papers), total, len(notices))
    return total


async def send_notices(store: Store, sender: DirectSender) -> int:
    """Send the recorded direct messages; closed DMs turn into digest mentions."""
    sent = 0
    for notice in await store.unsent_notices():
        try:
            message_id = await sender.send_direct(notice.user_id, notice.message, f"w{notice.id}")
        except DirectMessagesClosed:
            await store.notice_refused(notice.id, notice.user_id)
            log.info("watch DM refused user=%s: mentioned in digests instead", notice.user_id)
            continue
        except ChannelUnavailable as exc:
            log.warning(
                "watch DM not sent, retrying next round user=%s reason=%s", notice.user_id, exc
            )
            break
        await store.notice_sent(notice.id, message_id)
        sent += 1
    return sent
