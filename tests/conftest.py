from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import Settings, load_settings
from bot.store import Store, open_store
from tests import postgres_server
from tests.fake_arxiv import FakeArxiv
from tests.fake_openai import FakeOpenAI
from tests.postgres_server import PostgresServer, run_async

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


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module that sets `BOTH_BACKENDS = True` runs each of its database tests on SQLite
    and on a real PostgreSQL server."""
    if getattr(metafunc.module, "BOTH_BACKENDS", False) and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    name = getattr(request, "param", "sqlite")
    if name == "postgresql" and not postgres_server.available():
        pytest.fail("PostgreSQL's server is not installed: .ci/run installs it (README)")
    return str(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One server per test worker, with a migrated template every test database copies."""
    server = PostgresServer().start()
    template = server.create_database("template_bot")

    async def migrate() -> None:
        store = await open_store(load_settings(database_url=template).storage)
        await store.close()

    run_async(migrate())
    server.template = template.rsplit("/", 1)[1]
    yield server
    server.stop()


@pytest.fixture
def postgres_server_for_test(backend: str, request: pytest.FixtureRequest) -> PostgresServer | None:
    """The PostgreSQL server under a `postgresql` test, None under SQLite."""
    return request.getfixturevalue("postgres") if backend == "postgresql" else None


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(template=server.template)


@pytest.fixture
def fake_arxiv() -> Iterator[FakeArxiv]:
    server = FakeArxiv().start()
    yield server
    server.stop()


@pytest.fixture
def settings(
    tmp_path: Path, fake_arxiv: FakeArxiv, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Settings:
    # Tests never read a developer's .env.
    monkeypatch.chdir(tmp_path)
    return load_settings(
        database_url=database_url,
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
    db = await open_store(settings.storage)
    yield db
    await db.close()
