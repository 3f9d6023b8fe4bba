"""`python -m bot health` notices a silent gateway and a stalled poller: the clock is moved,
nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.config import Settings
from bot.health import check_health
from bot.models import PollOutcome, UpsertCounts
from bot.store import Store

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


async def test_health_follows_the_heartbeat_and_the_poller(
    store: Store, settings: Settings
) -> None:
    storage, interval = settings.storage, settings.poll_interval_minutes
    healthy, line = await check_health(storage, interval)
    assert not healthy and line == "not running: the bot has never connected to Discord"

    await store.set_state("service_started", "1")
    await store.set_state("gateway_heartbeat", "0.050")
    poll = await store.start_poll()
    await store.finish_poll(poll, PollOutcome.OK, 1, UpsertCounts(new=3))
    now = datetime.now(UTC)
    healthy, line = await check_health(storage, interval, now)
    if not storage.is_postgres:
        assert healthy and line.startswith("ok: Discord heartbeat 0s ago")
    else:  # several processes may share the database: each says whether it leads
        assert healthy and line.startswith("ok (standby; leader: none seen): Discord heartbeat")
        await store.set_state("leader", "gateway_heartbeat:other-host")
        healthy, line = await check_health(storage, interval, datetime.now(UTC))
        assert healthy and line.startswith("ok (standby; leader: other-host): Discord")
        await store.set_state("leader", "gateway_heartbeat")
        healthy, line = await check_health(storage, interval, datetime.now(UTC))
        assert healthy and line.startswith("ok (leader): Discord heartbeat")

    # Four minutes without a heartbeat: the gateway is considered gone.
    healthy, line = await check_health(storage, interval, now + timedelta(minutes=4))
    assert not healthy and line == "not running: last Discord heartbeat 4 min ago"

    # The gateway beats on, but no poll has succeeded for three intervals and a half hour.
    await store.set_state("gateway_heartbeat", "0.050")
    later = now + timedelta(minutes=3 * interval + 31)
    await store._conn.execute(
        "UPDATE bot_state SET updated_at = ? WHERE key = 'gateway_heartbeat'", (later.isoformat(),)
    )
    healthy, line = await check_health(storage, interval, later)
    assert not healthy and line.startswith("poller stalled: last successful arXiv poll 3 h ago")
