"""Following authors and phrases on Discord: /watch and /watches."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot.cogs import UserError, reply
from bot.models import SubscriptionStatus
from bot.store import Store
from bot.watches import add_watch, describe_watch


class Watches(commands.Cog):
    """A person follows an author or a phrase; only they see their watches."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @app_commands.command(
        name="watch", description="Hear about new papers by an author or with a phrase."
    )
    @app_commands.describe(
        author="An author's name, e.g. Song Han",
        phrase="Words to look for in titles and abstracts, e.g. speculative decoding",
        where="dm: a direct message (default); here: a mention in this channel's digest",
    )
    @app_commands.guild_only()
    async def watch(
        self,
        interaction: discord.Interaction,
        author: str | None = None,
        phrase: str | None = None,
        where: Literal["dm", "here"] = "dm",
    ) -> None:
        if where == "here":
            digest = await self.store.subscription_for_channel(str(interaction.channel_id))
            if digest is None or digest.status is SubscriptionStatus.DELETED:
                raise UserError(
                    "This channel has no digest to mention you in; use `where:dm`, or run"
                    " `/watch` in a channel with a digest."
                )
        said = await add_watch(
            self.store,
            str(interaction.user.id),
            str(interaction.guild_id),
            str(interaction.channel_id),
            author,
            phrase,
            by_dm=where == "dm",
        )
        await reply(interaction, said)

    @app_commands.command(name="watches", description="What you follow; remove one.")
    @app_commands.describe(remove="The number of a watch to stop, from this list")
    async def watches(self, interaction: discord.Interaction, remove: int | None = None) -> None:
        user = str(interaction.user.id)
        found = await self.store.user_watches(user)
        if remove is not None:
            if not 1 <= remove <= len(found):
                await reply(interaction, f"There is no watch {remove}; `/watches` lists them.")
                return
            await self.store.remove_watch(user, found[remove - 1].id)
            await reply(interaction, f"Stopped following {describe_watch(found[remove - 1])}.")
            return
        if not found:
            await reply(
                interaction, "You follow nothing yet. `/watch author:` or `/watch phrase:` starts."
            )
            return
        lines = ["**You follow**"] + [f"{n}. {describe_watch(w)}" for n, w in enumerate(found, 1)]
        lines.append("-# `/watches remove:N` stops one.")
        await reply(interaction, "\n".join(lines))
