"""Draw docs/digest.svg: a digest as Discord shows it, from what the bot really posted.

    python docs/render_digest.py

Runs the real bot against the loopback Discord of the tests, delivers the
2025-11-12 fixture day to one channel, and draws the recorded messages (content,
sections, Summary, vote and Save buttons) in Discord's dark theme.
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
        digest_max_papers=4,
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
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", markdown)  # a masked link shows its text
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"`([^`]+)`", r"\1", text)
    text = re.sub(r"^(#+|-#) ", "", text)
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


def _text(parts: list[str], x: int, y: int, markdown: str, width: int) -> int:
    """Draw a text display the way Discord styles its Markdown; returns the new y."""
    for line in markdown.splitlines():
        heading, small = line.startswith("## "), line.startswith("-# ")
        link = line.startswith("**") and "](" in line
        size, weight, colour, step = 14, 400, "#dbdee1", 20
        if heading:
            size, weight, colour, step = 18, 700, "#f2f3f5", 26
        elif small:
            size, colour, step = 12, "#949ba4", 17
        elif link:
            weight, colour = 600, "#00a8fc"
        for chunk in _wrap(_plain(line), int(width / (size * 0.55))):
            parts.append(
                f"<text x='{x}' y='{y + size}' fill='{colour}' font-size='{size}'"
                f" font-weight='{weight}' {FONT}>{escape(chunk)}</text>"
            )
            y += step
    return y + 6


def _button(parts: list[str], x: float, y: int, button: dict) -> float:
    emoji = (button.get("emoji") or {}).get("name")
    label = " ".join(filter(None, [emoji, button.get("label")]))
    w = 16 + 7.5 * len(label) + (8 if emoji else 0)
    parts.append(
        f"<rect x='{x}' y='{y}' width='{w}' height='32' rx='4' fill='#4e5058'/>"
        f"<text x='{x + w / 2}' y='{y + 21}' text-anchor='middle' fill='#fff'"
        f" font-size='13' font-weight='500' {FONT}>{escape(label)}</text>"
    )
    return x + w + 8


def _component(parts: list[str], y: int, component: dict, width: int) -> int:
    kind = component["type"]
    if kind == 10:  # text display
        return _text(parts, 90, y, component["content"], width)
    if kind == 9:  # section: its text, its accessory at the right
        top = y
        for child in component["components"]:
            y = _text(parts, 90, y, child["content"], width - 110)
        _button(parts, WIDTH - 130, top + 4, component["accessory"])
        return max(y, top + 40)
    if kind == 1:  # a row of buttons
        x: float = 90
        for button in component["components"]:
            x = _button(parts, x, y, button)
        return y + 44
    return y


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
        for container in message["components"]:  # layout messages: one container each
            top = y
            body: list[str] = []
            y += 12
            for component in container["components"]:
                y = _component(body, y, component, WIDTH - 120)
            parts.append(
                f"<rect x='72' y='{top}' width='{WIDTH - 100}' height='{y - top}' rx='6'"
                " fill='#2b2d31'/>"
                f"<rect x='72' y='{top}' width='4' height='{y - top}' rx='2' fill='#b31b1b'/>"
            )
            parts += body
            y += 12
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
