from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import Settings, load_settings
from bot.store import Store
from tests.fake_arxiv import FakeArxiv
from tests.fake_openai import FakeOpenAI

LLM_SECRET = "sk-test-0123456789-do-not-log"

REPORT_LINES: list[str] = []


@pytest.fixture
def report_line(record_property: Callable[[str, object], None]) -> Callable[[str], None]:
    """Lines (like classifier quality) printed at the end of every test run. They travel
    as the test report's properties, so they reach the summary from parallel workers too."""
    return lambda line: record_property("figure", line)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        REPORT_LINES.extend(str(v) for k, v in report.user_properties if k == "figure")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT_LINES:
        terminalreporter.section("figures")
        for line in REPORT_LINES:
            terminalreporter.write_line(line)


@pytest.fixture
def fake_arxiv() -> Iterator[FakeArxiv]:
    server = FakeArxiv().start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, fake_arxiv: FakeArxiv, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # Tests never read a developer's .env.
    monkeypatch.chdir(tmp_path)
    return load_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        arxiv_api_url=fake_arxiv.url,
        arxiv_delay_seconds=0,
        arxiv_page_size=50,
        arxiv_lookback_days=3650,
        arxiv_retries=2,
        arxiv_timeout_seconds=2,
    )


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def llm_settings(settings: Settings, fake_openai: FakeOpenAI) -> Settings:
    """Settings that reach the loopback OpenAI-compatible server with a key."""
    return settings.model_copy(
        update={
            "openai_api_key": SecretStr(LLM_SECRET),
            "openai_base_url": fake_openai.base_url,
            "openai_model": "fake-mini",
            "openai_timeout_seconds": 1.0,
            "openai_max_retries": 2,
        }
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    db = await Store.open(settings.database_path)
    yield db
    await db.close()
