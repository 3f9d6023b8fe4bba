"""Which arXiv listing day a submission appears in.

arXiv closes each day's submissions at 14:00 US Eastern time, Monday to Friday,
and mails them that evening (Friday's batch on Sunday); the listing carries the
next day's date. The curated list this product grew from headed each day with
that listing date, so the digest and the Markdown export use it too. Holidays
shift real listings by a day; they are not modelled.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

_EASTERN = ZoneInfo("America/New_York")
_CUTOFF = time(14, 0)


def announcement_date(submitted: datetime) -> date:
    local = submitted.astimezone(_EASTERN)
    day = local.date()
    if local.time() >= _CUTOFF:
        day += timedelta(days=1)
    while day.weekday() >= 5:  # weekend submissions join Monday's batch
        day += timedelta(days=1)
    # The batch closed on `day` is listed on the next weekday.
    listing = day + timedelta(days=1)
    while listing.weekday() >= 5:
        listing += timedelta(days=1)
    return listing


_ANNOUNCED = time(20, 0)  # US Eastern: each evening's mailing carries the next day's date


def listing_day(moment: datetime) -> date:
    """The listing day readers are on at `moment`: from 20:00 US Eastern, the next date."""
    local = moment.astimezone(_EASTERN)
    return local.date() + timedelta(days=1) if local.time() >= _ANNOUNCED else local.date()


def announced_at(day: date) -> datetime:
    """When arXiv announces the listing dated `day` (the evening before, US Eastern)."""
    return datetime.combine(day - timedelta(days=1), _ANNOUNCED, tzinfo=_EASTERN)


def is_listing_day(day: date) -> bool:
    """arXiv lists Monday to Friday; it announces nothing for weekends."""
    return day.weekday() < 5


def _published_holidays() -> frozenset[date]:
    text = (Path(__file__).parent / "data" / "arxiv-holidays.txt").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return frozenset(
        date.fromisoformat(line) for line in lines if line and not line.startswith("#")
    )


ARXIV_HOLIDAYS = _published_holidays()


def is_published_holiday(day: date) -> bool:
    """Whether arXiv's own list says the listing dated `day` was never announced (its
    announcement evening was an arXiv holiday)."""
    return announced_at(day).astimezone(_EASTERN).date() in ARXIV_HOLIDAYS
