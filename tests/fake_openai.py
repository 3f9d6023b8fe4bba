"""A loopback OpenAI-compatible chat-completions server for the real `openai` client.

By default it answers a summary request with a valid three-bullet summary of the
paper in the prompt, and a relevance-verdict request with one verdict per paper
listed, decided by `verdict_for` (a test sets it; the default finds papers with
"efficient" in the title relevant). Faults (429, 500, malformed answers, slow
answers) can be queued for everyone or for the paper whose title contains a text.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.loopback import LoopbackServer


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # the assistant's message; None: a valid summary
    body: bytes | None = None  # replaces the whole HTTP body
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def summary_for(title: str) -> str:
    return json.dumps(
        {
            "tldr": f"{title[:80]}, in one line.",
            "bullets": [
                f"Proposes the method of '{title[:60]}'.",
                "Works by doing the thing the abstract describes.",
                "Gains 2x speed at equal accuracy, per the abstract.",
            ],
        }
    )


def _default_verdict(arxiv_id: str, title: str) -> tuple[bool, list[str], str]:
    relevant = "efficient" in title.lower()
    return relevant, ["inference-serving"] if relevant else [], f"fake verdict on {title[:40]}"


def verdicts_for(user_prompt: str, verdict_for: Callable) -> str:
    papers = re.findall(r"^id: (.*)\nTitle: (.*)$", user_prompt, re.M)
    answers = []
    for arxiv_id, title in papers:
        relevant, topics, reason = verdict_for(arxiv_id, title)
        answers.append({"id": arxiv_id, "relevant": relevant, "topics": topics, "reason": reason})
    return json.dumps({"papers": answers})


class FakeOpenAI:
    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.verdict_for: Callable[[str, str], tuple[bool, list[str], str]] = _default_verdict
        self.requests: list[dict] = []
        self.authorizations: list[str] = []
        self._queue: deque[Reply] = deque()
        self._by_title: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._handler())

    @property
    def base_url(self) -> str:
        return f"{self._server.origin}/v1"

    def start(self) -> FakeOpenAI:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def reply_next(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def reply_for(self, title_part: str, *replies: Reply) -> None:
        with self._lock:
            self._by_title[title_part].extend(replies)

    def titles_requested(self) -> list[str]:
        return [self._title(r) for r in self.requests]

    def verdict_requests(self) -> list[list[str]]:
        """The paper ids each relevance-verdict request asked about, in order."""
        return [
            re.findall(r"^id: (.*)$", self._user(r), re.M)
            for r in self.requests
            if self._is_verdict(r)
        ]

    @staticmethod
    def _is_verdict(request: dict) -> bool:
        schema = request.get("response_format", {}).get("json_schema", {})
        return schema.get("name") == "relevance_verdicts"

    @staticmethod
    def _user(request: dict) -> str:
        return next((m["content"] for m in request.get("messages", []) if m["role"] == "user"), "")

    @staticmethod
    def _title(request: dict) -> str:
        user = FakeOpenAI._user(request)
        match = re.search(r"^Title: (.*)$", user, re.M)
        return match.group(1) if match else ""

    def _reply(self, request: dict) -> Reply:
        title = self._title(request)
        with self._lock:
            for part, replies in self._by_title.items():
                if part in title and replies:
                    return replies.popleft()
            return self._queue.popleft() if self._queue else Reply()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(request)
                    fake.authorizations.append(self.headers.get("Authorization", ""))
                reply = fake._reply(request)
                time.sleep(fake.latency + reply.delay)
                if reply.body is not None:
                    body = reply.body
                elif reply.status != 200:
                    body = json.dumps(
                        {"error": {"message": "fake failure", "type": "server_error", "code": None}}
                    ).encode()
                else:
                    if reply.content is not None:
                        content = reply.content
                    elif fake._is_verdict(request):
                        content = verdicts_for(fake._user(request), fake.verdict_for)
                    else:
                        content = summary_for(fake._title(request))
                    prompt_chars = sum(len(m["content"]) for m in request.get("messages", []))
                    body = json.dumps(
                        {
                            "id": f"chatcmpl-{len(fake.requests)}",
                            "object": "chat.completion",
                            "created": int(time.time()),
                            "model": request.get("model", "fake"),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {
                                "prompt_tokens": prompt_chars // 4,
                                "completion_tokens": len(content) // 4,
                                "total_tokens": prompt_chars // 4 + len(content) // 4,
                            },
                        }
                    ).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler
