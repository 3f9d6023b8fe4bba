# Build: the bot's wheel, installed with its dependencies into a virtual environment.
FROM python:3.12-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY migrations ./migrations
RUN python -m build --wheel --outdir /wheels \
 && python -m venv /opt/bot \
 && /opt/bot/bin/pip install --no-cache-dir /wheels/*.whl

# Run: only the installed wheels, as an unprivileged user, data on a volume.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////data/arxiv-bot.db
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin bot \
 && mkdir -p /data && chown bot:bot /data
# Only the installed environment comes across: no layer keeps wheels or build tools, and
# any builder (BuildKit or the legacy one) can build it.
COPY --from=build /opt/bot /opt/bot
ENV PATH=/opt/bot/bin:$PATH
USER bot
# From /, the relative default (sqlite:///data/arxiv-bot.db, as .env.example ships it)
# and the absolute one above are the same file on the volume.
WORKDIR /
VOLUME ["/data"]
# Healthy: database current, Discord heartbeat recent, arXiv poller not stalled.
HEALTHCHECK --interval=60s --timeout=15s --start-period=120s --retries=3 \
    CMD ["python", "-m", "bot", "health"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot", "run"]
