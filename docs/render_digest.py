"""Draw docs/digest.svg: a digest as Discord shows it, from what the bot really posted.

    python docs/render_digest.py

Runs the real bot against the loopback Discord of the tests, delivers the
2025-11-12 fixture day to one channel, and draws the recorded messages (content,
embeds, Summary and Save buttons) in Discord's dark theme.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.classify import load_classifier  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.digests.delivery import deliver_due  # noqa: E402
from bot.discord_bot.client import bot_for  # noqa: E402
from bot.pipeline import classify_pending  # noqa: E402
from bot.service import Service  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.subscriptions import subscribe  # noqa: E402
from tests.fake_discord import CHANNEL_ID, GUILD_ID, FakeDiscord  # noqa: E402
from tests.helpers import fixture_papers  # noqa: E402

WIDTH = 760
FONT = "font-family='gg sans, Noto Sans, Helvetica, Arial, sans-serif'"


async def recorded_digest() -> list[dict]:
    fake = FakeDiscord().start()
    folder = Path(tempfile.mkdtemp(prefix="render-digest-"))
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'bot.db'}",
        discord_token="render",
        discord_api_base_url=fake.api_base,
        discord_guild_id=int(GUILD_ID),
        digest_max_papers=6,
    )
    store = await Store.open(settings.database_path)
    await store.upsert_papers(fixture_papers("2025-11-12"))
    await classify_pending(store, load_classifier())
    await subscribe(store, settings.digests, GUILD_ID, CHANNEL_ID)
    bot = bot_for(settings, store, Service(store, settings, load_classifier()), run_poller=False)
    task = asyncio.create_task(bot.start("render"))
    await asyncio.wait_for(bot.wait_until_ready(), 30)
    await deliver_due(
        store, settings.digests, bot.sender, datetime.now(UTC) + timedelta(days=1, minutes=1)
    )
    messages = fake.posted(CHANNEL_ID)
    await bot.close()
    await asyncio.gather(task, return_exceptions=True)
    await store.close()
    fake.stop()
    return messages


def _plain(markdown: str) -> str:
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", markdown)
    text = re.sub(r"`([^`]+)`", r"\1", text)
    return re.sub(r"\\(.)", r"\1", text)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def draw(messages: list[dict]) -> str:
    parts, y = [], 24
    parts.append(
        f"<text x='72' y='{y + 14}' fill='#f2f3f5' font-size='15' font-weight='600' {FONT}>"
        "arxiv-bot <tspan fill='#fff' font-size='10' font-weight='700'"
        " dx='6'>APP</tspan><tspan fill='#949ba4' font-size='12' font-weight='400'"
        " dx='8'>Today at 08:00</tspan></text>"
    )
    parts.append(
        "<circle cx='40' cy='42' r='20' fill='#b31b1b'/>"
        f"<text x='40' y='48' text-anchor='middle' fill='#fff' font-size='16' {FONT}>aX</text>"
    )
    y += 30
    for message in messages:
        for index, line in enumerate(message["content"].splitlines()):
            bold = line.startswith("**")
            for chunk in _wrap(_plain(line), 84):
                parts.append(
                    f"<text x='72' y='{y + 14}' fill='#dbdee1' font-size='14'"
                    f" font-weight='{700 if bold and index == 0 else 400}' {FONT}>"
                    f"{escape(chunk)}</text>"
                )
                y += 21
        y += 6
        for embed in message["embeds"]:
            title = _wrap(_plain(embed["title"]), 70)
            desc = [
                c for line in _plain(embed["description"]).splitlines() for c in _wrap(line, 80)
            ]
            height = 20 + 20 * len(title) + 19 * len(desc)
            parts.append(
                f"<rect x='72' y='{y}' width='{WIDTH - 110}' height='{height}' rx='4'"
                " fill='#2b2d31'/>"
            )
            parts.append(
                f"<rect x='72' y='{y}' width='4' height='{height}' rx='2' fill='#b31b1b'/>"
            )
            ty = y + 24
            for chunk in title:
                parts.append(
                    f"<text x='90' y='{ty}' fill='#00a8fc' font-size='14' font-weight='600'"
                    f" {FONT}>{escape(chunk)}</text>"
                )
                ty += 20
            for chunk in desc:
                parts.append(
                    f"<text x='90' y='{ty}' fill='#dbdee1' font-size='13' {FONT}>"
                    f"{escape(chunk)}</text>"
                )
                ty += 19
            y += height + 8
        for row in message["components"]:
            x = 72
            for button in row["components"]:
                emoji = (button.get("emoji") or {}).get("name")
                text = f"{emoji} {button['label']}" if emoji else button["label"]
                label = escape(text)
                w = 14 + 7.5 * len(text) + (6 if emoji else 0)
                parts.append(
                    f"<rect x='{x}' y='{y}' width='{w}' height='32' rx='4' fill='#4e5058'/>"
                    f"<text x='{x + w / 2}' y='{y + 21}' text-anchor='middle' fill='#fff'"
                    f" font-size='13' font-weight='500' {FONT}>{label}</text>"
                )
                x += w + 8
            y += 40
        y += 10
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{y + 10}'"
        f" viewBox='0 0 {WIDTH} {y + 10}'><rect width='100%' height='100%' fill='#313338'/>"
        + "".join(parts)
        + "</svg>\n"
    )


def main() -> None:
    messages = asyncio.run(recorded_digest())
    out = ROOT / "docs" / "digest.svg"
    out.write_text(draw(messages), encoding="utf-8")
    print(f"wrote {out} from {len(messages)} recorded messages")


if __name__ == "__main__":
    main()
