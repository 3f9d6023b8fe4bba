"""Log output: one line per event with its level, secrets masked."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_events_are_one_line_with_level_and_secrets_are_masked() -> None:
    out = io.StringIO()
    configure_logging("INFO", ["sk-very-secret-key"], out)
    log = logging.getLogger("bot.test")
    log.info("polled channel=%s key=%s", "123", "sk-very-secret-key")
    try:
        raise RuntimeError("boom with sk-very-secret-key inside")
    except RuntimeError:
        log.exception("digest failed channel=%s", "456")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert " INFO bot.test polled channel=123 key=***" in lines[0]
    assert " ERROR bot.test digest failed channel=456 | Traceback" in lines[1]
    assert "RuntimeError: boom with *** inside" in lines[1]
    assert "sk-very-secret-key" not in out.getvalue()
