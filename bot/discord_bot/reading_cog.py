"""Reading lists on Discord: /save, /unsave and /readinglist; the Save buttons are in views."""

from __future__ import annotations

import asyncio
import io
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.arxiv_ids import parse_arxiv_id
from bot.discord_bot.cogs import UserError, reply
from bot.discord_bot.views import NO_MENTIONS, Page, ResultPager
from bot.ingest import FeedError
from bot.models import ListOwner, SubscriptionStatus
from bot.reading_lists import (
    month_of,
    parse_month,
    reading_list_page,
    render_reading_list,
    save_paper,
)
from bot.service import Service
from bot.store import Store
from bot.text import clip

log = logging.getLogger(__name__)


def _arxiv_id(text: str) -> str:
    parsed = parse_arxiv_id(text)
    if parsed is None:
        raise UserError(f"{clip(text, 40)!r} is not an arXiv id; try e.g. 2511.08360.")
    return parsed[0]


class ReadingLists(commands.Cog):
    """A private reading list per person, and a shared one per channel that asks for it."""

    def __init__(self, store: Store, service: Service) -> None:
        self.store = store
        self.service = service

    @app_commands.command(name="save", description="Save a paper to your reading list.")
    @app_commands.describe(id="An arXiv id like 2511.08360 or an arxiv.org link")
    async def save(self, interaction: discord.Interaction, id: str) -> None:
        arxiv_id = _arxiv_id(id)
        if await self.store.get_paper(arxiv_id) is None:
            # Any paper on arXiv, not only the ones polls brought: ask arXiv for it.
            await interaction.response.defer(ephemeral=True, thinking=True)
            try:
                report = await self.service.fetch_papers([arxiv_id])
            except FeedError as exc:
                log.warning("on-demand fetch failed arxiv_id=%s reason=%s", arxiv_id, exc)
                raise UserError("arXiv could not be reached just now; try again later.") from None
            if report.unknown:
                raise UserError(f"arXiv returned no paper for arXiv:{arxiv_id}.")
        outcome = await save_paper(self.store, arxiv_id, interaction.user.id)
        assert outcome is not None
        await reply(interaction, outcome.text())

    @app_commands.command(name="unsave", description="Remove a paper from your reading list.")
    @app_commands.describe(
        id="An arXiv id like 2511.08360 or an arxiv.org link",
        channel="From this channel's shared list instead (Manage Channels)",
    )
    async def unsave(
        self,
        interaction: discord.Interaction,
        id: str,
        channel: discord.TextChannel | None = None,
    ) -> None:
        arxiv_id = _arxiv_id(id)
        owner, whose = ListOwner.user(interaction.user.id), "your"
        if channel is not None:
            if not interaction.permissions.manage_channels:
                raise UserError(
                    "You need the Manage Channels permission to change a channel's list."
                )
            owner, whose = await self._shared_list(interaction, channel), f"<#{channel.id}>'s"
        if not await self.store.remove_from_list(owner, arxiv_id):
            raise UserError(f"arXiv:{arxiv_id} is not in {whose} reading list.")
        await reply(interaction, f"Removed arXiv:{arxiv_id} from {whose} reading list.")

    @app_commands.command(
        name="readinglist", description="Your reading list, or a channel's; as a file too."
    )
    @app_commands.describe(
        month="Only this month (YYYY-MM)",
        export="Send the whole list as a Markdown file",
        channel="A channel's shared list instead of yours",
    )
    async def readinglist(
        self,
        interaction: discord.Interaction,
        month: str | None = None,
        export: bool = False,
        channel: discord.TextChannel | None = None,
    ) -> None:
        wanted_month = parse_month(month)
        owner, whose = ListOwner.user(interaction.user.id), "Your"
        if channel is not None:
            owner, whose = await self._shared_list(interaction, channel), f"<#{channel.id}>'s"
        entries = await self.store.list_entries(owner)
        if export:
            if wanted_month is not None:
                entries = [e for e in entries if month_of(e.paper) == wanted_month]
            if not entries:
                where = f" for {wanted_month}" if wanted_month else ""
                raise UserError(f"{whose} reading list has no papers{where}; nothing to export.")
            # Short abstracts of a long list are CPU work: off the event loop.
            text = await asyncio.to_thread(render_reading_list, entries)
            name = "reading-list.md" if channel is None else f"reading-list-{channel.name}.md"
            await interaction.response.send_message(
                f"{whose} reading list: {len(entries)} paper{'s' * (len(entries) != 1)}.",
                file=discord.File(io.BytesIO(text.encode()), filename=name),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return

        async def render(page: int) -> Page:
            text, has_next = reading_list_page(entries, whose, page, wanted_month)
            return text, has_next, []

        view = ResultPager(interaction.user.id, "readinglist", render, await render(0))
        view.origin = interaction
        await interaction.response.send_message(
            view.text, view=view, ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    async def _shared_list(
        self, interaction: discord.Interaction, channel: discord.TextChannel
    ) -> ListOwner:
        if interaction.guild_id is None or channel.guild.id != interaction.guild_id:
            raise UserError("That channel is in another server.")
        subscription = await self.store.subscription_for_channel(str(channel.id))
        if (
            subscription is None
            or not subscription.shared_list
            or subscription.status is SubscriptionStatus.DELETED
        ):
            raise UserError(
                f"<#{channel.id}> keeps no shared reading list; `/subscribe list:true` there"
                " starts one."
            )
        return ListOwner.channel(channel.id)
