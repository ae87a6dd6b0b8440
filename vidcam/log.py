"""One-line messages to the user on stderr (progress bars live with their loops)."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    """``vidcam: message`` on stderr, flushed at once so it lands in order with progress output."""
    print(f"vidcam: {message}", file=sys.stderr, flush=True)
