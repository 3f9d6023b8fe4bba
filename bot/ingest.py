"""Polling arXiv: newest first, page by page, until we reach what an earlier poll covered.

The `arxiv` client is synchronous (requests + sleeps), so every request runs in a
thread. We ask it for one page per call and keep the paging, the pause between
requests and the retries here, where they can be async, logged and recorded.
Each page is stored as soon as it arrives, so a poll that fails half-way keeps
what it read; the coverage mark advances only when a poll reaches the end, so
the next poll reads the rest again instead of leaving a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import arxiv
import requests

from bot.arxiv_ids import is_category, split_version
from bot.config import ArxivSettings
from bot.listing import announcement_date
from bot.models import Paper, PollOutcome, UpsertCounts
from bot.store import Store

log = logging.getLogger(__name__)

_OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
_ATOM = "{http://www.w3.org/2005/Atom}"
_BACKOFF_CAP_SECONDS = 120.0


class FeedError(Exception):
    """arXiv answered, but not with a usable page (malformed, or empty where results exist)."""


@dataclass(slots=True)
class _PageCheck:
    total: int
    entries: int


def _check_feed(content: bytes) -> _PageCheck:
    """Parse strictly: the `arxiv` parser recovers from broken XML and could hand us a
    truncated abstract, so a page that is not well-formed is refused and fetched again."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise FeedError(f"malformed Atom from arXiv ({exc})") from None
    if root.tag != f"{_ATOM}feed":
        raise FeedError(f"arXiv answered with <{root.tag}> instead of an Atom feed")
    total_text = root.findtext(f"{_OPENSEARCH}totalResults")
    try:
        total = int(total_text.strip()) if total_text else 0
    except ValueError:
        raise FeedError(f"arXiv sent a non-numeric totalResults {total_text!r}") from None
    return _PageCheck(total=total, entries=len(root.findall(f"{_ATOM}entry")))


class _ArxivSession(requests.Session):
    """A requests session with a timeout, a request counter and strict feed checks."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self.requests_made = 0
        self.last_page: _PageCheck | None = None
        self.retry_after: float | None = None

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        self.requests_made += 1
        self.last_page, self.retry_after = None, None
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 200:
            self.last_page = _check_feed(response.content)
        else:
            header = response.headers.get("Retry-After", "")
            self.retry_after = float(header) if header.strip().isdigit() else None
        return response


@dataclass(slots=True)
class PollProgress:
    requests: int = 0
    pages: int = 0
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    reached: datetime | None = None  # oldest `updated` stamp read so far


@dataclass(frozen=True, slots=True)
class PollReport:
    poll_id: int
    outcome: PollOutcome
    reason: str | None
    requests: int
    counts: UpsertCounts


def paper_from_result(result: arxiv.Result) -> Paper:
    arxiv_id, version = split_version(result.get_short_id())
    title = " ".join(result.title.split())
    if not title:
        raise ValueError("entry without a title")
    categories = [result.primary_category, *result.categories]
    kept = tuple(dict.fromkeys(c for c in categories if c and is_category(c)))
    return Paper(
        arxiv_id=arxiv_id,
        version=version,
        title=title,
        abstract=" ".join(result.summary.split()),  # older feeds hard-wrap at 80 columns
        authors=tuple(a.name.strip() for a in result.authors if a.name.strip()),
        categories=kept,
        published=result.published.astimezone(UTC),
        updated=result.updated.astimezone(UTC),
        announced=announcement_date(result.published),
        comment=" ".join(result.comment.split()) if result.comment else None,
    )


class ArxivListing:
    """The configured categories, newest update first, one page per call."""

    def __init__(self, settings: ArxivSettings) -> None:
        self._settings = settings
        self._session = _ArxivSession(settings.timeout_seconds)
        # Our own loop paces and retries; the client makes exactly one request per call.
        self._client = arxiv.Client(page_size=settings.page_size, delay_seconds=0, num_retries=0)
        self._client.query_url_format = settings.api_url + "?{}"
        # The client has no timeout option; its session is the one place to set it.
        self._client._session = self._session
        self._query = " OR ".join(f"cat:{c}" for c in settings.categories)

    @property
    def requests_made(self) -> int:
        return self._session.requests_made

    @property
    def retry_after(self) -> float | None:
        return self._session.retry_after

    def fetch_page(self, start: int) -> tuple[list[arxiv.Result], int]:
        """Blocking: one request. Returns the page's results and the feed's total."""
        page_size = self._settings.page_size
        search = arxiv.Search(
            query=self._query,
            max_results=start + page_size,
            sort_by=arxiv.SortCriterion.LastUpdatedDate,
            sort_order=arxiv.SortOrder.Descending,
        )
        results = list(self._client.results(search, offset=start))
        check = self._session.last_page
        total = check.total if check else 0
        if not results and (start == 0 or start < total):
            # The six categories always hold papers: an empty answer here is arXiv
            # throttling or failing, not "nothing announced".
            raise FeedError(
                f"arXiv returned an empty page at offset {start} (throttled or overloaded)"
            )
        return results, total

    def fetch_ids(self, arxiv_ids: list[str]) -> list[arxiv.Result]:
        """Blocking: exactly one request for up to a page of ids (latest versions).
        arXiv counts the ids it does not know in the feed's total, so the client would
        ask for a second page and find it empty: stop after the first page instead."""
        search = arxiv.Search(id_list=arxiv_ids, max_results=len(arxiv_ids))
        results: list[arxiv.Result] = []
        for result in self._client.results(search):
            results.append(result)
            page = self._session.last_page
            if page is not None and len(results) >= page.entries:
                break
        return results


_RETRYABLE = (arxiv.ArxivError, requests.RequestException, FeedError)

T = TypeVar("T")


async def in_daemon_thread(function: Callable[..., T], *args: object) -> T:
    """Run a blocking call off the event loop in a daemon thread. Unlike the default
    executor, a request stuck until its timeout cannot hold up a shutdown."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], object]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(outcome)

    def work() -> None:
        try:
            result = function(*args)
        except BaseException as exc:  # handed to the awaiting task
            error = exc

            def fail() -> None:
                if not future.done():
                    future.set_exception(error)

            settle(fail)
        else:

            def succeed() -> None:
                if not future.done():
                    future.set_result(result)

            settle(succeed)

    threading.Thread(target=work, daemon=True, name="arxiv-request").start()
    return await future


async def _with_retries(
    request: Callable[[], T],
    listing: ArxivListing,
    what: str,
    settings: ArxivSettings,
    pacer: ArxivPacer,
) -> T:
    attempts = settings.retries + 1
    for attempt in range(1, attempts + 1):
        await pacer.wait()
        try:
            return await in_daemon_thread(request)
        except _RETRYABLE as exc:
            reason = _describe(exc)
            if attempt == attempts:
                raise FeedError(f"{reason} (gave up after {attempts} attempts)") from exc
            backoff = min(settings.delay_seconds * 2**attempt, _BACKOFF_CAP_SECONDS)
            backoff = max(backoff, listing.retry_after or 0.0) * (1 + random.random() / 4)
            log.warning(
                "arxiv request failed %s attempt=%d/%d reason=%s; retrying in %.1fs",
                what,
                attempt,
                attempts,
                reason,
                backoff,
            )
            await asyncio.sleep(backoff)
    raise AssertionError("unreachable")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, arxiv.HTTPError):
        return f"HTTP {exc.status} from arXiv"
    if isinstance(exc, requests.Timeout):
        return "arXiv did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect to arXiv"
    if isinstance(exc, arxiv.UnexpectedEmptyPageError):
        return "arXiv returned an unexpectedly empty page"
    return str(exc) or type(exc).__name__


class ArxivPacer:
    """Keeps at least `delay` seconds between the starts of consecutive requests. The
    service shares one between its polls and on-demand lookups, as arXiv asks."""

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._last: float | None = None
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            if self._last is not None:
                remaining = self._delay - (time.monotonic() - self._last)
                if remaining > 0:
                    await asyncio.sleep(remaining)
            self._last = time.monotonic()


async def poll_arxiv(
    store: Store,
    settings: ArxivSettings,
    *,
    now: datetime | None = None,
    on_progress: Callable[[PollProgress], None] | None = None,
    pacer: ArxivPacer | None = None,
) -> PollReport:
    """One poll: read new and updated papers until reaching what earlier polls covered
    (or the lookback window on a first run), store them, and record how it went."""
    now = now or datetime.now(UTC)
    covered = await store.covered_until()
    cutoff = covered or now - timedelta(days=settings.lookback_days)
    poll_id = await store.start_poll()
    listing = ArxivListing(settings)
    pacer = pacer or ArxivPacer(settings.delay_seconds)
    progress = PollProgress()
    newest: datetime | None = None
    start = 0
    log.info("poll %d started cutoff=%s", poll_id, cutoff.isoformat())
    try:
        while True:
            try:
                results, total = await _with_retries(
                    functools.partial(listing.fetch_page, start),
                    listing,
                    f"offset={start}",
                    settings,
                    pacer,
                )
            except FeedError as exc:
                progress.requests = listing.requests_made
                await store.finish_poll(
                    poll_id, PollOutcome.FAILED, progress.requests, progress.counts, str(exc)
                )
                log.error("poll %d failed offset=%d reason=%s", poll_id, start, exc)
                return PollReport(
                    poll_id, PollOutcome.FAILED, str(exc), progress.requests, progress.counts
                )
            papers = _convert(results)
            if papers:
                newest = max(newest or papers[0].updated, max(p.updated for p in papers))
            fresh = [p for p in papers if p.updated >= cutoff]
            progress.counts.add(await store.upsert_papers(fresh))
            progress.requests = listing.requests_made
            progress.pages += 1
            if papers:
                progress.reached = min(p.updated for p in papers)
            await store.record_poll_progress(poll_id, progress.requests, progress.counts)
            if on_progress:
                on_progress(progress)
            start += len(results)
            if len(fresh) < len(papers) or start >= total or not results:
                break
    except BaseException:
        # Cancelled (shutdown) or a bug: what was stored stays; the poll says it stopped.
        progress.requests = listing.requests_made
        await asyncio.shield(
            store.finish_poll(
                poll_id,
                PollOutcome.FAILED,
                progress.requests,
                progress.counts,
                "interrupted before the end of the listing",
            )
        )
        raise
    counts = progress.counts
    outcome = PollOutcome.OK if counts.new or counts.updated else PollOutcome.NOTHING
    newest_seen = max(filter(None, (newest, covered)), default=None)
    await store.finish_poll(poll_id, outcome, progress.requests, counts, None, newest_seen)
    log.info(
        "poll %d %s requests=%d new=%d updated=%d unchanged=%d",
        poll_id,
        outcome.value,
        progress.requests,
        counts.new,
        counts.updated,
        counts.unchanged,
    )
    return PollReport(poll_id, outcome, None, progress.requests, counts)


def _convert(results: list[arxiv.Result]) -> list[Paper]:
    papers = []
    for result in results:
        try:
            papers.append(paper_from_result(result))
        except (ValueError, AttributeError, TypeError) as exc:
            log.warning("skipping arxiv entry id=%s reason=%s", result.entry_id, exc)
    return papers


@dataclass(frozen=True, slots=True)
class LookupReport:
    stored: tuple[str, ...]  # ids now in the store (fetched, or there already)
    unknown: tuple[str, ...]  # ids arXiv does not know


async def fetch_papers(
    store: Store, settings: ArxivSettings, arxiv_ids: list[str], pacer: ArxivPacer
) -> LookupReport:
    """Store the papers of these ids that the store lacks, asking arXiv for them a page at
    a time under the shared pacer. Raises FeedError when arXiv cannot be reached."""
    wanted = list(dict.fromkeys(arxiv_ids))
    missing = [i for i in wanted if await store.get_paper(i) is None]
    found: set[str] = set()
    listing = ArxivListing(settings)
    for start in range(0, len(missing), settings.page_size):
        chunk = missing[start : start + settings.page_size]
        results = await _with_retries(
            functools.partial(listing.fetch_ids, chunk),
            listing,
            f"ids={len(chunk)}",
            settings,
            pacer,
        )
        # arXiv answers an id it does not know with no entry, or with an error entry; it
        # writes ids in lower case.
        asked = {i.lower(): i for i in chunk}
        papers = [p for p in _convert(results) if p.arxiv_id.lower() in asked]
        await store.upsert_papers(papers, from_poll=False)
        found.update(asked[p.arxiv_id.lower()] for p in papers)
        log.info("fetched papers on demand asked=%d found=%d", len(chunk), len(papers))
    unknown = tuple(i for i in missing if i not in found)
    return LookupReport(tuple(i for i in wanted if i not in unknown), unknown)
