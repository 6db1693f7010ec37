"""The one exit-code table of every command line (dataprep, training, companion) and the domain
errors that map onto it. A CLI catches these only: any other exception is a bug, and its traceback
is shown rather than hidden behind a one-line message."""

from __future__ import annotations

import sys
from collections.abc import Callable

EXIT_OK = 0
EXIT_FAILED = 1        # the work could not be done (a parity check, a bundle over budget, images that failed)
EXIT_BAD_INPUT = 2     # the inputs cannot be used as given; argparse's usage errors are 2 as well
EXIT_INTERRUPTED = 130


class BadInput(ValueError):
    """A file, config or dataset cannot be used as given (the message says why and what to do)."""


class Failed(RuntimeError):
    """The inputs were fine but the work could not be finished (the message says why)."""


def run_command(fn: Callable[[], int | None]) -> int:
    """fn's exit code, or the table's for a domain error (printed as one line on stderr)."""
    try:
        return int(fn() or EXIT_OK)
    except (BadInput, FileNotFoundError) as e:   # a path that is not there is bad input too
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Failed as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
