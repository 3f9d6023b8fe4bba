"""Polling the loopback arXiv server with the real `arxiv` client."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest

from bot.config import Settings
from bot.ingest import poll_arxiv
from bot.models import PollOutcome, SearchQuery
from bot.search import search_papers
from bot.store import Store
from tests.fake_arxiv import EMPTY_FEED, FIXTURES, FakeArxiv, Fault

pytestmark = pytest.mark.loopback

BOTH_BACKENDS = True  # each database test runs on SQLite and on PostgreSQL


async def stored_ids(store: Store) -> list[str]:
    result = await search_papers(store, SearchQuery(limit=1000))
    return [p.arxiv_id for p in result.papers]


async def test_first_poll_stores_every_paper_of_the_listing(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_day("2025-10-03")
    report = await poll_arxiv(store, settings.arxiv)
    assert report.outcome is PollOutcome.OK
    assert report.counts.new == 176
    assert report.requests == 4  # 176 papers in pages of 50
    assert len(await stored_ids(store)) == 176
    paper = await store.get_paper("2510.01339")
    assert paper is not None
    assert paper.title.startswith("LVTINO: LAtent Video consisTency")
    assert paper.authors == ("Alessio Spagnoletti", "Andrés Almansa", "Marcelo Pereyra")
    assert paper.categories == ("cs.CV", "stat.ML")
    assert "\n" not in paper.abstract  # the 2025-10-03 feed hard-wraps abstracts
    assert paper.announced.isoformat() == "2025-10-03"
    # Every request asked for the configured categories, newest update first.
    query = fake_arxiv.requests[0]
    assert query["sortBy"] == ["lastUpdatedDate"]
    assert "cat:cs.LG" in query["search_query"][0] and "cat:stat.ML" in query["search_query"][0]


async def test_msc_class_strings_are_not_stored_as_categories(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_day("2025-10-03")
    await poll_arxiv(store, settings.arxiv)
    for paper in (await search_papers(store, SearchQuery(limit=1000))).papers:
        for category in paper.categories:
            assert " " not in category and ";" not in category and "," not in category


async def test_repeated_poll_adds_nothing_and_says_so(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_day("2025-10-03")
    await poll_arxiv(store, settings.arxiv)
    requests_before = len(fake_arxiv.requests)
    report = await poll_arxiv(store, settings.arxiv)
    assert report.outcome is PollOutcome.NOTHING
    assert report.counts.new == 0 and report.counts.updated == 0
    assert len(fake_arxiv.requests) - requests_before == 1  # stops at the first known page
    assert len(await stored_ids(store)) == 176
    polls = await store.recent_polls()
    assert [p.outcome for p in polls] == [PollOutcome.NOTHING, PollOutcome.OK]


async def test_catch_up_after_downtime_reads_only_the_new_days(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_day("2025-10-03")
    await poll_arxiv(store, settings.arxiv)
    fake_arxiv.add_day("2025-11-12")  # weeks later
    report = await poll_arxiv(store, settings.arxiv)
    assert report.outcome is PollOutcome.OK
    assert report.counts.new == 175
    assert len(await stored_ids(store)) == 351


async def test_a_new_version_updates_the_paper_and_its_search_index(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_day("2025-10-03")
    await poll_arxiv(store, settings.arxiv)
    fake_arxiv.add_new_version(
        "2510.01339", 2, "Zebrafish Quokka Restoration Revisited", "2025-10-20T10:00:00Z"
    )
    report = await poll_arxiv(store, settings.arxiv)
    assert report.counts.updated == 1 and report.counts.new == 0
    paper = await store.get_paper("2510.01339")
    assert paper is not None
    assert paper.version == 2 and paper.title == "Zebrafish Quokka Restoration Revisited"
    assert paper.announced.isoformat() == "2025-10-03"  # still listed on its first day
    found = await search_papers(store, SearchQuery(text="quokka"))
    assert [p.arxiv_id for p in found.papers] == ["2510.01339"]
    old_title = SearchQuery(text='"LAtent Video consisTency INverse sOlver"')
    assert (await search_papers(store, old_title)).papers == []


async def test_503_then_success_is_retried(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_day("2025-11-12")
    fake_arxiv.fail_next(Fault(status=503, body=b"busy", headers={"Retry-After": "0"}))
    report = await poll_arxiv(store, settings.arxiv)
    assert report.outcome is PollOutcome.OK
    assert report.counts.new == 175
    assert report.requests == 5  # one refused + four pages


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(status=503, body=b"busy"), "HTTP 503"),
        (Fault(body=b"<feed><entry><title>broken"), "malformed"),
        (Fault(body=EMPTY_FEED), "empty page"),
    ],
)
async def test_a_poll_that_keeps_failing_ends_cleanly_and_says_why(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv, fault: Fault, reason: str
) -> None:
    fake_arxiv.add_day("2025-11-12")
    fake_arxiv.fail_next(*[fault] * 3)  # settings allow 2 retries
    report = await poll_arxiv(store, settings.arxiv)
    assert report.outcome is PollOutcome.FAILED
    assert reason in (report.reason or "")
    [poll] = await store.recent_polls()
    assert poll.outcome is PollOutcome.FAILED and reason in (poll.reason or "")
    assert poll.requests == 3
    # The next poll, with arXiv healthy again, gets everything.
    report = await poll_arxiv(store, settings.arxiv)
    assert report.outcome is PollOutcome.OK and report.counts.new == 175


async def test_malformed_page_is_refetched_not_half_stored(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_day("2025-11-12")
    good = fake_arxiv.render({"start": ["0"], "max_results": ["50"]})
    truncated = good[: len(good) // 2]  # cut inside an entry, as a dropped connection does
    fake_arxiv.fail_next(Fault(body=truncated))
    report = await poll_arxiv(store, settings.arxiv)
    assert report.outcome is PollOutcome.OK
    published = {
        row["id"]: row
        for row in map(json.loads, (FIXTURES / "2025-11-12.jsonl").read_text().splitlines())
    }
    assert len(await stored_ids(store)) == 175
    for arxiv_id in await stored_ids(store):
        paper = await store.get_paper(arxiv_id)
        assert paper is not None
        assert paper.abstract == " ".join(published[arxiv_id]["summary"].split()), arxiv_id


async def test_empty_answer_is_a_failure_not_nothing_announced(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    # arXiv sometimes answers a throttled request with an empty 200 page.
    fake_arxiv.add_day("2025-11-12")
    fake_arxiv.fail_next(*[Fault(body=EMPTY_FEED)] * 3)
    report = await poll_arxiv(store, settings.arxiv)
    assert report.outcome is PollOutcome.FAILED
    assert "throttled" in (report.reason or "")


async def test_failure_mid_listing_keeps_pages_and_next_poll_fills_the_gap(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_day("2025-10-03")
    await poll_arxiv(store, settings.arxiv)
    fake_arxiv.add_day("2025-11-12")
    # First page of the new day arrives, then arXiv goes down for the rest of the poll.
    fake_arxiv.fail_next(Fault(), *[Fault(status=503, body=b"down")] * 3)
    report = await poll_arxiv(store, settings.arxiv)
    assert report.outcome is PollOutcome.FAILED
    assert report.counts.new == 50
    assert len(await stored_ids(store)) == 176 + 50
    report = await poll_arxiv(store, settings.arxiv)
    assert report.outcome is PollOutcome.OK
    assert report.counts.new == 125  # the rest of the day, no gap
    assert len(await stored_ids(store)) == 351


async def test_slow_answer_times_out_and_is_retried(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_day("2025-11-12")
    fake_arxiv.fail_next(Fault(delay=3.0))  # the timeout is 2 s
    report = await poll_arxiv(store, settings.arxiv)
    assert report.outcome is PollOutcome.OK and report.counts.new == 175
    assert report.requests == 5


async def test_requests_are_spaced_by_the_configured_delay(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_day("2025-11-12")
    paced = settings.model_copy(update={"arxiv_delay_seconds": 0.4})
    await poll_arxiv(store, paced.arxiv)
    gaps = [b - a for a, b in itertools.pairwise(fake_arxiv.request_times)]
    assert len(gaps) == 3
    assert min(gaps) >= 0.38


async def test_a_slow_poll_leaves_the_event_loop_free(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    fake_arxiv.add_day("2025-11-12")
    fake_arxiv.fail_next(*[Fault(delay=0.5)] * 4)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.05)

    task = asyncio.create_task(ticker())
    await poll_arxiv(store, settings.arxiv)
    task.cancel()
    longest_gap = max(b - a for a, b in itertools.pairwise(ticks))
    assert len(ticks) > 20
    assert longest_gap < 0.4  # a blocking client would freeze the loop for 0.5 s per page


async def test_first_poll_respects_the_lookback_window(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    from datetime import UTC, datetime

    fake_arxiv.add_day("2025-10-03")
    fake_arxiv.add_day("2025-11-12")
    narrow = settings.model_copy(update={"arxiv_lookback_days": 3})
    report = await poll_arxiv(store, narrow.arxiv, now=datetime(2025, 11, 13, tzinfo=UTC))
    assert report.counts.new == 175  # the October day is older than three days
    assert all(i.startswith("2511.") for i in await stored_ids(store))


async def test_polls_and_on_demand_lookups_share_arxivs_pace(
    store: Store, settings: Settings, fake_arxiv: FakeArxiv
) -> None:
    """A /save of an unknown id while a poll is paging: the service's one pacer keeps every
    request to arXiv at least ARXIV_DELAY_SECONDS after the one before, whoever made it."""
    from bot.classify import load_classifier
    from bot.service import Service

    fake_arxiv.add_day("2025-11-12")  # 175 papers: four pages of 50
    fake_arxiv.add_paper("2109.14119", "Full-batch training", "We train.", "2021-09-29T17:00:00Z")
    paced = settings.model_copy(update={"arxiv_delay_seconds": 0.3})
    service = Service(store, paced, load_classifier())
    await asyncio.gather(service.poll_once(), service.fetch_papers(["2109.14119"]))
    assert await store.get_paper("2109.14119") is not None
    times = sorted(fake_arxiv.request_times)
    assert len(times) >= 5  # the poll's pages and the lookup
    # Paced at the client; arrival at the server jitters by a thread switch or two on a
    # busy machine, while unpaced requests would arrive milliseconds apart.
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.25
