#!/usr/bin/env bash
# The image as a server admin runs it: build it, then --help, migrate, health and run against
# loopback stand-ins for arXiv, OpenAI and Discord (the test suite's fakes, on the host
# network), then `docker stop` and expect exit 0 within 10 seconds; then the same database
# moved into a PostgreSQL server on the host with migrate-to, and the image run on it as
# the leader of one shard.
#
# Needs a Docker engine and the test dependencies (.venv from the README's test command);
# CI does not run it. Run it after changing the Dockerfile, the compose file or start-up:
#   bash scripts/container-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
image=arxiv-efficiency-bot:smoke
name=arxiv-bot-smoke
data=$(mktemp -d)
chmod 777 "$data"  # the image runs as an unprivileged user
urls=$(mktemp)
fakes_pid=
cleanup() {
    docker rm -f "$name" >/dev/null 2>&1 || true
    [ -n "$fakes_pid" ] && kill "$fakes_pid" 2>/dev/null || true
    rm -rf "$data" "$urls"
}
trap cleanup EXIT
step() { printf '== %s\n' "$*"; }

step "build"
docker build -q -t "$image" . >/dev/null

step "--help"
docker run --rm "$image" python -m bot --help | grep -q "train-classifier"

step "migrate into an empty volume"
docker run --rm -v "$data:/data" "$image" python -m bot migrate
test -f "$data/arxiv-bot.db"

step "health before any run says so"
if docker run --rm -v "$data:/data" "$image" python -m bot health; then
    echo "health must fail before the service ever ran" >&2; exit 1
fi

step "loopback arXiv, OpenAI and Discord"
PYTHONPATH=. .venv/bin/python - "$urls" <<'PY' &
import sys, time
from tests.fake_arxiv import FakeArxiv
from tests.fake_discord import FakeDiscord
from tests.fake_openai import FakeOpenAI
arxiv, discord, openai = FakeArxiv().start(), FakeDiscord().start(), FakeOpenAI().start()
arxiv.add_day("2025-11-12")
with open(sys.argv[1], "w") as out:
    out.write(f"{arxiv.url} {discord.api_base} {openai.base_url}\n")
time.sleep(3600)
PY
fakes_pid=$!
for _ in $(seq 50); do [ -s "$urls" ] && break; sleep 0.2; done
read -r arxiv_url discord_url openai_url < "$urls"

step "run, with the shipped .env.example as --env-file"
docker run -d --name "$name" --network host -v "$data:/data" --env-file .env.example \
    -e DISCORD_TOKEN=smoke-token -e DISCORD_API_BASE_URL="$discord_url" \
    -e ARXIV_API_URL="$arxiv_url" -e ARXIV_DELAY_SECONDS=0 -e ARXIV_LOOKBACK_DAYS=3650 \
    -e OPENAI_API_KEY=smoke-key -e OPENAI_BASE_URL="$openai_url" "$image" >/dev/null
for _ in $(seq 60); do
    docker exec "$name" python -m bot health >/dev/null 2>&1 && break
    sleep 1
done
docker exec "$name" python -m bot health
test -f "$data/arxiv-bot.db" && test ! -e "$data/data"  # the database is on the volume

step "docker stop: exit 0 within 10 s"
started=$(date +%s)
docker stop -t 10 "$name" >/dev/null
took=$(( $(date +%s) - started ))
code=$(docker inspect "$name" --format '{{.State.ExitCode}}')
echo "exit code $code after ${took}s"
[ "$code" = 0 ] && [ "$took" -lt 10 ]

step "PostgreSQL: migrate-to from the volume's database, then run as the leader"
# A throwaway server on the host (the test suite's), reached over the host network.
pg=$(.venv/bin/python - <<'PY'
from tests.postgres_server import PostgresServer
server = PostgresServer().start()
print(server.create_database("smoke"), server.data)
PY
)
read -r pg_url pg_data <<< "$pg"
pg_stop() { runuser -u postgres -- "$(dirname "$(readlink -f "$(command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1)")")/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true; }
trap 'pg_stop; cleanup' EXIT
docker run --rm --network host -v "$data:/data" "$image" python -m bot migrate-to "$pg_url" | tail -1
docker rm -f "$name" >/dev/null
docker run -d --name "$name" --network host --env-file .env.example \
    -e DATABASE_URL="$pg_url" -e PROCESS_NAME=smoke \
    -e DISCORD_TOKEN=smoke-token -e DISCORD_API_BASE_URL="$discord_url" \
    -e ARXIV_API_URL="$arxiv_url" -e ARXIV_DELAY_SECONDS=0 "$image" \
    python -m bot run --shard-ids 0 --shard-count 1 >/dev/null
for _ in $(seq 60); do
    docker exec "$name" python -m bot health 2>/dev/null | grep -q "^ok (leader)" && break
    sleep 1
done
health=$(docker exec "$name" python -m bot health)
echo "$health"
[[ "$health" == "ok (leader)"* ]]
docker stop -t 10 "$name" >/dev/null
[ "$(docker inspect "$name" --format '{{.State.ExitCode}}')" = 0 ]
step "ok"
