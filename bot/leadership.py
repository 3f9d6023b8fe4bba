"""Which process polls arXiv and posts digests when several share one database.

On SQLite there is one process and it always leads. On PostgreSQL every `run` process
answers its gateway shards' interactions, and exactly one of them, the leader, does the
work that spends arXiv's and Discord's shared budgets: it holds the store's `LeaderLock`
(an advisory lock on a connection of its own). PostgreSQL frees that lock the moment the
leader's connection ends (a crash, SIGKILL, or a machine gone quiet past the TCP
keepalives), and a standby that asks next takes over. A leader whose lock connection
fails stops leading at once; what it was delivering is fenced by the delivery leases and
message nonces.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from bot.config import Settings

log = logging.getLogger(__name__)

STANDBY_RETRY_SECONDS = 10.0  # how often a standby asks for the lock
LEADER_CHECK_SECONDS = 5.0  # how often the leader makes sure its lock connection lives


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


class LockLeadership:
    """PostgreSQL: leads while holding the store's leader lock."""

    def __init__(
        self,
        lock: LeaderLockLike,
        retry_seconds: float = STANDBY_RETRY_SECONDS,
        check_seconds: float = LEADER_CHECK_SECONDS,
    ) -> None:
        self._lock = lock
        self._retry = retry_seconds
        self._check = check_seconds
        self.leading = False

    async def acquire(self) -> None:
        if self.leading:
            return
        announced = False
        while True:
            try:
                if await self._lock.try_take():
                    self.leading = True
                    log.info("leading: this process polls arXiv and posts digests")
                    return
                if not announced:
                    log.info("standby: another process leads; asking every %.0fs", self._retry)
                    announced = True
            except Exception as exc:  # the database is unreachable: ask again later
                log.warning("%s; again in %.0fs", exc, self._retry)
            await asyncio.sleep(self._retry)

    async def lost(self) -> None:
        while True:
            await asyncio.sleep(self._check)
            try:
                async with asyncio.timeout(self._check):
                    held = await self._lock.still_held()
            except TimeoutError:  # a server that no longer answers: no longer ours
                held = False
            if not held:
                break
        log.warning("lost leadership: the lock's connection failed")
        self.leading = False

    async def close(self) -> None:
        await self._lock.release()
        self.leading = False


class LeaderLockLike(Protocol):
    async def try_take(self) -> bool: ...

    async def still_held(self) -> bool: ...

    async def release(self) -> None: ...


def leadership_for(settings: Settings) -> Leadership:
    if not settings.storage.is_postgres:
        return SoleProcess()
    from bot.store.postgres import LeaderLock

    return LockLeadership(LeaderLock(settings.database_url))


def heartbeat_key(settings: Settings) -> str:
    """Where this process records that its gateway is alive: one key per process on
    PostgreSQL (PROCESS_NAME, the host name by default), so `health` speaks for its own."""
    if not settings.storage.is_postgres:
        return "gateway_heartbeat"
    return f"gateway_heartbeat:{settings.process_name}"
