"""Votes: readers tell the bot which digest papers they liked, per channel."""

from __future__ import annotations

from bot.store import Store

UP, DOWN = 1, -1
EMOJI = {UP: "👍", DOWN: "👎"}


class VoteError(ValueError):
    """A vote that cannot count; the message is meant for the person who clicked."""


async def cast_vote(
    store: Store, guild_id: str, channel_id: str, user_id: str, arxiv_id: str, value: int
) -> str:
    """Record a click on 👍 or 👎 and say what it did: noted, changed, or (the same
    button again) removed. Only a paper the channel received can be voted on there."""
    if value not in EMOJI:
        raise VoteError("That is not a vote.")
    if not await store.channel_received(channel_id, arxiv_id):
        raise VoteError("This channel's digests never had that paper, so a vote here cannot count.")
    before, after = await store.toggle_vote(guild_id, channel_id, user_id, arxiv_id, value)
    if after is None:
        return f"Removed your {EMOJI[value]}."
    if before is None:
        return f"Noted: {EMOJI[value]}."
    return f"Changed to {EMOJI[value]}."
