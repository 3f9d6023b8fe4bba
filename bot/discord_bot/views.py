"""Buttons: persistent Summary and Save buttons per paper, and the pager of /search and
/readinglist."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import discord

from bot.digests.render import EMBED_COLOUR, summary_text
from bot.models import OutgoingMessage, Subscription
from bot.reading_lists import save_paper
from bot.store import Store
from bot.text import clip
from bot.votes import DOWN, EMOJI, UP, VoteError, cast_vote


class _WithStore(Protocol):
    store: Store


NO_MENTIONS = discord.AllowedMentions.none()


def digest_channel_id(interaction: discord.Interaction) -> str | None:
    """The channel whose digest this interaction belongs to: a thread's (a digest's thread,
    or a forum post) is its parent's."""
    channel = interaction.channel
    if isinstance(channel, discord.Thread) and channel.parent_id is not None:
        return str(channel.parent_id)
    return str(interaction.channel_id) if interaction.channel_id is not None else None


PAGER_SECONDS = 600  # well inside the 15 minutes an interaction token can edit its message


def _paper_button(
    action: str, arxiv_id: str, label: str | None, emoji: str | None = None
) -> discord.ui.Button[Any]:
    """A button whose state (what to do, to which paper) lives in its custom id, so the
    buttons of old messages keep working after restarts."""
    return discord.ui.Button(
        label=label,
        style=discord.ButtonStyle.secondary,
        emoji=emoji,
        custom_id=f"paper:{action}:{arxiv_id}",
    )


def _label_of(item: discord.ui.Item[Any], default: str) -> str:
    return (item.label if isinstance(item, discord.ui.Button) else None) or default


class SummaryButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"paper:summary:(?P<id>[\w./-]{4,40})"
):
    """Reveals a paper's summary to the clicker only. Its state lives in the custom id,
    so buttons of old digests keep working after restarts."""

    def __init__(self, arxiv_id: str, label: str = "Summary", row: int | None = None) -> None:
        super().__init__(_paper_button("summary", arxiv_id, label), row=row)
        self.arxiv_id = arxiv_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> SummaryButton:
        return cls(match["id"], _label_of(item, "Summary"))

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


class SaveButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"paper:save:(?P<id>[\w./-]{4,40})"
):
    """Saves a paper to the clicker's reading list (and the channel's, when its
    subscription shares one). Persistent like the Summary button."""

    def __init__(self, arxiv_id: str, label: str = "Save", row: int | None = None) -> None:
        super().__init__(_paper_button("save", arxiv_id, label, "\N{BOOKMARK}"), row=row)
        self.arxiv_id = arxiv_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> SaveButton:
        return cls(match["id"], _label_of(item, "Save"))

    async def callback(self, interaction: discord.Interaction) -> None:
        await answer_save(interaction, self.arxiv_id)


async def answer_save(interaction: discord.Interaction, arxiv_id: str) -> None:
    """Save for the clicker, and to the channel's shared list when it keeps one."""
    client: _WithStore = interaction.client  # type: ignore[assignment]
    shared: Subscription | None = None
    channel_id = digest_channel_id(interaction)
    if interaction.guild_id is not None and channel_id is not None:
        found = await client.store.subscription_for_channel(channel_id)
        # A channel's list belongs to its own server's subscription only.
        if found is not None and found.guild_id == str(interaction.guild_id):
            shared = found
    outcome = await save_paper(client.store, arxiv_id, interaction.user.id, shared)
    await interaction.response.send_message(
        outcome.text() if outcome else "That paper is no longer stored.",
        ephemeral=True,
        allowed_mentions=NO_MENTIONS,
    )


class _PagerSave(discord.ui.Button["ResultPager"]):
    """Save on a page of results. Not the persistent SaveButton: discord.py forgets a
    dynamic item's handler everywhere when a view holding one times out."""

    def __init__(self, number: int, arxiv_id: str) -> None:
        super().__init__(
            label=f"Save {number}",
            style=discord.ButtonStyle.secondary,
            emoji="\N{BOOKMARK}",
            custom_id=f"{PAGER_SAVE}{number}:{arxiv_id}",
            row=1,
        )
        self.arxiv_id = arxiv_id

    async def callback(self, interaction: discord.Interaction) -> None:
        await answer_save(interaction, self.arxiv_id)


PAGER_SAVE = "pager:save:"


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"paper:vote:(?P<value>up|down):(?P<id>[\w./-]{4,40})",
):
    """👍 or 👎 on a digest paper: one vote per person per paper per channel; the same
    button again removes it. Persistent like the Summary button."""

    def __init__(self, arxiv_id: str, value: str) -> None:
        emoji = EMOJI[UP if value == "up" else DOWN]
        super().__init__(_paper_button(f"vote:{value}", arxiv_id, None, emoji))
        self.arxiv_id, self.value = arxiv_id, value

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> VoteButton:
        return cls(match["id"], match["value"])

    async def callback(self, interaction: discord.Interaction) -> None:
        client: _WithStore = interaction.client  # type: ignore[assignment]
        channel_id = digest_channel_id(interaction)
        if interaction.guild_id is None or channel_id is None:
            text = "Votes count in a server's channel."
        else:
            try:
                text = await cast_vote(
                    client.store,
                    str(interaction.guild_id),
                    channel_id,
                    str(interaction.user.id),
                    self.arxiv_id,
                    UP if self.value == "up" else DOWN,
                )
            except VoteError as exc:
                text = str(exc)
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


def mentions_of(message: OutgoingMessage) -> discord.AllowedMentions:
    """Exactly the role an admin chose and the people who asked to be mentioned, or no
    one; paper text never pings."""
    if message.mention_role is None and not message.mention_users:
        return NO_MENTIONS
    roles = [discord.Object(int(message.mention_role))] if message.mention_role else False
    users = [discord.Object(int(u)) for u in message.mention_users] or False
    return discord.AllowedMentions(everyone=False, users=users, replied_user=False, roles=roles)


def digest_layout(message: OutgoingMessage, colour: int = EMBED_COLOUR) -> discord.ui.LayoutView:
    """A layout message: its line, then each paper a section with its Summary button
    beside it and 👍, 👎 and Save below it, then the closing note."""
    container: discord.ui.Container[discord.ui.LayoutView] = discord.ui.Container(
        accent_colour=colour
    )
    if message.content:
        container.add_item(discord.ui.TextDisplay(message.content))
    for block in message.blocks:
        container.add_item(
            discord.ui.Section(
                discord.ui.TextDisplay(block.text),
                accessory=SummaryButton(block.arxiv_id),
            )
        )
        container.add_item(
            discord.ui.ActionRow(
                VoteButton(block.arxiv_id, "up"),
                VoteButton(block.arxiv_id, "down"),
                SaveButton(block.arxiv_id),
            )
        )
    if message.note:
        container.add_item(discord.ui.TextDisplay(message.note))
    view = discord.ui.LayoutView(timeout=None)
    view.add_item(container)
    return view


BUTTONS_PER_ROW = 5


def digest_view(message: OutgoingMessage) -> discord.ui.View | None:
    """Summary buttons in the first rows, Save buttons below them, numbered alike."""
    if not message.buttons:
        return None
    view = discord.ui.View(timeout=None)
    summary_rows = -(-len(message.buttons) // BUTTONS_PER_ROW)
    for index, button in enumerate(message.buttons):
        view.add_item(SummaryButton(button.arxiv_id, button.label, row=index // BUTTONS_PER_ROW))
    for index, button in enumerate(message.buttons):
        number = button.label.rsplit(" ", 1)[-1]
        row = summary_rows + index // BUTTONS_PER_ROW
        view.add_item(SaveButton(button.arxiv_id, f"Save {number}", row=row))
    return view


def save_view(arxiv_id: str) -> discord.ui.View:
    """/paper's one paper: a Save button."""
    view = discord.ui.View(timeout=None)
    view.add_item(SaveButton(arxiv_id))
    return view


def embeds_of(message: OutgoingMessage) -> list[discord.Embed]:
    return [discord.Embed.from_dict(dict(embed)) for embed in message.embeds]


# The text, whether a next page exists, and the papers shown with their numbers.
Page = tuple[str, bool, Sequence[tuple[int, str]]]


class ResultPager(discord.ui.View):
    """Previous/Next for one person's results, and a Save button per paper shown; others
    are told to run the command themselves."""

    def __init__(
        self,
        owner_id: int,
        command: str,
        render: Callable[[int], Awaitable[Page]],
        first: Page,
    ) -> None:
        super().__init__(timeout=PAGER_SECONDS)
        self.owner_id = owner_id
        self.command = command
        self.render = render
        self.page = 0
        self.origin: discord.Interaction | None = None  # the command that showed it
        self._place(0, first)

    @property
    def expired(self) -> str:
        return f"-# These buttons have expired; run `/{self.command}` again to page further."

    def _place(self, page: int, shown: Page) -> None:
        self.text, has_next, papers = shown
        self.page = page
        self.previous.disabled = page == 0
        self.next.disabled = not has_next
        for item in [i for i in self.children if isinstance(i, _PagerSave)]:
            self.remove_item(item)
        for number, arxiv_id in papers:
            self.add_item(_PagerSave(number, arxiv_id))

    async def on_timeout(self) -> None:
        """Buttons that no longer answer are shown disabled, with a line saying why."""
        if self.origin is None:
            return
        self.previous.disabled = self.next.disabled = True
        for item in [i for i in self.children if isinstance(i, _PagerSave)]:
            self.remove_item(item)
        # The message may be gone, or its token expired (15 minutes): nothing to show then.
        with contextlib.suppress(discord.HTTPException):
            await self.origin.edit_original_response(
                content=clip(f"{self.text}\n{self.expired}", 2000),
                view=self,
                allowed_mentions=NO_MENTIONS,
            )

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if custom_id.startswith(PAGER_SAVE):
            return True  # anyone may save a paper of public results to their own list
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                f"These buttons belong to someone else's results; run `/{self.command}` yourself.",
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return False
        return True

    async def _show(self, interaction: discord.Interaction, page: int) -> None:
        self._place(page, await self.render(page))
        await interaction.response.edit_message(
            content=self.text, view=self, allowed_mentions=NO_MENTIONS
        )

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary, row=0)
    async def previous(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        await self._show(interaction, max(0, self.page - 1))

    @discord.ui.button(label="Next", style=discord.ButtonStyle.secondary, row=0)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await self._show(interaction, self.page + 1)
