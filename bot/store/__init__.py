"""The database: one `Store` over SQLite, assembled from one part per concern.

Nothing else in the package writes SQL. Methods take and return the plain models in
`bot.models`, so callers never see rows or cursors. Each concern is a module here
(papers, search, model calls, subscriptions and digests, polls and state, reading
lists, votes, watches) over the
connection, transactions and migrations of `connection.py`; SQLite-specific SQL that
several statements share is in `dialect.py`.
"""

from __future__ import annotations

from bot.config import StorageSettings
from bot.store.connection import DatabaseTooNewError, Migration, load_migrations
from bot.store.dialect import HIGHLIGHT_END, HIGHLIGHT_START
from bot.store.model_calls import ModelCallStore
from bot.store.papers import PaperStore
from bot.store.polls import PollStore
from bot.store.reading_lists import ReadingListStore
from bot.store.search import SearchFilters, SearchStore, TextQuery
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
    "TextQuery",
    "load_migrations",
    "open_store",
]


async def open_store(storage: StorageSettings, *, migrate: bool = True) -> Store:
    """The configured database: SQLite by default, PostgreSQL for a postgresql:// URL.
    Raises DatabaseUnreachable (PostgreSQL) or DatabaseTooNewError with one line."""
    if storage.is_postgres:
        from bot.store.postgres import PostgresStore  # imports Store: so here, not above

        return await PostgresStore.connect(storage.database_url, migrate=migrate)
    return await Store.open(storage.database_path, migrate=migrate)


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
