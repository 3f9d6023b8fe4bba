"""`python -m bot`: the command line, in `bot.cli`. Its modules take a second or two to
load on a busy machine; a SIGTERM that arrives meanwhile (a `docker stop` just after
start) is remembered and honoured by the command once it runs."""

from __future__ import annotations

import sys

from bot.early_signals import remember_sigterm


def main(argv: list[str] | None = None) -> int:
    remember_sigterm()
    from bot.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
