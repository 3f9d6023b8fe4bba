"""discord.py's process-wide endpoints, set in this one place.

discord.py reads its REST base (`Route.BASE`) and its gateway address
(`DiscordWebSocket.DEFAULT_GATEWAY`) from class attributes shared by every client in
the process. To go through DISCORD_API_BASE_URL (an HTTP proxy, or the tests'
loopback Discord) both must be changed; nothing else in the bot touches them.
"""

from __future__ import annotations

import discord
import yarl

from bot.config import DISCORD_API_URL


def use_rest_base(base_url: str) -> bool:
    """Send REST calls to `base_url`. True when it is not Discord's own, so the gateway
    address must be asked from that server too (see `use_gateway`)."""
    if base_url == DISCORD_API_URL:
        return False
    discord.http.Route.BASE = base_url
    return True


def use_gateway(url: str) -> None:
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
