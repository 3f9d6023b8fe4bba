"""Times as the store keeps them: ISO 8601 text in UTC, which sorts as it reads."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def now_iso() -> str:
    return iso(datetime.now(UTC))
