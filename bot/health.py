"""`python -m bot health`: is the service alive? One line, for people and for Docker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.config import StorageSettings
from bot.store import DatabaseTooNewError, open_store

HEARTBEAT_MAX_AGE = timedelta(minutes=3)


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


async def check_health(
    storage: StorageSettings,
    poll_interval_minutes: int,
    now: datetime | None = None,
    heartbeat_key: str = "gateway_heartbeat",
) -> tuple[bool, str]:
    """(healthy, one line). Several processes on PostgreSQL each answer for their own
    gateway heartbeat, and say whether they lead (poll and post) or stand by."""
    now = now or datetime.now(UTC)
    if not storage.is_postgres and not storage.database_path.exists():
        return False, f"not running: no database at {storage.database_path}"
    try:
        store = await open_store(storage, migrate=False)
    except DatabaseTooNewError as exc:
        return False, f"database not current: {exc}"
    except Exception as exc:  # a corrupt or unreadable file
        return False, f"database unreadable: {exc}"
    try:
        heartbeat = await store.get_state(heartbeat_key)
        leader = await store.get_state("leader") if storage.is_postgres else None
        started = await store.get_state("service_started")
        last_poll = await store.last_successful_poll()
    finally:
        await store.close()
    if heartbeat is None:
        return False, "not running: the bot has never connected to Discord"
    age = now - heartbeat[1]
    if age > HEARTBEAT_MAX_AGE:
        return False, f"not running: last Discord heartbeat {_ago(age)}"
    # arXiv has bad hours; only a poller silent for three intervals (and 30 min) is unwell.
    allowed = timedelta(minutes=3 * poll_interval_minutes + 30)
    reference = last_poll or (started[1] if started else None)
    if reference is None or now - reference > allowed:
        when = _ago(now - last_poll) if last_poll else "never"
        return False, f"poller stalled: last successful arXiv poll {when}"
    poll_text = _ago(now - last_poll) if last_poll else "none yet (just started)"
    role = ""
    if storage.is_postgres:
        leads = leader is not None and now - leader[1] <= HEARTBEAT_MAX_AGE
        if leads and leader is not None and leader[0] == heartbeat_key:
            role = " (leader)"
        else:
            other = leader[0].split(":", 1)[-1] if leads and leader is not None else "none seen"
            role = f" (standby; leader: {other})"
    return True, (
        f"ok{role}: Discord heartbeat {_ago(age)}, last successful arXiv poll {poll_text}"
    )
