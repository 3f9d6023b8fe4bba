"""What the image and compose file promise, checked where no Docker engine runs.

The image itself is exercised by test_wheel.py (same wheel, same commands) and
test_service.py (the command it runs); these checks keep the files honest."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_runs_the_service_unprivileged_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and all(s.startswith("python:") and s.endswith("-slim") for s in stages)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert 'CMD ["python", "-m", "bot", "run"]' in text
    assert re.search(r'HEALTHCHECK .*\n?.*CMD \["python", "-m", "bot", "health"\]', text)
    assert 'VOLUME ["/data"]' in text and "sqlite:////data/arxiv-bot.db" in text
    assert not re.search(r"(TOKEN|API_KEY)\s*=", text)  # no secrets baked in
    # Everything the build copies exists and is let through .dockerignore.
    allowed = (ROOT / ".dockerignore").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for name in source.split():
            assert (ROOT / name).exists(), name
            assert f"!{name.rstrip('/')}" in allowed.replace("/\n", "\n"), name


def test_compose_keeps_data_on_a_volume_and_restarts() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "env_file: .env" in text
    assert re.search(r"- \S+:/data", text)
    assert "restart: unless-stopped" in text


def test_the_database_lands_on_the_volume_whatever_env_example_says() -> None:
    """`docker run --env-file .env` with .env.example as shipped: its relative
    DATABASE_URL, read from the image's working directory, is the file on the volume."""
    from pathlib import PurePosixPath

    text = (ROOT / "Dockerfile").read_text()
    workdir = re.findall(r"^WORKDIR (\S+)", text, re.M)[-1]
    shipped = re.search(r"^DATABASE_URL=sqlite:///(.+)$", (ROOT / ".env.example").read_text(), re.M)
    assert shipped is not None
    assert str(PurePosixPath(workdir) / shipped.group(1)) == "/data/arxiv-bot.db"
    # No layer keeps the build's wheels: only the installed environment is copied.
    assert re.findall(r"^COPY --from=build (\S+)", text, re.M) == ["/opt/bot"]
    assert "ENV PATH=/opt/bot/bin:$PATH" in text


def test_the_scale_profile_runs_postgresql_and_every_shard_once() -> None:
    """`docker compose --profile scale up -d postgres shard-0 shard-1`: PostgreSQL and bot
    processes whose shard ids cover 0..count-1 exactly once, all on that PostgreSQL; the
    default `bot` service stays on SQLite and outside the profile."""
    text = (ROOT / "docker-compose.yml").read_text()
    services = dict(re.findall(r"^  ([\w-]+):(.*?)(?=^  [\w-]+:|^\S|\Z)", text, re.M | re.S))
    assert "profiles" not in services["bot"] and "sqlite:////data" in services["bot"]
    assert "profiles: [scale]" in services["postgres"]
    shards = {name: body for name, body in services.items() if "--shard-ids" in body}
    assert len(shards) >= 2
    counts, ids = set(), []
    for body in shards.values():
        assert "postgresql://" in body and "@postgres:5432/" in body
        found = re.search(r'"--shard-ids", "([\d,]+)", "--shard-count", "(\d+)"', body)
        assert found is not None
        ids += [int(i) for i in found.group(1).split(",")]
        counts.add(int(found.group(2)))
    assert len(counts) == 1 and sorted(ids) == list(range(counts.pop()))
    assert "profiles: [scale]" in text.split("shard-0:")[1].split("shard-1:")[0]
    assert "docker compose --profile scale up -d postgres shard-0 shard-1" in text
