"""Which process polls arXiv and posts digests when several share one database.

On SQLite there is one process and it always leads. On PostgreSQL every `run` process
answers its gateway shards' interactions, and exactly one of them, the leader, does the
work that spends arXiv's and Discord's shared budgets: it holds a session-level advisory
lock on a connection of its own. PostgreSQL releases that lock the moment the leader's
connection ends (a crash, SIGKILL, or a machine gone quiet past the TCP keepalives), and
a standby that asks next takes over. A leader that loses its connection stops leading at
once; what it was delivering is fenced by the delivery leases and message nonces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from bot.config import Settings

log = logging.getLogger(__name__)

STANDBY_RETRY_SECONDS = 10.0  # how often a standby asks for the lock
LEADER_CHECK_SECONDS = 5.0  # how often the leader makes sure its lock connection lives
# The server notices a leader whose machine vanished without closing its connection.
_KEEPALIVE = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}


class Leadership(Protocol):
    @property
    def leading(self) -> bool: ...

    async def acquire(self) -> None:
        """Return once this process leads."""

    async def lost(self) -> None:
        """Return once this process no longer leads."""

    async def close(self) -> None: ...


class SoleProcess:
    """SQLite: the only process leads from the start and never stops."""

    leading = True

    async def acquire(self) -> None:
        return None

    async def lost(self) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


class AdvisoryLockLeadership:
    """PostgreSQL: leads while holding `pg_advisory_lock(key)` on its own connection."""

    def __init__(
        self,
        url: str,
        key: int,
        retry_seconds: float = STANDBY_RETRY_SECONDS,
        check_seconds: float = LEADER_CHECK_SECONDS,
    ) -> None:
        self._url = url
        self._key = key
        self._retry = retry_seconds
        self._check = check_seconds
        self._conn: Any = None
        self.leading = False

    async def acquire(self) -> None:
        import asyncpg

        announced = False
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(
                        self._url, timeout=10, server_settings=_KEEPALIVE
                    )
                if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
                    self.leading = True
                    log.info("leading: this process polls arXiv and posts digests")
                    return
                if not announced:
                    log.info("standby: another process leads; asking every %.0fs", self._retry)
                    announced = True
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("cannot ask for leadership (%s); again in %.0fs", exc, self._retry)
                await self._drop()
            await asyncio.sleep(self._retry)

    async def lost(self) -> None:
        import asyncpg

        while True:
            await asyncio.sleep(self._check)
            try:
                await asyncio.wait_for(self._conn.fetchval("SELECT 1"), self._check)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("lost leadership: the lock's connection failed (%s)", exc)
                self.leading = False
                await self._drop()
                return

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.terminate()
        self._conn = None

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.close(), 5)
        self._conn = None
        self.leading = False


def leadership_for(settings: Settings) -> Leadership:
    if not settings.storage.is_postgres:
        return SoleProcess()
    from bot.store.postgres import LEADER_LOCK_KEY

    return AdvisoryLockLeadership(settings.database_url, LEADER_LOCK_KEY)


def heartbeat_key(settings: Settings) -> str:
    """Where this process records that its gateway is alive: one key per process on
    PostgreSQL (PROCESS_NAME, the host name by default), so `health` speaks for its own."""
    if not settings.storage.is_postgres:
        return "gateway_heartbeat"
    return f"gateway_heartbeat:{settings.process_name}"
