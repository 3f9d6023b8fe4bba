"""The bot's work besides answering people: polling arXiv, posting due digests, and
recording that the gateway is alive, each in its own loop.

Plain asyncio: the Discord layer starts it with a `Sender` and a few callbacks (when
the gateway is ready, which servers it is in, its latency), so none of this imports
discord and all of it runs under any sender.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bot.channel_taste import ChannelTastes
from bot.classify import Classifier
from bot.config import Settings
from bot.digests.delivery import Sender, deliver_due
from bot.ingest import ArxivPacer, LookupReport, fetch_papers
from bot.judge import RelevanceJudge
from bot.leadership import Leadership, SoleProcess
from bot.pipeline import classify_pending, run_cycle
from bot.store import Store
from bot.summarize import Summarizer
from bot.watches import DirectSender, match_new_papers, send_notices

log = logging.getLogger(__name__)

DIGEST_CHECK_SECONDS = 30
LEAD_RETRY_SECONDS = 10
HEARTBEAT_RECORD_SECONDS = 30


class Service:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        classifier: Classifier,
        summarizer: Summarizer | None = None,
        judge: RelevanceJudge | None = None,
        leadership: Leadership | None = None,
        heartbeat_key: str = "gateway_heartbeat",
    ) -> None:
        self.store = store
        # Polls and digests run in the leading process only (always, on SQLite).
        self.leadership: Leadership = leadership or SoleProcess()
        self.heartbeat_key = heartbeat_key
        # Starts every delivery lease this process takes: a successor frees exactly these.
        self.lease_prefix = f"{uuid.uuid4().hex[:12]}:"
        self.settings = settings
        self.classifier = classifier
        self.summarizer = summarizer
        self.judge = judge
        self.poll_lock = asyncio.Lock()  # one poll cycle at a time
        # Polls and on-demand lookups (a saved id the store lacks) share arXiv's pace.
        self.arxiv_pacer = ArxivPacer(settings.arxiv.delay_seconds)
        self.tastes = ChannelTastes(classifier, settings.digests.votes_to_learn)
        self._tasks: list[asyncio.Task[None]] = []
        self._direct: DirectSender | None = None

    def start(
        self,
        sender: Sender,
        ready: Callable[[], Awaitable[object]],
        latency: Callable[[], float | None],
        *,
        poll: bool = True,
    ) -> None:
        """Start the loops; `latency` returns None while the gateway is down."""
        self._direct = sender if isinstance(sender, DirectSender) else None
        self._tasks.append(
            asyncio.create_task(self._heartbeat_forever(ready, latency), name="heartbeat")
        )
        self._tasks.append(
            asyncio.create_task(self._lead_forever(sender, ready, poll), name="lead")
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.leadership.close()

    async def _lead_forever(
        self,
        sender: Sender,
        ready: Callable[[], Awaitable[object]],
        poll: bool,
    ) -> None:
        """Poll and post while this process leads; stand by while another does. A loop
        that dies (the database unreachable, say) is logged and started again after a
        pause, never in a tight loop."""
        while True:
            await self.leadership.acquire()
            dead_leases = await self._take_over()
            while self.leadership.leading:
                work = [
                    asyncio.create_task(self._digests_forever(sender, ready, dead_leases)),
                    *([asyncio.create_task(self._poll_forever())] if poll else []),
                ]
                lost = asyncio.create_task(self.leadership.lost())
                try:
                    done, _ = await asyncio.wait([lost, *work], return_when=FIRST_COMPLETED)
                finally:
                    for task in (lost, *work):
                        task.cancel()
                    results = await asyncio.gather(lost, *work, return_exceptions=True)
                for result in results:
                    if isinstance(result, Exception):
                        log.error("leader loop ended: %s: %s", type(result).__name__, result)
                if lost in done:
                    break
                dead_leases = [self.lease_prefix]  # what the ended loop may have held
                await asyncio.sleep(LEAD_RETRY_SECONDS)

    async def _take_over(self) -> list[str] | None:
        """Record this process as the leader; the lease prefixes to free: the previous
        leader's and this process's own (None on SQLite: every lease, one process)."""
        if isinstance(self.leadership, SoleProcess):
            return None
        while True:
            try:
                previous = await self.store.get_state("leader_leases")
                await self.store.set_state("leader", self.heartbeat_key)
                await self.store.set_state("leader_leases", self.lease_prefix)
                return [p for p in {self.lease_prefix, previous[0] if previous else ""} if p]
            except Exception as exc:
                log.error("could not record the leader (%s); again in %ds", exc, LEAD_RETRY_SECONDS)
                await asyncio.sleep(LEAD_RETRY_SECONDS)

    async def poll_once(self) -> None:
        async with self.poll_lock:
            await run_cycle(
                self.store,
                self.settings,
                self.classifier,
                self.summarizer,
                judge=self.judge,
                pacer=self.arxiv_pacer,
            )

    async def tell_watchers(self) -> None:
        """Match the new papers against watches and send the direct messages due."""
        try:
            await match_new_papers(self.store)
            if self._direct is not None:
                await send_notices(self.store, self._direct)
        except Exception:
            log.exception("watch round failed; next one after the next poll")

    async def fetch_papers(self, arxiv_ids: list[str]) -> LookupReport:
        """Papers people asked for by id that no poll brought: fetched from arXiv, scored
        like the rest. Raises FeedError when arXiv cannot be reached."""
        report = await fetch_papers(self.store, self.settings.arxiv, arxiv_ids, self.arxiv_pacer)
        await classify_pending(self.store, self.classifier)
        return report

    async def _poll_forever(self) -> None:
        interval = self.settings.poll_interval_minutes * 60
        wait = await self._until_next_poll(interval)
        while True:
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self.poll_once()
            except Exception:
                log.exception("poll cycle failed; next one as scheduled")
            await self.tell_watchers()
            wait = interval

    async def _until_next_poll(self, interval: float) -> float:
        """A restart polls at once only when the last complete poll is older than the
        interval: restarts (or a crash loop) never hammer arXiv."""
        last = await self.store.last_successful_poll()
        if last is None:
            return 0.0
        elapsed = (datetime.now(UTC) - last).total_seconds()
        if elapsed >= interval:
            return 0.0
        log.info(
            "first poll in %ds; the last complete one was %ds ago", interval - elapsed, elapsed
        )
        return interval - elapsed

    async def _heartbeat_forever(
        self, ready: Callable[[], Awaitable[object]], latency: Callable[[], float | None]
    ) -> None:
        """Record that the gateway is alive, for `python -m bot health`."""
        await ready()
        while True:
            seconds = latency()
            if seconds is not None:
                try:
                    await self.store.set_state(self.heartbeat_key, f"{seconds:.3f}")
                    # Only several processes need to know who leads (health reads it).
                    if self.leadership.leading and not isinstance(self.leadership, SoleProcess):
                        await self.store.set_state("leader", self.heartbeat_key)
                except Exception:
                    log.exception("could not record the gateway heartbeat")
            await asyncio.sleep(HEARTBEAT_RECORD_SECONDS)

    async def _digests_forever(
        self,
        sender: Sender,
        ready: Callable[[], Awaitable[object]],
        dead_leases: list[str] | None,
    ) -> None:
        await ready()
        # This is the one process that delivers: leases a dead predecessor left are void,
        # and its half-posted digests resume now (their nonces keep repeats out).
        await self.store.clear_delivery_leases(dead_leases)
        # Every round also finishes digests left half-posted (by a crash or Discord failing),
        # each before anything new for its channel.
        while True:
            try:
                await deliver_due(
                    self.store,
                    self.settings.digests,
                    sender,
                    datetime.now(UTC),
                    tastes=self.tastes,
                    holder_prefix=self.lease_prefix,
                )
            except Exception:
                log.exception("digest round failed; next one in %ds", DIGEST_CHECK_SECONDS)
            await asyncio.sleep(DIGEST_CHECK_SECONDS)
