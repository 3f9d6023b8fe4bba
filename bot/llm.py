"""One place that talks to an OpenAI-compatible chat model: summaries and relevance verdicts.

The `openai` client retries 429 (honouring Retry-After), 5xx, timeouts and connection
errors with exponential backoff and jitter. What is left is sorted here into "this
request failed, try later" and "the provider refuses everything, stop the run"; an
answer that does not validate is asked for once more.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

import openai
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, ValidationError

from bot.config import ModelSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class ModelUnavailable(Exception):
    """No usable answer now; the work is tried again on a later poll."""

    def __init__(self, reason: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


class ProviderRefused(Exception):
    """The provider refuses every request (bad key, unknown model, rate limit): stop this run."""


@dataclass(frozen=True, slots=True)
class ModelAnswer(Generic[T]):
    output: T
    prompt_tokens: int
    completion_tokens: int


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def one_line(text: str) -> str:
    """A model's text as one plain line: control characters and runs of space folded."""
    return " ".join(_CONTROL.sub(" ", text).split())


def parse_json_answer(content: str | None, shape: type[M], what: str) -> M:
    """Validate a model's answer against `shape`, tolerating a Markdown code fence."""
    if not content:
        raise ValueError("empty answer")
    text = content.strip()
    fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
    if fenced:
        text = fenced.group(1)
    try:
        return shape.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(
            f"answer does not match the {what} format: {exc.error_count()} errors"
        ) from exc


class ChatModel:
    """An OpenAI-compatible chat model behind retries, timeouts and answer validation."""

    def __init__(self, settings: ModelSettings) -> None:
        if settings.api_key is None:
            raise ValueError("no OPENAI_API_KEY")
        self.model = settings.model
        self._client = openai.AsyncOpenAI(
            api_key=settings.api_key.get_secret_value(),
            base_url=settings.base_url,
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries,
        )

    async def close(self) -> None:
        await self._client.close()

    async def ask(
        self,
        system: str,
        user: str,
        schema: dict,
        parse: Callable[[str | None], T],
        subject: str,
    ) -> ModelAnswer[T]:
        """One JSON answer, validated by `parse`; `subject` names the work in logs."""
        prompt_tokens = completion_tokens = 0
        problem = ""
        for attempt in (1, 2):  # an answer that does not validate is asked for once more
            try:
                response = await self._client.chat.completions.create(
                    model=self.model,
                    messages=[
                        {"role": "system", "content": system},
                        {"role": "user", "content": user},
                    ],
                    response_format=cast(
                        ResponseFormatJSONSchema, {"type": "json_schema", "json_schema": schema}
                    ),
                    temperature=0.2,
                )
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise ProviderRefused(
                    f"the provider refused the API key ({exc.status_code})"
                ) from exc
            except openai.NotFoundError as exc:
                raise ProviderRefused(f"model {self.model!r} not found at the provider") from exc
            except openai.RateLimitError as exc:
                raise ProviderRefused("still rate limited after retries") from exc
            except openai.APITimeoutError as exc:
                raise ModelUnavailable("the model did not answer in time") from exc
            except openai.APIConnectionError as exc:
                raise ModelUnavailable("could not connect to the model") from exc
            except openai.APIStatusError as exc:
                raise ModelUnavailable(f"the model answered HTTP {exc.status_code}") from exc
            if response.usage is not None:
                prompt_tokens += response.usage.prompt_tokens or 0
                completion_tokens += response.usage.completion_tokens or 0
            content = response.choices[0].message.content if response.choices else None
            try:
                output = parse(content)
            except ValueError as exc:
                problem = str(exc)
                log.warning("unusable answer %s attempt=%d reason=%s", subject, attempt, exc)
                continue
            return ModelAnswer(output, prompt_tokens, completion_tokens)
        raise ModelUnavailable(
            f"two unusable answers ({problem})", prompt_tokens, completion_tokens
        )
