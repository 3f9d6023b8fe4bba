"""Buttons: a persistent Summary button per digest paper, and the search pager."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import discord

from bot.digests.render import summary_text
from bot.models import OutgoingMessage
from bot.store import Store
from bot.text import clip


class _WithStore(Protocol):
    store: Store


NO_MENTIONS = discord.AllowedMentions.none()
PAGER_SECONDS = 600  # well inside the 15 minutes an interaction token can edit its message


class SummaryButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"paper:summary:(?P<id>[\w./-]{4,40})"
):
    """Reveals a paper's summary to the clicker only. Its state lives in the custom id,
    so buttons of old digests keep working after restarts."""

    def __init__(self, arxiv_id: str, label: str = "Summary") -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                style=discord.ButtonStyle.secondary,
                custom_id=f"paper:summary:{arxiv_id}",
            )
        )
        self.arxiv_id = arxiv_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> SummaryButton:
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(match["id"], label or "Summary")

    async def callback(self, interaction: discord.Interaction) -> None:
        client: _WithStore = interaction.client  # type: ignore[assignment]
        paper = await client.store.get_paper(self.arxiv_id)
        if paper is None:
            await interaction.response.send_message(
                "That paper is no longer stored.", ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await interaction.response.send_message(
            summary_text(paper), ephemeral=True, allowed_mentions=NO_MENTIONS
        )


def digest_view(message: OutgoingMessage) -> discord.ui.View | None:
    if not message.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in message.buttons:
        view.add_item(SummaryButton(button.arxiv_id, button.label))
    return view


def embeds_of(message: OutgoingMessage) -> list[discord.Embed]:
    return [discord.Embed.from_dict(dict(embed)) for embed in message.embeds]


class SearchPager(discord.ui.View):
    """Previous/Next for one person's search; others are told to run their own."""

    EXPIRED = "-# These buttons have expired; run `/search` again to page further."

    def __init__(
        self,
        owner_id: int,
        render: Callable[[int], Awaitable[tuple[str, bool]]],
        has_next: bool,
    ) -> None:
        super().__init__(timeout=PAGER_SECONDS)
        self.owner_id = owner_id
        self.render = render
        self.page = 0
        self.text = ""
        self.origin: discord.Interaction | None = None  # the /search that showed it
        self.previous.disabled = True
        self.next.disabled = not has_next

    async def on_timeout(self) -> None:
        """Buttons that no longer answer are shown disabled, with a line saying why."""
        if self.origin is None:
            return
        self.previous.disabled = self.next.disabled = True
        # The message may be gone, or its token expired (15 minutes): nothing to show then.
        with contextlib.suppress(discord.HTTPException):
            await self.origin.edit_original_response(
                content=clip(f"{self.text}\n{self.EXPIRED}", 2000),
                view=self,
                allowed_mentions=NO_MENTIONS,
            )

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "These buttons belong to someone else's search; run `/search` yourself.",
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return False
        return True

    async def _show(self, interaction: discord.Interaction, page: int) -> None:
        text, has_next = await self.render(page)
        self.page, self.text = page, text
        self.previous.disabled = page == 0
        self.next.disabled = not has_next
        await interaction.response.edit_message(
            content=text, view=self, allowed_mentions=NO_MENTIONS
        )

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary)
    async def previous(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        await self._show(interaction, max(0, self.page - 1))

    @discord.ui.button(label="Next", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await self._show(interaction, self.page + 1)
