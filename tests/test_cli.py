"""`python -m bot` as a user runs it: a real process, settings from the environment."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_arxiv import FakeArxiv
from tests.helpers import ROOT, run_bot

pytestmark = pytest.mark.loopback

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


def on_backend(backend: str, database_url: str) -> dict[str, str]:
    """SQLite: the default DATABASE_URL, as a new user has it; PostgreSQL: a test database."""
    return {"DATABASE_URL": database_url} if backend == "postgresql" else {}


@pytest.fixture
def bot_env(fake_arxiv: FakeArxiv, backend: str, database_url: str) -> dict[str, str]:
    fake_arxiv.add_day("2025-10-03")
    fake_arxiv.add_day("2025-11-12")
    return {
        "ARXIV_API_URL": fake_arxiv.url,
        "ARXIV_DELAY_SECONDS": "0",
        "ARXIV_LOOKBACK_DAYS": "3650",
        **on_backend(backend, database_url),
    }


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_bot(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("fetch", "status", "search", "digest", "export-markdown", "migrate"):
        assert command in result.stdout


def test_fetch_status_search_digest_export(
    tmp_path: Path, bot_env: dict[str, str], backend: str
) -> None:
    fetched = run_bot(["fetch"], tmp_path, bot_env)
    assert fetched.returncode == 0, fetched.stderr
    assert "Poll done: 351 new, 0 updated, 0 unchanged" in fetched.stdout
    assert "page 1:" in fetched.stderr  # progress on a backfill
    # SQLite: the default DATABASE_URL; PostgreSQL: no file at all.
    assert (tmp_path / "data" / "arxiv-bot.db").exists() == (backend == "sqlite")

    again = run_bot(["fetch"], tmp_path, bot_env)
    assert "Nothing new on arXiv" in again.stdout

    status = run_bot(["status"], tmp_path, bot_env)
    assert "Papers stored: 351" in status.stdout
    assert ": nothing, 1 requests" in status.stdout and ": ok, 2 requests, 351 new" in status.stdout

    found = run_bot(
        ["search", "speculative decoding", "--topic", "inference-serving"], tmp_path, bot_env
    )
    assert found.returncode == 0
    assert "HiSpec: Hierarchical Speculative Decoding for LLMs" in found.stdout

    digest = run_bot(["digest", "--date", "2025-10-03"], tmp_path, bot_env)
    assert digest.stdout.startswith("Friday, October 3, 2025:")
    assert "why: " not in digest.stdout
    explained = run_bot(["digest", "--date", "2025-10-03", "--explain"], tmp_path, bot_env)
    whys = [line.strip() for line in explained.stdout.splitlines() if "why: " in line]
    assert len(whys) == explained.stdout.count("relevance 0.") + explained.stdout.count(
        "relevance 1."
    )
    assert all(re.match(r"why: (title|abstract): ", w) for w in whys)

    exported = run_bot(["export-markdown", "--output", "out/papers.md"], tmp_path, bot_env)
    assert exported.returncode == 0
    assert "## October 3, 2025" in (tmp_path / "out" / "papers.md").read_text()


def test_failed_poll_is_reported_and_recorded(
    tmp_path: Path, backend: str, database_url: str
) -> None:
    env = {
        "ARXIV_API_URL": "http://127.0.0.1:9/api/query",
        "ARXIV_DELAY_SECONDS": "0",
        "ARXIV_RETRIES": "1",
        **on_backend(backend, database_url),
    }
    result = run_bot(["fetch"], tmp_path, env)
    assert result.returncode == 1
    assert "Poll failed: could not connect to arXiv" in result.stdout
    assert "Traceback" not in result.stderr
    status = run_bot(["status"], tmp_path, env)
    assert ": failed, 2 requests" in status.stdout and "could not connect" in status.stdout


@pytest.fixture(scope="module")
def filled_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder whose default database holds both fixture days, fetched once."""
    folder = tmp_path_factory.mktemp("filled")
    server = FakeArxiv().start()
    server.add_day("2025-10-03")
    server.add_day("2025-11-12")
    environment = {
        "ARXIV_API_URL": server.url,
        "ARXIV_DELAY_SECONDS": "0",
        "ARXIV_LOOKBACK_DAYS": "3650",
    }
    try:
        assert run_bot(["fetch"], folder, environment).returncode == 0
    finally:
        server.stop()
    yield folder


@pytest.mark.parametrize(
    ("query", "outcome"),
    [
        ('"pruning', "results"),  # an unclosed quote is ignored, the word searched
        ("title:x", "results"),  # FTS column syntax is just words
        ("NEAR(a", "results"),
        ("'; DROP TABLE papers; --", "results"),
        ("🔥", "refused"),  # nothing searchable
        ("x" * 5000, "refused"),  # too long
        ("-", "refused"),
        ("zzyzx qqwv", "none"),  # words no paper has
    ],
)
def test_hostile_search_text_never_shows_a_traceback(
    filled_folder: Path, query: str, outcome: str
) -> None:
    result = run_bot(["search", query], filled_folder)
    assert "Traceback" not in result.stderr
    if outcome == "refused":
        assert result.returncode == 2 and not result.stdout
        message = result.stderr.strip().splitlines()
        assert len(message) == 1 and " INFO " not in message[0] and " ERROR " not in message[0]
    elif outcome == "none":
        assert result.returncode == 0 and result.stdout.strip() == "No papers found."
    else:
        assert result.returncode == 0 and re.search(r"^ 1\. ", result.stdout, re.M)


def test_hostile_searches_drop_nothing(filled_folder: Path) -> None:
    for query in ("'; DROP TABLE papers; --", "papers_fts MATCH *", "1 OR 1=1"):
        assert run_bot(["search", query], filled_folder).returncode == 0  # words: searched
    assert "Papers stored: 351" in run_bot(["status"], filled_folder).stdout


def test_invalid_setting_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    result = run_bot(["status"], tmp_path, {"ARXIV_DELAY_SECONDS": "soon"})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "ARXIV_DELAY_SECONDS" in line


def test_settings_come_from_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "DATABASE_URL=sqlite:///elsewhere/my.db\nRELEVANCE_THRESHOLD=2\n"
    )
    result = run_bot(["status"], tmp_path)
    assert result.returncode == 2 and "RELEVANCE_THRESHOLD" in result.stderr
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite:///elsewhere/my.db\n")
    assert run_bot(["migrate"], tmp_path).returncode == 0
    assert (tmp_path / "elsewhere" / "my.db").exists()


def test_a_database_from_a_newer_release_is_refused_clearly(tmp_path: Path) -> None:
    assert run_bot(["migrate"], tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "data" / "arxiv-bot.db") as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, '999_future', 'later')")
    result = run_bot(["status"], tmp_path)
    assert result.returncode == 2
    assert "schema version 999" in result.stderr and "Traceback" not in result.stderr


def test_env_example_documents_every_setting_and_works_as_is(tmp_path: Path) -> None:
    from bot.config import Settings

    example = (ROOT / ".env.example").read_text()
    documented = {
        line.split("=", 1)[0]
        for line in example.splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert documented == {name.upper() for name in Settings.model_fields}
    (tmp_path / ".env").write_text(example)
    result = run_bot(["migrate"], tmp_path)
    assert result.returncode == 0, result.stderr


def test_run_without_a_token_says_what_to_set(tmp_path: Path) -> None:
    result = run_bot(["run"], tmp_path, {"DISCORD_TOKEN": ""})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "DISCORD_TOKEN" in line
