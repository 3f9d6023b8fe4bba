"""Plain data passed between the stages; no I/O and no Discord types here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class SummarySource(StrEnum):
    MODEL = "model"  # written by the configured LLM
    EXTRACTIVE = "extractive"  # sentences picked from the abstract (no LLM, or not yet)


@dataclass(frozen=True, slots=True)
class Summary:
    tldr: str
    bullets: tuple[str, ...]  # three from a model; up to three picked from an abstract
    source: SummarySource
    model: str | None = None
    prompt_version: str | None = None


@dataclass(frozen=True, slots=True)
class Paper:
    arxiv_id: str  # without version, e.g. "2510.01339"
    version: int
    title: str
    abstract: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]  # primary category first
    published: datetime
    updated: datetime
    announced: date  # the arXiv listing day the paper first appeared in
    comment: str | None = None
    relevance: float | None = None
    topics: tuple[str, ...] = ()
    summary: Summary | None = None  # the newest model-written summary, if any
    reason: str | None = None  # why it was picked (or not): strongest evidence or judge's words
    decided_by: str | None = None  # "model", "judge", or "model; judge failed: ..."
    score: float | None = None  # the offline model's own relevance, before any judge

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.arxiv_id}.pdf"

    @property
    def primary_category(self) -> str:
        return self.categories[0] if self.categories else ""


@dataclass(frozen=True, slots=True)
class Classification:
    relevance: float  # 0.5 is the model's decision threshold
    topics: tuple[str, ...]
    reason: str = ""  # the strongest evidence, e.g. "title: speculative decoding"


@dataclass(frozen=True, slots=True)
class JudgeScope:
    """Which verdicts count: those of this model and prompt, for offline scores in the band."""

    model: str
    prompt_version: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Judgement:
    arxiv_id: str
    relevant: bool
    topics: tuple[str, ...]
    reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class UpsertCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: UpsertCounts) -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged


class PollOutcome(StrEnum):
    RUNNING = "running"
    OK = "ok"  # new or updated papers stored
    NOTHING = "nothing"  # arXiv answered properly and had nothing new for us
    FAILED = "failed"  # arXiv could not be read (errors, throttling, malformed pages)


@dataclass(frozen=True, slots=True)
class Poll:
    id: int
    started_at: datetime
    finished_at: datetime | None
    outcome: PollOutcome
    reason: str | None
    requests: int
    counts: UpsertCounts
    newest_seen: datetime | None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str = ""
    topic: str | None = None
    category: str | None = None
    author: str | None = None
    since: date | None = None
    until: date | None = None
    limit: int = 10
    offset: int = 0


@dataclass(frozen=True, slots=True)
class DigestDay:
    """The relevant papers of one listing day, best first."""

    day: date
    papers: list[Paper] = field(default_factory=list)


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # the bot lacks permission in the channel; /subscribe again resumes
    DELETED = "deleted"  # the channel is gone, or the server unsubscribed


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    guild_id: str
    channel_id: str
    topics: tuple[str, ...]  # empty: every topic
    digest_time: str  # HH:MM UTC
    min_score: float
    post_empty: bool
    status: SubscriptionStatus
    status_reason: str | None
    starts_on: date
    next_due_at: datetime
    last_digest_at: datetime | None
    shared_list: bool = False  # the Save button also adds to the channel's reading list
    next_weekly_at: datetime | None = None  # the weekly most-liked digest; None: none
    mention_role: str | None = None  # a role id its digests mention
    thread: bool = False  # papers go in a thread under the digest's header
    forum: bool = False  # a forum channel: each paper is a post of its own
    create_tags: bool = False  # create the forum's missing topic tags


@dataclass(frozen=True, slots=True)
class SummaryButton:
    label: str
    arxiv_id: str


@dataclass(frozen=True, slots=True)
class PaperBlock:
    """One paper of a digest in Discord's layout components: its text beside a Summary
    button, with 👍, 👎 and Save below it, all acting on `arxiv_id`."""

    number: int
    arxiv_id: str
    text: str


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One Discord message of a digest, as plain data the Discord layer turns into a post.
    With `blocks` it is a layout message (text, then the papers, then `note`); without,
    plain content (and, in digests recorded before layouts, embeds and buttons)."""

    content: str
    embeds: tuple[dict, ...] = ()
    buttons: tuple[SummaryButton, ...] = ()
    blocks: tuple[PaperBlock, ...] = ()
    note: str = ""
    mention_role: str | None = None  # the one role this message may ping
    mention_users: tuple[str, ...] = ()  # watchers it mentions, by their choice
    in_thread: bool = False  # posted in the thread of its digest's first message
    post_title: str = ""  # a forum post: its title
    post_tags: tuple[str, ...] = ()  # and the topics its tags should name
    create_tags: bool = False  # create the forum's missing tags for those topics


@dataclass(frozen=True, slots=True)
class PendingMessage:
    digest_id: int
    position: int
    message: OutgoingMessage
    thread_of: str | None = None  # Discord id of the digest's first message, once posted


class ListOwnerKind(StrEnum):
    USER = "user"
    CHANNEL = "channel"


@dataclass(frozen=True, slots=True)
class ListOwner:
    """Whose reading list: a person's (private) or a channel's (shared)."""

    kind: ListOwnerKind
    id: str

    @classmethod
    def user(cls, user_id: int | str) -> ListOwner:
        return cls(ListOwnerKind.USER, str(user_id))

    @classmethod
    def channel(cls, channel_id: int | str) -> ListOwner:
        return cls(ListOwnerKind.CHANNEL, str(channel_id))


@dataclass(frozen=True, slots=True)
class ListEntry:
    paper: Paper
    notes: str | None = None  # the Notes block an imported list carried


class WatchKind(StrEnum):
    AUTHOR = "author"
    PHRASE = "phrase"


@dataclass(frozen=True, slots=True)
class Watch:
    """A person following an author or a phrase."""

    id: int
    user_id: str
    guild_id: str
    channel_id: str  # where it was set: the digest that mentions them
    kind: WatchKind
    text: str
    by_dm: bool
    dms_closed: bool = False  # DMs refused: mentioned in the channel's digest instead
    told_why: bool = False  # that mention has said so once


@dataclass(frozen=True, slots=True)
class WatchNotice:
    id: int
    user_id: str
    message: OutgoingMessage


@dataclass(frozen=True, slots=True)
class WatchMention:
    """A watcher to mention under a paper in their channel's digest."""

    arxiv_id: str
    user_id: str
    watch: str  # what they follow, as they typed it
    tell_why: bool  # their DMs are closed and no mention has said so yet
