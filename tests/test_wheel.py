"""The installed package, not the checkout: migrations and vocabulary must ship in the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.loopback

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = out.glob("*.whl")
    return built


def test_wheel_carries_migrations_and_vocabulary(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "bot/migrations/001_papers.sql" in names
    assert "bot/data/vocabulary.toml" in names
    assert "bot/data/arxiv-holidays.txt" in names  # read at import: must ship
    assert not any(name.startswith("tests/") for name in names)


def test_installed_wheel_migrates_an_empty_data_folder(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # Dependencies come from this interpreter (no network in tests); the package itself
    # only from the wheel, which sits first on the new environment's path.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "outer-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    data = tmp_path / "data"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{data}/arxiv-bot.db"}
    env.pop("PYTHONPATH", None)
    where = subprocess.run(
        [str(python), "-c", "import bot; print(bot.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(env_dir) in where.stdout  # the wheel's copy, not the checkout

    def bot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-m", "bot", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    for args in (["--help"], ["migrate"], ["classify"]):
        result = bot(*args)
        assert result.returncode == 0, result.stderr
    assert (data / "arxiv-bot.db").exists()
    # What the image's HEALTHCHECK runs, before the service ever connected.
    health = bot("health")
    assert health.returncode == 1
    assert health.stdout.strip() == "not running: the bot has never connected to Discord"
