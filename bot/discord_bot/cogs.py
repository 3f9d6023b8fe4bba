"""Slash commands: parse what was typed, call the services, format the reply."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.arxiv_ids import parse_arxiv_id
from bot.channel_taste import ChannelTastes
from bot.classify import TOPICS
from bot.config import DigestSettings
from bot.digests.delivery import DeliveryBusy, Sender, deliver_subscription
from bot.digests.render import (
    channel_score_text,
    escape,
    paper_card,
    search_page,
    status_text,
    top_text,
    topics_text,
)
from bot.digests.schedule import preview_digest, todays_listing
from bot.discord_bot.views import (
    NO_MENTIONS,
    Page,
    ResultPager,
    digest_channel_id,
    digest_layout,
    save_view,
)
from bot.models import SearchQuery, SubscriptionStatus
from bot.reading_lists import ReadingListError
from bot.search import SearchError, search_papers
from bot.store import Store
from bot.subscriptions import SubscriptionError, describe, subscribe, unsubscribe
from bot.text import clip
from bot.watches import WatchError

log = logging.getLogger(__name__)

PAGE_SIZE = 5
TOP_PAPERS = 10


class UserError(Exception):
    """A one-line answer for the caller; nothing was written."""


async def reply(interaction: discord.Interaction, text: str, *, public: bool = False) -> None:
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=not public, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(
            text, ephemeral=not public, allowed_mentions=NO_MENTIONS
        )


async def send_private(interaction: discord.Interaction, **message: Any) -> None:
    """A private answer, as a follow-up when the command deferred its reply."""
    if interaction.response.is_done():
        await interaction.followup.send(ephemeral=True, allowed_mentions=NO_MENTIONS, **message)
    else:
        await interaction.response.send_message(
            ephemeral=True, allowed_mentions=NO_MENTIONS, **message
        )


async def defer_if_learning(
    interaction: discord.Interaction, store: Store, tastes: ChannelTastes
) -> None:
    """A channel's taste may need fitting (a second or two): answer "thinking" first."""
    if await tastes.learns(store, digest_channel_id(interaction) or ""):
        await interaction.response.defer(ephemeral=True, thinking=True)


async def topic_autocomplete(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    current = current.lower()
    return [app_commands.Choice(name=t, value=t) for t in TOPICS if current in t][:25]


def _date_option(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{text[:30]!r} is not a date; use YYYY-MM-DD, e.g. 2025-11-12.") from None


def _check_forum_options(
    channel: discord.abc.GuildChannel | None, thread: bool | None, create_tags: bool | None
) -> None:
    if not isinstance(channel, discord.ForumChannel):
        if create_tags:
            raise UserError("`create_tags` is for forum channels, whose posts carry tags.")
        return
    if thread:
        raise UserError("A forum gets a post per paper already; `thread` is for text channels.")
    if create_tags and not channel.permissions_for(channel.guild.me).manage_channels:
        raise UserError(
            f"The bot may not manage tags in <#{channel.id}>: give it Manage Channels there,"
            " or subscribe without `create_tags`."
        )


def _check_mentionable(interaction: discord.Interaction, role: discord.Role) -> None:
    if role.is_default():
        raise UserError("Pick a role to mention, not @everyone.")
    if not (role.mentionable or interaction.app_permissions.mention_everyone):
        raise UserError(
            f"The bot may not mention @{escape(clip(role.name, 40))}: make the role mentionable, or"
            " give the bot the Mention @everyone, @here and All Roles permission."
        )


def _require_manage_channels(interaction: discord.Interaction) -> None:
    # Default permissions hide the commands from others; servers can override that, so
    # check again here.
    if not interaction.permissions.manage_channels:
        raise UserError("You need the Manage Channels permission to change digests.")


class Papers(commands.Cog):
    """Finding papers: /search, /paper, /topics, /status, /help."""

    def __init__(self, store: Store, relevance_threshold: float, tastes: ChannelTastes) -> None:
        self.store = store
        self.threshold = relevance_threshold
        self.tastes = tastes

    @app_commands.command(name="search", description="Search every paper the bot has seen.")
    @app_commands.describe(
        query="Words, a phrase in quotes, or an arXiv id or URL (up to 300 characters); "
        "leave empty to list papers matching the filters",
        topic="Only papers with this topic",
        category="Only this arXiv category, e.g. cs.LG",
        author="Only papers by this author",
        since="Only papers listed on or after this day (YYYY-MM-DD)",
        public="Show the results to the whole channel",
    )
    @app_commands.autocomplete(topic=topic_autocomplete)
    async def search(
        self,
        interaction: discord.Interaction,
        query: str | None = None,
        topic: str | None = None,
        category: str | None = None,
        author: str | None = None,
        since: str | None = None,
        public: bool = False,
    ) -> None:
        query = query or ""
        base = SearchQuery(
            text=query,
            topic=topic,
            category=category,
            author=author,
            since=_date_option(since),
            limit=PAGE_SIZE + 1,
        )

        async def render(page: int) -> Page:
            result = await search_papers(self.store, _page(base, page))
            text = search_page(query, page, PAGE_SIZE, result.papers, result.mode == "any-term")
            shown = result.papers[:PAGE_SIZE]
            numbered = [(page * PAGE_SIZE + i, p.arxiv_id) for i, p in enumerate(shown, 1)]
            return text, len(result.papers) > PAGE_SIZE, numbered

        view = ResultPager(interaction.user.id, "search", render, await render(0))
        view.origin = interaction
        await interaction.response.send_message(
            view.text, view=view, ephemeral=not public, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="paper", description="Show one paper in full.")
    @app_commands.describe(id="An arXiv id like 2511.08360 or an arxiv.org link")
    async def paper(self, interaction: discord.Interaction, id: str) -> None:
        parsed = parse_arxiv_id(id)
        if parsed is None:
            raise UserError(f"{clip(id, 40)!r} is not an arXiv id; try e.g. 2511.08360.")
        paper = await self.store.get_paper(parsed[0])
        if paper is None:
            raise UserError(f"The bot has not seen arXiv:{parsed[0]}.")
        card = paper_card(paper)
        await defer_if_learning(interaction, self.store, self.tastes)
        taste = await self.tastes.for_channel(self.store, digest_channel_id(interaction) or "")
        if taste is not None:
            score, shift = self.tastes.adjusted(taste, paper)
            card["fields"].append(
                {
                    "name": "In this channel",
                    "value": channel_score_text(paper, score, shift),
                    "inline": False,
                }
            )
        await send_private(
            interaction, embed=discord.Embed.from_dict(card), view=save_view(paper.arxiv_id)
        )

    @app_commands.command(name="top", description="This server's most liked papers.")
    @app_commands.describe(days="Votes of the last N days (default 7, up to 365)")
    @app_commands.guild_only()
    async def top(
        self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 365] = 7
    ) -> None:
        since = datetime.now(UTC) - timedelta(days=days)
        ranked = await self.store.top_papers(str(interaction.guild_id), since, TOP_PAPERS)
        await reply(interaction, top_text(ranked, days))

    @app_commands.command(name="topics", description="Topics and their papers in the last 7 days.")
    async def topics(self, interaction: discord.Interaction) -> None:
        since = datetime.now(UTC).date() - timedelta(days=7)
        await reply(interaction, topics_text(await self.store.topic_counts(since, self.threshold)))

    @app_commands.command(
        name="status", description="Last arXiv polls, papers stored, next digest."
    )
    async def status(self, interaction: discord.Interaction) -> None:
        store = self.store
        text = status_text(
            await store.recent_polls(5),
            await store.count_papers(),
            await store.count_papers(self.threshold),
            await store.subscription_for_channel(digest_channel_id(interaction) or ""),
            await todays_listing(store, datetime.now(UTC)),
        )
        await reply(interaction, text)

    @app_commands.command(name="help", description="What this bot does and its commands.")
    async def help(self, interaction: discord.Interaction) -> None:
        await reply(
            interaction,
            "\n".join(
                [
                    "**arXiv efficiency digest**: the day's papers about making deep learning "
                    "cheaper, picked from cs.AI, cs.CL, cs.ET, cs.LG, cs.NE and stat.ML.",
                    "`/search [query] [topic] [category] [author] [since] [public]`: search every "
                    "paper seen",
                    "`/paper id`: one paper in full",
                    "`/topics`: topics and their papers this week",
                    "`/top [days]`: this server's most liked papers (👍 under digest papers)",
                    "`/subscribe [topics] [time] [min_score] [channel] [empty_days] [list]"
                    " [weekly]`: daily digest (Manage Channels)",
                    "`/save id`, `/unsave id`: your reading list; every paper has a **Save** "
                    "button too",
                    "`/readinglist [month] [export] [channel]`: your list (or a channel's), "
                    "as the monthly Markdown list with `export:true`",
                    "`/watch author:` or `/watch phrase:` `[where]`: hear about new matching "
                    "papers by DM or in this channel's digest; `/watches` lists and stops them",
                    "`/unsubscribe [channel]`, `/subscriptions`: manage digests",
                    "`/digest preview`, `/digest now`: see or post the next digest",
                    "`/status`: arXiv polls and the next digest",
                ]
            ),
        )


def _page(query: SearchQuery, page: int) -> SearchQuery:
    return dataclasses.replace(query, limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE)


class Subscriptions(commands.Cog):
    """Daily digests: /subscribe, /unsubscribe, /subscriptions, /digest."""

    digest = app_commands.Group(
        name="digest",
        description="See or post this channel's next digest.",
        guild_only=True,
    )

    def __init__(
        self, store: Store, digests: DigestSettings, sender: Sender, tastes: ChannelTastes
    ) -> None:
        self.store = store
        self.digests = digests
        self.sender = sender
        self.tastes = tastes

    def _channel(
        self, interaction: discord.Interaction, channel: discord.abc.GuildChannel | None
    ) -> str:
        if interaction.guild_id is None:
            raise UserError("Digests are set up inside a server.")
        if channel is None:
            return str(interaction.channel_id)
        if channel.guild.id != interaction.guild_id:
            raise UserError("That channel is in another server.")
        return str(channel.id)

    @app_commands.command(name="subscribe", description="Post a daily digest in a channel.")
    @app_commands.describe(
        topics="Only these topics, comma-separated (default: all)",
        time="Time of day in UTC, HH:MM (default: the server's setting)",
        min_score="Only papers scoring at least this, 0 to 1",
        channel="Where to post (default: this channel)",
        empty_days="Post a short note on days without new papers",
        shared_list="Keep a reading list for the channel: Save buttons here also add to it",
        weekly="Also post the week's most liked papers here, on Mondays",
        role="Mention this role on each digest (it must be mentionable by the bot)",
        mentions="false: stop mentioning the role",
        thread="Post the day's header here and its papers in a thread under it",
        create_tags="In a forum: create the topic tags it lacks (needs Manage Channels there)",
    )
    @app_commands.rename(shared_list="list")
    @app_commands.default_permissions(manage_channels=True)
    @app_commands.guild_only()
    async def subscribe(
        self,
        interaction: discord.Interaction,
        topics: str | None = None,
        time: str | None = None,
        min_score: float | None = None,
        channel: discord.TextChannel | discord.ForumChannel | None = None,
        empty_days: bool = False,
        shared_list: bool | None = None,
        weekly: bool | None = None,
        role: discord.Role | None = None,
        mentions: bool | None = None,
        thread: bool | None = None,
        create_tags: bool | None = None,
    ) -> None:
        _require_manage_channels(interaction)
        channel_id = self._channel(interaction, channel)
        forum = isinstance(channel, discord.ForumChannel)
        _check_forum_options(channel, thread, create_tags)
        if role is not None:
            _check_mentionable(interaction, role)
        subscription = await subscribe(
            self.store,
            self.digests,
            str(interaction.guild_id),
            channel_id,
            topics,
            time,
            min_score,
            empty_days,
            shared_list=shared_list,
            weekly=weekly,
            mention_role=str(role.id) if role is not None and mentions is not False else None,
            stop_mentions=mentions is False,
            thread=thread,
            forum=forum,
            create_tags=create_tags,
        )
        await reply(
            interaction,
            f"Subscribed {describe(subscription)}. First digest "
            f"<t:{int(subscription.next_due_at.timestamp())}:R>.",
        )

    @app_commands.command(name="unsubscribe", description="Stop a channel's daily digest.")
    @app_commands.describe(channel="Which channel (default: this one)")
    @app_commands.default_permissions(manage_channels=True)
    @app_commands.guild_only()
    async def unsubscribe(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        _require_manage_channels(interaction)
        channel_id = self._channel(interaction, channel)
        if not await unsubscribe(self.store, str(interaction.guild_id), channel_id):
            raise UserError(f"<#{channel_id}> has no digest.")
        await reply(interaction, f"<#{channel_id}> will get no more digests.")

    @app_commands.command(name="subscriptions", description="This server's digests.")
    @app_commands.guild_only()
    async def subscriptions(self, interaction: discord.Interaction) -> None:
        found = await self.store.guild_subscriptions(str(interaction.guild_id))
        if not found:
            await reply(interaction, "No digests in this server yet. `/subscribe` sets one up.")
            return
        await reply(interaction, clip("\n".join(describe(s) for s in found), 2000))

    @digest.command(name="preview", description="See this channel's next digest (only you).")
    async def preview(self, interaction: discord.Interaction) -> None:
        store = self.store
        subscription = await store.subscription_for_channel(digest_channel_id(interaction) or "")
        if subscription is None or subscription.status is SubscriptionStatus.DELETED:
            raise UserError("This channel has no digest. `/subscribe` sets one up.")
        await defer_if_learning(interaction, store, self.tastes)
        messages = await preview_digest(store, self.digests, subscription, self.tastes)
        if not messages:
            await reply(interaction, "Nothing new for this channel since its last digest.")
            return
        first = messages[0]
        more = f"\n-# Preview of message 1 of {len(messages)}." if len(messages) > 1 else ""
        if first.blocks:
            preview = dataclasses.replace(first, note=clip(first.note + more, 500))
            await send_private(interaction, view=digest_layout(preview))
            return
        await send_private(interaction, content=clip(first.content + more, 2000))

    @digest.command(name="now", description="Post this channel's next digest now.")
    async def now(self, interaction: discord.Interaction) -> None:
        _require_manage_channels(interaction)
        store = self.store
        subscription = await store.subscription_for_channel(digest_channel_id(interaction) or "")
        if subscription is None or subscription.status is not SubscriptionStatus.ACTIVE:
            raise UserError("This channel has no active digest. `/subscribe` sets one up.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            posted = await deliver_subscription(
                store,
                self.digests,
                self.sender,
                subscription,
                datetime.now(UTC),
                scheduled=False,
                tastes=self.tastes,
            )
        except DeliveryBusy:
            raise UserError(
                "This channel's digest is being posted right now; nothing more to do."
            ) from None
        text = (
            f"Posted {posted} message{'s' * (posted != 1)}." if posted else "Nothing new to post."
        )
        await reply(interaction, text)


async def answer_command_error(
    interaction: discord.Interaction, error: app_commands.AppCommandError
) -> None:
    """Every command's failures: one private line for the user, a log line for bugs."""
    original = getattr(error, "original", error)
    if isinstance(
        original, UserError | SearchError | SubscriptionError | ReadingListError | WatchError
    ):
        text = str(original)
    elif (
        isinstance(error, app_commands.TransformerError)
        and error.type is discord.AppCommandOptionType.channel
    ):
        text = "That channel is not in this server, or the bot cannot see it."
    elif isinstance(error, app_commands.TransformerError):
        text = f"{clip(str(error.value), 40)!r} is not a valid {error.type.name.lower()} here."
    else:
        log.error(
            "command failed command=%s channel=%s",
            interaction.command.name if interaction.command else "?",
            interaction.channel_id,
            exc_info=original,
        )
        text = "Something went wrong on the bot's side; it has been logged."
    try:
        await reply(interaction, text)
    except discord.HTTPException:
        log.warning("could not answer interaction channel=%s", interaction.channel_id)
