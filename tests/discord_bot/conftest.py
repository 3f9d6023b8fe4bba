"""Fixtures of the Discord tests: a loopback Discord, settings that reach it, a bot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import discord
import pytest
import yarl
from pydantic import SecretStr

from bot.classify import load_classifier
from bot.config import Settings
from bot.discord_bot.client import ArxivBot
from bot.pipeline import classify_pending
from bot.store import Store
from tests.discord_bot.harness import TOKEN, start_bot, stop_bot
from tests.fake_discord import GUILD_ID, FakeDiscord
from tests.helpers import fixture_papers


@pytest.fixture
def fake_discord() -> Iterator[FakeDiscord]:
    server = FakeDiscord().start()
    yield server
    server.stop()
    # discord.py keeps these as globals; leave them as a fresh process would have them.
    discord.http.Route.BASE = "https://discord.com/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("wss://gateway.discord.gg/")


@pytest.fixture
def bot_settings(settings: Settings, fake_discord: FakeDiscord) -> Settings:
    return settings.model_copy(
        update={
            "discord_token": SecretStr(TOKEN),
            "discord_api_base_url": fake_discord.api_base,
            "discord_guild_id": int(GUILD_ID),
            "digest_max_papers": 15,
        }
    )


@pytest.fixture
async def papers_store(store: Store) -> Store:
    await store.upsert_papers(fixture_papers("2025-10-03") + fixture_papers("2025-11-12"))
    await classify_pending(store, load_classifier())
    return store


@pytest.fixture
async def running(
    bot_settings: Settings, papers_store: Store, fake_discord: FakeDiscord
) -> AsyncIterator[ArxivBot]:
    bot, task = await start_bot(bot_settings, papers_store, fake_discord)
    yield bot
    await stop_bot(bot, task)
