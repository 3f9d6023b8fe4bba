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
# The 2025-11-12 digest: 15 papers, five to a layout message.
FULL_DIGEST = 3


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


# -- reading what the bot posted -----------------------------------------------------------


def components_of(message: dict) -> list[dict]:
    """Every component of a posted message in reading order, nested ones included."""
    found: list[dict] = []

    def walk(components: list[dict]) -> None:
        for component in components:
            found.append(component)
            walk(component.get("components") or [])
            if component.get("accessory"):
                walk([component["accessory"]])

    walk(message.get("components") or [])
    return found


def buttons(message: dict, prefix: str = "") -> list[dict]:
    return [
        c
        for c in components_of(message)
        if c.get("type") == 2 and c.get("custom_id", "").startswith(prefix)
    ]


def papers_of(message: dict) -> list[str]:
    """The arXiv ids of a digest message's papers, in order (each paper has one Summary
    button)."""
    return [b["custom_id"].rsplit(":", 1)[-1] for b in buttons(message, "paper:summary:")]


def text_displays(message: dict) -> list[str]:
    return [c["content"] for c in components_of(message) if c.get("type") == 10]


def all_text(message: dict) -> str:
    """What a reader reads in a message: its content, and the text of its layout."""
    return "\n".join([message.get("content") or "", *text_displays(message)])
