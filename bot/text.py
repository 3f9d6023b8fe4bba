"""Shortening text for readers: at a word boundary, never between a number and its unit."""

from __future__ import annotations

import re

# A word as people type it: letters and digits, with inner apostrophes and hyphens.
WORD = re.compile(r"\w+(?:['’\-]\w+)*")
_UNIT = re.compile(r"^(?:%|×|x\b|times\b|ms\b|s\b|gb\b|mb\b|tb\b|tokens?\b|points?\b|pp\b)", re.I)
_HAS_DIGIT = re.compile(r"\d")


def clip(text: str, limit: int) -> str:
    """`text` if it fits, else its longest start of whole words that fits with "…". A number
    is never kept without the unit that follows it ("40" without "×"), and a cut never
    falls inside a word when there is a word boundary in the last 40 characters."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    cut = head.rfind(" ")
    if cut < len(head) - 40 or cut <= 0:  # one very long word: cut it
        return head.rstrip() + "…"
    kept, rest = head[:cut], text[cut + 1 :]
    last = kept.rsplit(" ", 1)[-1]
    if _HAS_DIGIT.search(last) and _UNIT.match(rest.lstrip()):
        kept = kept.rsplit(" ", 1)[0] if " " in kept else kept
    return kept.rstrip(" ,;:-(") + "…"
