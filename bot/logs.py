"""Logging: one line per event with its level; secrets never reach the output."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO


class RedactSecrets(logging.Filter):
    """Replaces any configured secret (bot token, API key) in a formatted record.
    Our own log lines never include them; this guards third-party debug logs."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        cleaned = message
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, "***")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_text is None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            for secret in self.secrets:
                record.exc_text = record.exc_text.replace(secret, "***")
        return True


class OneLineFormatter(logging.Formatter):
    """Tracebacks folded onto the event's line, so each event stays one line in
    `docker compose logs` and in log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", " | ")


def configure_logging(
    level: str, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        OneLineFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z"
        )
    )
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The arxiv client logs every page at INFO with its URL; our own lines say it once.
    logging.getLogger("arxiv").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # Connection-level chatter, and aiosqlite's echo of every statement, are noise.
    for noisy in (
        "discord.gateway",
        "discord.client",
        "httpx",
        "httpx2",
        "aiohttp.access",
        "aiosqlite",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
