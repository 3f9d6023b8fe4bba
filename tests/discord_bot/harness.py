"""Driving the real bot against the loopback Discord: start, stop, and read answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.classify import load_classifier
from bot.config import Settings
from bot.discord_bot.client import ArxivBot, bot_for
from bot.service import Service
from bot.store import Store
from bot.subscriptions import subscribe
from tests.fake_discord import CHANNEL_ID, GUILD_ID, FakeDiscord

TOKEN = "discord-test-token-never-logged"


async def start_bot(
    settings: Settings, store: Store, fake: FakeDiscord
) -> tuple[ArxivBot, asyncio.Task]:
    fake.identified.clear()
    bot = bot_for(settings, store, Service(store, settings, load_classifier()), run_poller=False)
    task = asyncio.create_task(bot.start(TOKEN))
    await asyncio.to_thread(fake.wait_ready)
    await asyncio.wait_for(bot.wait_until_ready(), 10)
    assert fake.commands
    return bot, task


async def stop_bot(bot: ArxivBot, task: asyncio.Task) -> None:
    await bot.close()
    await asyncio.gather(task, return_exceptions=True)


async def answer(fake: FakeDiscord, token: str, count: int = 1) -> list[dict]:
    return await asyncio.to_thread(fake.responses, token, 10, count)


def text_of(response: dict) -> str:
    data = response.get("data") or {}
    return data.get("content") or ""


def is_ephemeral(response: dict) -> bool:
    return bool((response.get("data") or {}).get("flags", 0) & 64)


async def subscribe_here(bot: ArxivBot, **options: object) -> None:
    await subscribe(bot.store, bot.digests, GUILD_ID, CHANNEL_ID, **options)  # type: ignore[arg-type]


def later() -> datetime:
    return datetime.now(UTC) + timedelta(days=1, minutes=1)
