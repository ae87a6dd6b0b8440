"""One-line messages to the user on stderr (progress bars live with their loops)."""

from __future__ import annotations

import sys
from collections.abc import Iterable


def log(message: str) -> None:
    """``vidcam: message`` on stderr, flushed at once so it lands in order with progress output."""
    print(f"vidcam: {message}", file=sys.stderr, flush=True)


def frame_runs(frames: Iterable[int]) -> list[tuple[int, int]]:
    """``[5, 0, 1, 2, 7, 8]`` -> ``[(0, 2), (5, 5), (7, 8)]``: the runs of consecutive frames, first and last."""
    runs: list[list[int]] = []
    for t in sorted(set(frames)):
        if runs and t == runs[-1][1] + 1:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return [(first, last) for first, last in runs]


def frame_ranges(frames: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    return ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in frame_runs(frames))
