"""SIGTERMs that arrive while the program loads, before the service can handle them."""

from __future__ import annotations

import signal

EARLY_SIGTERMS: list[int] = []


def remember_sigterm() -> None:
    """Until a command decides what SIGTERM means, note it rather than die of it."""
    signal.signal(signal.SIGTERM, lambda number, _frame: EARLY_SIGTERMS.append(number))
