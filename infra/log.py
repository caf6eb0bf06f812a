"""One-line progress messages on stderr.

First runs download and build for about a minute; a plain line per step tells the person
waiting (or reading CI output) what is going on without configuring the logging module.
"""

import sys
import time

_T0 = time.monotonic()


def say(message: str) -> None:
    """Print ``[infra +12.3s] message`` to stderr and flush at once (stderr may be a pipe)."""
    sys.stderr.write(f"[infra +{time.monotonic() - _T0:5.1f}s] {message}\n")
    sys.stderr.flush()
