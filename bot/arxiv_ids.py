"""arXiv identifiers and category names: split versions off, recognise ids inside URLs or
user text, and tell a category (cs.LG, stat.ML, hep-th) from anything else."""

from __future__ import annotations

import re

_NEW_STYLE = r"\d{4}\.\d{4,5}"
_OLD_STYLE = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}"
_ID = re.compile(
    rf"^(?:arxiv:)?(?:https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/)?"
    rf"(?P<id>{_NEW_STYLE}|{_OLD_STYLE})(?:v(?P<version>\d+))?(?:\.pdf)?/?$",
    re.IGNORECASE,
)


_CATEGORY = re.compile(r"^[a-z][a-z\-]*(\.[A-Za-z][A-Za-z\-]*)?$")


def is_category(text: str) -> bool:
    """An arXiv category name like cs.LG; MSC/ACM class strings and free text are not."""
    return bool(_CATEGORY.match(text))


def split_version(short_id: str) -> tuple[str, int]:
    """'2510.01339v2' -> ('2510.01339', 2); an id without version counts as v1."""
    parsed = parse_arxiv_id(short_id)
    if parsed is None:
        raise ValueError(f"not an arXiv id: {short_id!r}")
    return parsed


def parse_arxiv_id(text: str) -> tuple[str, int] | None:
    """Recognise a bare id, 'arXiv:ID', or an arxiv.org abs/pdf URL; None for anything else."""
    match = _ID.match(text.strip())
    if match is None:
        return None
    version = match.group("version")
    return match.group("id"), int(version) if version else 1
