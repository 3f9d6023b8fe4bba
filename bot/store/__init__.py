"""The database: one `Store` over SQLite, assembled from one part per concern.

Nothing else in the package writes SQL. Methods take and return the plain models in
`bot.models`, so callers never see rows or cursors. Each concern is a module here
(papers, search, model calls, subscriptions and digests, polls and state, reading
lists, votes, watches) over the
connection, transactions and migrations of `connection.py`; SQLite-specific SQL that
several statements share is in `dialect.py`.
"""

from __future__ import annotations

from bot.store.connection import DatabaseTooNewError, Migration, load_migrations
from bot.store.dialect import HIGHLIGHT_END, HIGHLIGHT_START, fts_match, fts_quote
from bot.store.model_calls import ModelCallStore
from bot.store.papers import PaperStore
from bot.store.polls import PollStore
from bot.store.reading_lists import ReadingListStore
from bot.store.search import SearchFilters, SearchStore
from bot.store.subscriptions import SubscriptionStore
from bot.store.votes import VoteStore
from bot.store.watches import WatchStore

__all__ = [
    "HIGHLIGHT_END",
    "HIGHLIGHT_START",
    "DatabaseTooNewError",
    "Migration",
    "SearchFilters",
    "Store",
    "fts_match",
    "fts_quote",
    "load_migrations",
]


class Store(
    PaperStore,
    SearchStore,
    ModelCallStore,
    SubscriptionStore,
    PollStore,
    ReadingListStore,
    VoteStore,
    WatchStore,
):
    """An open database. Use `async with await Store.open(path)` or call `close()`."""
