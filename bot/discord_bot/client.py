"""The Discord client: logs in, registers commands, and gives the service a Discord sender."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from bot.config import DigestSettings, DiscordSettings, Settings
from bot.digests.delivery import (
    ChannelForbidden,
    ChannelGone,
    ChannelUnavailable,
    MessageRefused,
)
from bot.discord_bot.cogs import Papers, Subscriptions, answer_command_error
from bot.discord_bot.endpoints import use_gateway, use_rest_base
from bot.discord_bot.reading_cog import ReadingLists
from bot.discord_bot.views import (
    NO_MENTIONS,
    SaveButton,
    SummaryButton,
    VoteButton,
    digest_layout,
    digest_view,
    embeds_of,
    mentions_of,
)
from bot.discord_bot.watch_cog import Watches
from bot.models import OutgoingMessage
from bot.service import Service
from bot.store import Store
from bot.text import clip
from bot.watches import DirectMessagesClosed

log = logging.getLogger(__name__)


THREAD_NAME = "Today's papers"
THREAD_EXISTS = 160004  # "A thread has already been created for this message"
MAX_FORUM_TAGS = 20  # Discord's limit of tags in one forum
TAG_NAME_LIMIT = 20  # and of a tag's name
_SHORT_TAGS = {"efficient-architectures": "architectures"}


def tag_name(topic: str) -> str:
    """A topic as a forum tag: Discord allows 20 characters."""
    return _SHORT_TAGS.get(topic, topic)[:TAG_NAME_LIMIT]


def note_title(message: OutgoingMessage) -> str:
    """A forum post's title for a note or a weekly digest: its first line and the day."""
    first = next((line for line in message.content.splitlines() if line.strip()), "")
    plain = re.sub(r"[*_`#]|^-# |<@&?\d+>", "", first).strip() or "arXiv efficiency digest"
    day = f" · {discord.utils.utcnow():%Y-%m-%d}"
    return clip(plain, 100 - len(day)) + day


class DiscordSender:
    """Posts digest messages; turns Discord's answers into the delivery service's errors.
    429s are left to discord.py's rate limiter, which waits and retries; one that outlasts
    its retries is transient like a 5xx."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self._threads: set[str] = set()  # digest threads known to exist
        self._forum_tags: dict[int, list[discord.ForumTag]] = {}

    async def send(
        self, channel_id: str, message: OutgoingMessage, nonce: str, thread_of: str | None = None
    ) -> str:
        channel: object = self.bot.get_channel(int(channel_id))
        try:
            if thread_of is not None:
                try:
                    channel = await self._thread_under(channel_id, thread_of)
                except discord.NotFound as exc:  # the header was deleted: not the channel
                    raise MessageRefused(f"the digest's header is gone ({exc.text})") from exc
            elif channel is None:
                channel = await self.bot.fetch_channel(int(channel_id))
            if isinstance(channel, discord.ForumChannel):
                return await self._forum_post(channel, message)
            if not isinstance(channel, discord.abc.Messageable):
                raise ChannelGone("not a text channel")
            content, embeds = message.content or None, embeds_of(message)
            view = digest_view(message)
            # discord.py sends enforce_nonce with every nonce: a repeat returns the original.
            if message.blocks:
                sent = await channel.send(
                    view=digest_layout(message), allowed_mentions=mentions_of(message), nonce=nonce
                )
            elif view is None:
                sent = await channel.send(
                    content, embeds=embeds, allowed_mentions=mentions_of(message), nonce=nonce
                )
            else:
                sent = await channel.send(
                    content, embeds=embeds, allowed_mentions=NO_MENTIONS, view=view, nonce=nonce
                )
        except discord.Forbidden as exc:
            raise ChannelForbidden(exc.text or "403 Forbidden") from exc
        except discord.NotFound as exc:
            raise ChannelGone(exc.text or "404 Not Found") from exc
        except discord.HTTPException as exc:
            if exc.status < 500 and exc.status != 429:
                raise MessageRefused(f"{exc.status}: {exc.text or 'no reason given'}") from exc
            # discord.py already retried 5xx answers and waited out 429s a few times.
            raise ChannelUnavailable(f"Discord answered {exc.status}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ChannelUnavailable(f"could not reach Discord ({type(exc).__name__})") from exc
        return str(sent.id)

    async def _forum_post(self, forum: discord.ForumChannel, message: OutgoingMessage) -> str:
        """A paper as a forum post. Starting a post takes no nonce, so a post this bot
        made under that title in the last two days (Discord made it, the process died
        before recording it) is taken as this one rather than posted again."""
        # A note or a weekly digest in a forum: a post named for what it says, and the day.
        title = message.post_title or note_title(message)
        recent = discord.utils.utcnow() - timedelta(days=2)
        for thread in await forum.guild.active_threads():
            if (
                thread.parent_id == forum.id
                and thread.owner_id == self.bot.user.id  # type: ignore[union-attr]
                and thread.name == title
                and discord.utils.snowflake_time(thread.id) > recent
            ):
                return str(thread.id)
        made = await forum.create_thread(
            name=title,
            view=digest_layout(message),
            applied_tags=await self._tags_for(forum, message),
            allowed_mentions=mentions_of(message),
        )
        return str(made.thread.id)

    async def _tags_for(
        self, forum: discord.ForumChannel, message: OutgoingMessage
    ) -> list[discord.ForumTag]:
        """The forum's tags named like the paper's topics (Discord allows five a post),
        creating the missing ones first when asked and allowed. The tags this sender made
        are remembered: the gateway's word of them may come later than the next post."""
        # The forum's tags as the gateway last said, plus the ones this sender made since.
        current = {tag.id: tag for tag in forum.available_tags}
        made = [t for t in self._forum_tags.get(forum.id, []) if t.id not in current]
        known = [*current.values(), *made]
        have = {tag.name.casefold(): tag for tag in known}
        names = [tag_name(t) for t in message.post_tags]
        missing = [n for n in names if n.casefold() not in have]
        room = MAX_FORUM_TAGS - len(have)
        if message.create_tags and missing and room > 0:
            if forum.permissions_for(forum.guild.me).manage_channels:
                new = [discord.ForumTag(name=t) for t in missing[:room]]
                try:
                    edited = await forum.edit(available_tags=[*known, *new], reason="paper topics")
                except discord.HTTPException as exc:
                    log.warning("forum tags not created channel=%s reason=%s", forum.id, exc)
                else:
                    if edited is not None:
                        known = list(edited.available_tags)
                        self._forum_tags[forum.id] = known
                        have = {tag.name.casefold(): tag for tag in known}
            else:
                log.warning("forum tags not created channel=%s reason=no Manage Channels", forum.id)
        return [have[n.casefold()] for n in names if n.casefold() in have][:5]

    async def _thread_under(self, channel_id: str, message_id: str) -> discord.PartialMessageable:
        """The thread started from a digest's header (its id is the header's), started now
        unless it exists: a retry after a crash finds it (Discord answers 160004)."""
        if message_id not in self._threads:
            try:
                await self.bot.http.start_thread_with_message(
                    int(channel_id),
                    int(message_id),
                    name=THREAD_NAME,
                    auto_archive_duration=1440,
                    reason="the digest's papers",
                )
            except discord.HTTPException as exc:
                if exc.code != THREAD_EXISTS:
                    raise
            self._threads.add(message_id)
        return self.bot.get_partial_messageable(
            int(message_id), type=discord.ChannelType.public_thread
        )

    async def send_direct(self, user_id: str, message: OutgoingMessage, nonce: str) -> str:
        """A direct message (a watch's news); closed DMs raise DirectMessagesClosed."""
        try:
            user = await self.bot.fetch_user(int(user_id))
            sent = await user.send(message.content, allowed_mentions=NO_MENTIONS, nonce=nonce)
        except (discord.Forbidden, discord.NotFound) as exc:  # DMs closed; account gone
            raise DirectMessagesClosed(exc.text or str(exc.status)) from exc
        except discord.HTTPException as exc:
            raise ChannelUnavailable(f"Discord answered {exc.status}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ChannelUnavailable(f"could not reach Discord ({type(exc).__name__})") from exc
        return str(sent.id)


@dataclass(frozen=True, slots=True)
class Shards:
    """The gateway shards one process runs, of how many in all."""

    ids: list[int]
    count: int


class ArxivBot(commands.Bot):
    """The Discord side: logs in, registers the slash commands, answers them, and runs the
    service (polls, digests, heartbeats) with a sender that posts to Discord."""

    def __init__(
        self,
        discord_settings: DiscordSettings,
        digests: DigestSettings,
        store: Store,
        service: Service,
        run_poller: bool = True,
        **shard_options: Any,
    ) -> None:
        # Slash commands and buttons need no privileged intents; guilds (not privileged)
        # keeps the server and channel cache that interactions and digests rely on.
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, **shard_options)
        self.discord_settings = discord_settings
        self.digests = digests
        self.store = store
        self.service = service
        self.sender = DiscordSender(self)
        self.run_poller = run_poller

    async def login(self, token: str) -> None:
        custom = use_rest_base(self.discord_settings.api_base_url)
        await super().login(token)
        if custom:
            # A plain Bot connects straight to Discord's public gateway; behind a custom
            # REST base the gateway address must come from that server.
            _, url, _ = await self.http.get_bot_gateway()
            use_gateway(url)

    async def setup_hook(self) -> None:
        self.tree.error(answer_command_error)
        self.add_dynamic_items(SummaryButton, SaveButton, VoteButton)
        tastes = self.service.tastes
        await self.add_cog(Papers(self.store, self.digests.relevance_threshold, tastes))
        await self.add_cog(Subscriptions(self.store, self.digests, self.sender, tastes))
        await self.add_cog(ReadingLists(self.store, self.service))
        await self.add_cog(Watches(self.store))
        await self._sync_commands()
        await self.store.set_state("service_started", "1")
        self.service.start(
            self.sender,
            ready=self.wait_until_ready,
            latency=lambda: None if self.is_closed() or not self.is_ready() else self.latency,
            poll=self.run_poller,
        )

    async def _sync_commands(self) -> None:
        if self.discord_settings.guild_id:
            # One server: instant, and cheap enough to do on every start.
            guild = discord.Object(id=self.discord_settings.guild_id)
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
        await self.service.stop()
        await super().close()


class ShardedArxivBot(ArxivBot, commands.AutoShardedBot):
    """The same bot over several gateway shards in one process (discord.py's
    AutoShardedBot with the shard ids and count given)."""


def bot_for(
    settings: Settings,
    store: Store,
    service: Service,
    run_poller: bool = True,
    shards: Shards | None = None,
) -> ArxivBot:
    """The client for these settings: its Discord section, and the digest section its
    commands need."""
    if shards is None:
        return ArxivBot(settings.discord, settings.digests, store, service, run_poller)
    return ShardedArxivBot(
        settings.discord,
        settings.digests,
        store,
        service,
        run_poller,
        shard_ids=shards.ids,
        shard_count=shards.count,
    )
