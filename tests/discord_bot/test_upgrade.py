"""An upgrade across this release's migrations: a digest recorded by the previous schema
and layout, unsent when the bot stopped, is posted as it was recorded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bot.config import Settings
from bot.digests.delivery import deliver_due
from bot.store import Store, load_migrations
from tests.discord_bot.harness import later, start_bot, stop_bot
from tests.fake_discord import CHANNEL_ID, GUILD_ID, FakeDiscord

pytestmark = pytest.mark.loopback

LAST_OLD_SCHEMA = 6  # the schema before reading lists, votes, weekly digests and mentions


async def test_a_digest_recorded_before_the_upgrade_is_posted_as_recorded(
    tmp_path: Path,
    bot_settings: Settings,
    fake_discord: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = tmp_path / "old-migrations"
    old.mkdir()
    for migration in load_migrations():
        if migration.version <= LAST_OLD_SCHEMA:
            (old / f"{migration.name}.sql").write_text(migration.sql)
    monkeypatch.setattr("bot.store.connection._migrations_dir", lambda: old)
    await (await Store.open(bot_settings.database_path)).close()
    monkeypatch.undo()
    payload = {
        "content": "**arXiv efficiency digest · Wednesday, November 12, 2025**",
        "embeds": [
            {
                "title": "1. Extreme Model Compression",
                "url": "https://arxiv.org/abs/2511.08360",
                "description": "Dan Liu\nWhy: title: model compression",
                "color": 0xB31B1B,
            }
        ],
        "buttons": [["Summary 1", "2511.08360"]],
    }
    with sqlite3.connect(bot_settings.database_path) as db:
        db.execute(
            "INSERT INTO subscriptions (id, guild_id, channel_id, topics, digest_time, min_score,"
            " post_empty, status, starts_on, next_due_at, created_at, updated_at)"
            " VALUES (1, ?, ?, '[]', '08:00', 0.5, 0, 'active', '2025-11-12',"
            " '2099-01-01T08:00:00+00:00', '2025-11-12', '2025-11-12')",
            (GUILD_ID, CHANNEL_ID),
        )
        db.execute(
            "INSERT INTO digests (id, subscription_id, kind, paper_count, created_at)"
            " VALUES (7, 1, 'papers', 1, '2025-11-12T08:00:00+00:00')"
        )
        db.execute(
            "INSERT INTO digest_messages (digest_id, position, payload) VALUES (7, 0, ?)",
            (json.dumps(payload),),
        )
    store = await Store.open(bot_settings.database_path)  # applies this release's migrations
    try:
        subscription = await store.subscription_for_channel(CHANNEL_ID)
        assert subscription is not None
        assert (subscription.shared_list, subscription.next_weekly_at) == (False, None)
        assert subscription.mention_role is None
        bot, task = await start_bot(bot_settings, store, fake_discord)
        try:
            assert await deliver_due(store, bot.digests, bot.sender, later()) == 1
        finally:
            await stop_bot(bot, task)
        [posted] = fake_discord.posted(CHANNEL_ID)
        assert posted["content"] == payload["content"]
        assert posted["embeds"][0]["url"] == "https://arxiv.org/abs/2511.08360"
        labels = [b["label"] for row in posted["components"] for b in row["components"]]
        assert labels == ["Summary 1", "Save 1"]  # the old layout, with its buttons
        [post] = [r for r in fake_discord.requests if r.path.endswith("/messages")]
        assert post.body["nonce"] == "d7m0" and post.body["enforce_nonce"] is True
    finally:
        await store.close()
