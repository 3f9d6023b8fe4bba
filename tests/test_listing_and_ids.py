"""Listing days and arXiv identifiers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.arxiv_ids import parse_arxiv_id
from bot.listing import announcement_date


@pytest.mark.parametrize(
    ("submitted", "listed"),
    [
        (datetime(2025, 10, 2, 13, 0, tzinfo=UTC), date(2025, 10, 3)),  # Thu 09:00 ET -> Fri
        (datetime(2025, 10, 2, 18, 30, tzinfo=UTC), date(2025, 10, 6)),  # Thu after 14:00 ET
        (datetime(2025, 10, 3, 12, 0, tzinfo=UTC), date(2025, 10, 6)),  # Fri before cutoff -> Mon
        (datetime(2025, 10, 3, 19, 0, tzinfo=UTC), date(2025, 10, 7)),  # Fri after -> Tue
        (datetime(2025, 10, 4, 12, 0, tzinfo=UTC), date(2025, 10, 7)),  # Saturday -> Tue
        (datetime(2023, 6, 15, 12, 0, tzinfo=UTC), date(2023, 6, 16)),  # curated list's June 16
        (datetime(2025, 1, 15, 18, 30, tzinfo=UTC), date(2025, 1, 16)),  # EST: 13:30, before
    ],
)
def test_announcement_date_follows_arxivs_schedule(submitted: datetime, listed: date) -> None:
    assert announcement_date(submitted) == listed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2510.01339", ("2510.01339", 1)),
        ("2510.01339v3", ("2510.01339", 3)),
        (" arXiv:2510.01339 ", ("2510.01339", 1)),
        ("https://arxiv.org/abs/2510.01339v2", ("2510.01339", 2)),
        ("https://arxiv.org/pdf/2306.08960.pdf", ("2306.08960", 1)),
        ("http://export.arxiv.org/abs/hep-th/9901001v1", ("hep-th/9901001", 1)),
        ("pruning", None),
        ("https://example.com/abs/2510.01339", None),
        ("2510.01339; DROP TABLE", None),
    ],
)
def test_arxiv_ids_are_recognised_in_any_usual_form(
    text: str, expected: tuple[str, int] | None
) -> None:
    assert parse_arxiv_id(text) == expected
