"""The service's loops with any Sender: no Discord needed, a real SQLite file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.classify import load_classifier
from bot.config import Settings
from bot.models import OutgoingMessage, PollOutcome, UpsertCounts
from bot.pipeline import classify_pending
from bot.service import Service
from bot.store import Store
from bot.subscriptions import subscribe
from tests.fake_arxiv import FakeArxiv
from tests.helpers import fixture_papers

GUILD, CHANNEL = "910000000000000001", "920000000000000001"

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


class RecordingSender:
    def __init__(self) -> None:
        self.posted: list[tuple[str, OutgoingMessage]] = []

    async def send(self, channel_id: str, message: OutgoingMessage, nonce: str) -> str:
        self.posted.append((channel_id, message))
        return str(len(self.posted))


async def until(condition, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_due_digests_are_posted_and_heartbeats_recorded_until_stopped(
    store: Store, settings: Settings
) -> None:
    await store.upsert_papers(fixture_papers("2025-11-12"))
    await classify_pending(store, load_classifier())
    # Subscribed yesterday at a time already past: due now.
    past = datetime.now(UTC) - timedelta(days=1)
    await subscribe(store, settings.digests, GUILD, CHANNEL, digest_time="00:00", now=past)
    sender, gateway = RecordingSender(), {"latency": None}
    service = Service(store, settings, load_classifier())

    async def ready() -> None:
        return None

    service.start(sender, ready, lambda: gateway["latency"], poll=False)
    await until(lambda: len(sender.posted) >= 2)
    assert {channel for channel, _ in sender.posted} == {CHANNEL}
    assert sender.posted[0][1].content.startswith("## arXiv efficiency digest · ")
    assert await store.get_state("gateway_heartbeat") is None  # gateway down: nothing recorded

    await service.stop()  # the loops end; nothing runs on after stop
    posted = len(sender.posted)
    await asyncio.sleep(0.1)
    assert len(sender.posted) == posted

    # The gateway is up: its latency is recorded for `python -m bot health`.
    gateway["latency"] = 0.042
    service.start(sender, ready, lambda: gateway["latency"], poll=False)
    try:
        for _ in range(250):
            recorded = await store.get_state("gateway_heartbeat")
            if recorded:
                break
            await asyncio.sleep(0.02)
        assert recorded is not None and recorded[0] == "0.042"
        # Who leads matters only with several processes: a sole one never records it.
        assert await store.get_state("leader") is None
    finally:
        await service.stop()


async def test_a_restart_right_after_a_poll_starts_none(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    """Restarts (or a crash loop) never hammer arXiv: the first poll waits out the interval
    when the last complete poll is recent, and runs at once when it is not."""
    fake_arxiv.add_day("2025-11-12")
    poll = await store.start_poll()
    await store.finish_poll(poll, PollOutcome.OK, 1, UpsertCounts(new=1))
    sender = RecordingSender()

    async def ready() -> None:
        return None

    service = Service(store, settings, load_classifier())
    service.start(sender, ready, lambda: None)
    await asyncio.sleep(0.5)
    await service.stop()
    assert fake_arxiv.requests == []

    # The last complete poll is older than the interval: poll at once.
    await store._conn.execute(
        "UPDATE polls SET finished_at = ?",
        ((datetime.now(UTC) - timedelta(minutes=settings.poll_interval_minutes + 1)).isoformat(),),
    )
    service.start(sender, ready, lambda: None)
    try:
        await until(lambda: len(fake_arxiv.requests) > 0)
    finally:
        await service.stop()
