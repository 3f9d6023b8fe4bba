"""A loopback HTTP server that speaks the arXiv query API well enough for the real `arxiv` client.

It serves entries taken from the Atom fixtures, filtered by `cat:` terms, sorted as
asked, paged by `start`/`max_results`, and can be told to misbehave the way arXiv
does: 503s, empty pages, malformed XML, slow answers.
"""

from __future__ import annotations

import copy
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from tests.loopback import LoopbackServer

ATOM = "http://www.w3.org/2005/Atom"
ARXIV = "http://arxiv.org/schemas/atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
ET.register_namespace("", ATOM)
ET.register_namespace("arxiv", ARXIV)
ET.register_namespace("opensearch", OPENSEARCH)

FIXTURES = Path(__file__).parent / "fixtures" / "arxiv"


def load_entries(day: str) -> list[ET.Element]:
    root = ET.parse(FIXTURES / f"{day}.atom.xml").getroot()
    return root.findall(f"{{{ATOM}}}entry")


def entry_id(entry: ET.Element) -> str:
    return entry.findtext(f"{{{ATOM}}}id", "").rsplit("/", 1)[-1].split("v")[0]


@dataclass
class Fault:
    status: int = 200
    body: bytes | None = None  # replaces the feed when set
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


EMPTY_FEED = (
    f'<?xml version="1.0" encoding="UTF-8"?><feed xmlns="{ATOM}" xmlns:opensearch="{OPENSEARCH}">'
    "<title>ArXiv Query</title><opensearch:totalResults>0</opensearch:totalResults>"
    "<opensearch:startIndex>0</opensearch:startIndex>"
    "<opensearch:itemsPerPage>0</opensearch:itemsPerPage></feed>"
).encode()


class FakeArxiv:
    def __init__(self) -> None:
        self.entries: list[ET.Element] = []
        self.faults: deque[Fault] = deque()
        self.requests: list[dict[str, list[str]]] = []
        self.request_times: list[float] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._handler())

    @property
    def url(self) -> str:
        return f"{self._server.origin}/api/query"

    def start(self) -> FakeArxiv:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    # -- what it serves -----------------------------------------------------------------

    def add_day(self, day: str) -> None:
        with self._lock:
            self.entries.extend(load_entries(day))

    def add_new_version(self, arxiv_id: str, version: int, title: str, updated: str) -> None:
        """Replace a paper by a newer version, as arXiv does after a replacement."""
        with self._lock:
            for index, entry in enumerate(self.entries):
                if entry_id(entry) == arxiv_id:
                    new = copy.deepcopy(entry)
                    new.find(f"{{{ATOM}}}id").text = f"http://arxiv.org/abs/{arxiv_id}v{version}"
                    new.find(f"{{{ATOM}}}title").text = title
                    new.find(f"{{{ATOM}}}updated").text = updated
                    self.entries[index] = new
                    return
        raise KeyError(arxiv_id)

    def add_paper(
        self, arxiv_id: str, title: str, summary: str, published: str, category: str = "cs.LG"
    ) -> None:
        """One more paper, as arXiv's API describes it (published like 2021-10-25T17:00:00Z)."""
        entry = ET.Element(f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}id").text = f"http://arxiv.org/abs/{arxiv_id}v1"
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = published
        ET.SubElement(entry, f"{{{ATOM}}}published").text = published
        ET.SubElement(entry, f"{{{ATOM}}}title").text = title
        ET.SubElement(entry, f"{{{ATOM}}}summary").text = summary
        author = ET.SubElement(entry, f"{{{ATOM}}}author")
        ET.SubElement(author, f"{{{ATOM}}}name").text = "A. Author"
        ET.SubElement(
            entry, f"{{{ATOM}}}link", href=f"http://arxiv.org/abs/{arxiv_id}v1", rel="alternate"
        )
        ET.SubElement(entry, f"{{{ARXIV}}}primary_category", term=category)
        ET.SubElement(entry, f"{{{ATOM}}}category", term=category)
        with self._lock:
            self.entries.append(entry)

    def fail_next(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    # -- protocol -----------------------------------------------------------------------

    def _select(self, query: dict[str, list[str]]) -> tuple[list[ET.Element], int]:
        ids = [i for i in query.get("id_list", [""])[0].split(",") if i]
        if ids:
            # arXiv answers with the ids it knows, but counts every id asked for in the
            # total: a client that trusts the total asks for a page that comes back empty.
            with self._lock:
                known = {entry_id(e): e for e in self.entries}
            found = [known[i.split("v")[0]] for i in ids if i.split("v")[0] in known]
            start = int(query.get("start", ["0"])[0])
            size = int(query.get("max_results", ["10"])[0])
            return found[start : start + size], len(ids)
        search = query.get("search_query", [""])[0]
        wanted = {part.split(":", 1)[1] for part in search.split() if part.startswith("cat:")}
        key = (
            "updated" if query.get("sortBy", ["relevance"])[0] == "lastUpdatedDate" else "published"
        )
        descending = query.get("sortOrder", ["descending"])[0] == "descending"
        with self._lock:
            chosen = [
                e
                for e in self.entries
                if not wanted or wanted & {c.get("term") for c in e.findall(f"{{{ATOM}}}category")}
            ]
        chosen.sort(
            key=lambda e: datetime.fromisoformat(
                e.findtext(f"{{{ATOM}}}{key}").replace("Z", "+00:00")
            ),
            reverse=descending,
        )
        start = int(query.get("start", ["0"])[0])
        size = int(query.get("max_results", ["10"])[0])
        return chosen[start : start + size], len(chosen)

    def render(self, query: dict[str, list[str]]) -> bytes:
        page, total = self._select(query)
        feed = ET.Element(f"{{{ATOM}}}feed")
        ET.SubElement(feed, f"{{{ATOM}}}title").text = "ArXiv Query"
        ET.SubElement(feed, f"{{{OPENSEARCH}}}totalResults").text = str(total)
        ET.SubElement(feed, f"{{{OPENSEARCH}}}startIndex").text = query.get("start", ["0"])[0]
        ET.SubElement(feed, f"{{{OPENSEARCH}}}itemsPerPage").text = str(len(page))
        feed.extend(copy.deepcopy(e) for e in page)
        return ET.tostring(feed, encoding="utf-8", xml_declaration=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                query = parse_qs(parsed.query)
                fake.requests.append(query)
                fake.request_times.append(time.monotonic())
                fault = fake.faults.popleft() if fake.faults else Fault()
                if fault.delay:
                    time.sleep(fault.delay)
                body = fault.body if fault.body is not None else fake.render(query)
                try:
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/atom+xml; charset=utf-8")
                    for name, value in fault.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler
