"""The Discord bot: logs in, registers commands, and runs the poller and digest schedule."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import UTC, datetime

import discord
import yarl
from discord.ext import commands

from bot.classify import Classifier
from bot.config import DISCORD_API_URL, Settings
from bot.digests.delivery import ChannelForbidden, ChannelGone, deliver_due, resume_unfinished
from bot.discord_bot.views import NO_MENTIONS, SummaryButton, digest_view, embeds_of
from bot.judge import RelevanceJudge
from bot.models import OutgoingMessage
from bot.pipeline import run_cycle
from bot.store import Store
from bot.summarize import Summarizer

log = logging.getLogger(__name__)

DIGEST_CHECK_SECONDS = 30
HEARTBEAT_RECORD_SECONDS = 30


class DiscordSender:
    """Posts digest messages; turns Discord's 403/404 into the delivery service's errors.
    429s are left to discord.py's rate limiter, which waits and retries."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    async def send(self, channel_id: str, message: OutgoingMessage) -> str:
        channel = self.bot.get_channel(int(channel_id))
        try:
            if channel is None:
                channel = await self.bot.fetch_channel(int(channel_id))
            if not isinstance(channel, discord.abc.Messageable):
                raise ChannelGone("not a text channel")
            view = digest_view(message)
            sent = await channel.send(
                content=message.content or None,
                embeds=embeds_of(message),
                allowed_mentions=NO_MENTIONS,
                **({"view": view} if view else {}),
            )
        except discord.Forbidden as exc:
            raise ChannelForbidden(exc.text or "403 Forbidden") from exc
        except discord.NotFound as exc:
            raise ChannelGone(exc.text or "404 Not Found") from exc
        return str(sent.id)


class ArxivBot(commands.Bot):
    def __init__(
        self,
        settings: Settings,
        store: Store,
        classifier: Classifier,
        summarizer: Summarizer | None,
        judge: RelevanceJudge | None = None,
        run_poller: bool = True,
    ) -> None:
        # Slash commands and buttons need no privileged intents; guilds (not privileged)
        # keeps the server and channel cache that interactions and digests rely on.
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(command_prefix=commands.when_mentioned, intents=intents)
        self.settings = settings
        self.store = store
        self.classifier = classifier
        self.summarizer = summarizer
        self.judge = judge
        self.sender = DiscordSender(self)
        self.run_poller = run_poller
        self._tasks: list[asyncio.Task[None]] = []
        self.poll_lock = asyncio.Lock()

    async def login(self, token: str) -> None:
        if self.settings.discord_api_base_url != DISCORD_API_URL:
            discord.http.Route.BASE = self.settings.discord_api_base_url
        await super().login(token)
        if self.settings.discord_api_base_url != DISCORD_API_URL:
            # A plain Bot connects straight to Discord's public gateway; behind a custom
            # REST base the gateway address must come from that server.
            _, url, _ = await self.http.get_bot_gateway()
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

    async def setup_hook(self) -> None:
        from bot.discord_bot.cogs import Papers, Subscriptions, answer_command_error

        self.tree.error(answer_command_error)
        self.add_dynamic_items(SummaryButton)
        await self.add_cog(Papers(self))
        await self.add_cog(Subscriptions(self))
        await self._sync_commands()
        await self.store.set_state("service_started", "1")
        if self.run_poller:
            self._tasks.append(asyncio.create_task(self._poll_forever(), name="poller"))
        self._tasks.append(asyncio.create_task(self._heartbeat_forever(), name="heartbeat"))
        self._tasks.append(asyncio.create_task(self._digests_forever(), name="digests"))

    async def _sync_commands(self) -> None:
        if self.settings.discord_guild_id:
            # One server: instant, and cheap enough to do on every start.
            guild = discord.Object(id=self.settings.discord_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
            return
        # Global registration is slow to spread and rate-limited: only when it changed.
        payload = json.dumps(
            [c.to_dict(self.tree) for c in self.tree.get_commands()], sort_keys=True
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()
        known = await self.store.get_state("global_commands")
        if known is None or known[0] != digest:
            await self.tree.sync()
            await self.store.set_state("global_commands", digest)
            log.info("registered slash commands globally")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().close()

    async def poll_once(self) -> None:
        async with self.poll_lock:
            await run_cycle(
                self.store, self.settings, self.classifier, self.summarizer, judge=self.judge
            )

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:
                log.exception("poll cycle failed; next one as scheduled")
            await asyncio.sleep(self.settings.poll_interval_minutes * 60)

    async def _heartbeat_forever(self) -> None:
        """Record that the gateway is alive, for `python -m bot health`."""
        await self.wait_until_ready()
        while True:
            if not self.is_closed() and self.is_ready():
                try:
                    await self.store.set_state("gateway_heartbeat", f"{self.latency:.3f}")
                except Exception:
                    log.exception("could not record the gateway heartbeat")
            await asyncio.sleep(HEARTBEAT_RECORD_SECONDS)

    async def _digests_forever(self) -> None:
        await self.wait_until_ready()
        try:
            active = [
                s
                for guild in self.guilds
                for s in await self.store.guild_subscriptions(str(guild.id))
            ]
            await resume_unfinished(self.store, self.sender, active)
        except Exception:
            log.exception("resuming unfinished digests failed")
        while True:
            try:
                await deliver_due(self.store, self.settings, self.sender, datetime.now(UTC))
            except Exception:
                log.exception("digest round failed; next one in %ds", DIGEST_CHECK_SECONDS)
            await asyncio.sleep(DIGEST_CHECK_SECONDS)
