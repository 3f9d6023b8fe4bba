"""Keeping the bot connected without crashing or looping.

discord.py reconnects a live gateway by itself (1006, 4000, resumable closes). What it
leaves to its caller, this handles: Discord unreachable at login or at the first
gateway connection is retried here, in the process, with capped and jittered backoff
and one log line per attempt (a crash would make the container restart in a loop); a
refused token ends the process with one line; SIGTERM at any moment, mid-login
included, closes cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

import aiohttp
import discord

from bot.discord_bot.client import ArxivBot

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 60.0
HEALTHY_SESSION_SECONDS = 300.0
# Gateway close codes that no retry can fix: the token, the shard or the intents are wrong.
_FATAL_CLOSES = {
    4004: "Discord refused DISCORD_TOKEN (gateway close 4004): check the bot's token",
    4010: "Discord refused the shard settings (gateway close 4010)",
    4011: "this bot is in too many servers for one process (gateway close 4011)",
    4012: "Discord refused the gateway version (gateway close 4012)",
    4013: "Discord refused the gateway intents (gateway close 4013)",
    4014: "the bot asked for privileged intents it is not allowed (gateway close 4014)",
}


class TokenRefused(Exception):
    """Discord will not let this bot in; retrying cannot help."""


def fatal_reason(failure: BaseException) -> str | None:
    if isinstance(failure, discord.LoginFailure):
        return "Discord refused DISCORD_TOKEN (401): check the bot's token"
    if isinstance(failure, discord.PrivilegedIntentsRequired):
        return _FATAL_CLOSES[4014]
    if isinstance(failure, discord.ConnectionClosed):
        return _FATAL_CLOSES.get(failure.code)
    return None


def transient(failure: BaseException) -> bool:
    """Failures a later attempt can get past. discord.py 2.7 raises AttributeError
    ('NoneType' has no attribute 'sequence') when its first gateway connection is
    refused: that is a connection failure too."""
    if isinstance(failure, discord.HTTPException):
        return failure.status >= 500 or failure.status == 429
    if isinstance(failure, AttributeError):
        return "sequence" in str(failure)
    return isinstance(
        failure,
        OSError
        | aiohttp.ClientError
        | TimeoutError
        | discord.GatewayNotFound
        | discord.ConnectionClosed
        | ConnectionError,
    )


async def _session(
    bot: ArxivBot, token: str, stop: asyncio.Event, shutdown_seconds: float
) -> BaseException | None:
    """One client from login to its end: None when stopped by a signal, else why it ended."""
    running = asyncio.create_task(bot.start(token))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if stop.is_set():
        log.info("shutdown requested; finishing the current write")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bot.close(), shutdown_seconds)
        if not running.done():
            running.cancel()
        # Whatever login or connect raises while being closed is not a failure.
        await asyncio.gather(running, return_exceptions=True)
        return None
    failure = running.exception() if not running.cancelled() else None
    with contextlib.suppress(Exception):
        await bot.close()
    return failure or ConnectionError("the connection to Discord ended")


async def run_until_stopped(
    make_bot: Callable[[], ArxivBot],
    token: str,
    stop: asyncio.Event,
    shutdown_seconds: float,
) -> None:
    """Run a client until `stop` is set, replacing it after transient failures. Raises
    TokenRefused for a refused token, and anything unexpected as it is."""
    delay = FIRST_RETRY_SECONDS
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        began = loop.time()
        failure = await _session(make_bot(), token, stop, shutdown_seconds)
        if failure is None:
            return
        if loop.time() - began > HEALTHY_SESSION_SECONDS:
            delay = FIRST_RETRY_SECONDS  # it ran fine for a while: a new outage starts afresh
        reason = fatal_reason(failure)
        if reason is not None:
            raise TokenRefused(reason)
        if not transient(failure):
            raise failure
        wait = min(delay, MAX_RETRY_SECONDS) * random.uniform(0.8, 1.2)
        log.warning(
            "could not reach Discord (%s: %s); retrying in %.1fs",
            type(failure).__name__,
            str(failure)[:200],
            wait,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)  # a signal ends the wait at once
        delay *= 2
