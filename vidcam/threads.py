"""How many CPU threads torch uses for a run: on a shared machine, only the cores nobody else uses.

torch's OpenMP threads meet at a barrier after every operation; when another process keeps one of
them off its core, each barrier waits for a scheduler time slice. Measured on the 2-core
development machine at a load average of ~9 (24 frames of 320x180, HDR, fast preset): a training
step took 2.6-6.7 s with 2 threads and 0.55 s with 1. So unless told otherwise, a run takes the
cores that the load average leaves idle, never fewer than one nor more than torch would.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch

from vidcam.errors import VidcamError


def idle_cores(cpu_count: int, load_1min: float, ceiling: int) -> int:
    """CPUs the 1-minute load average leaves free (rounded half up), within ``[1, ceiling]``."""
    return max(1, min(ceiling, math.floor(cpu_count - load_1min + 0.5)))


def choose_threads(
    requested: int | None,
    environ: Mapping[str, str] | None = None,
    cpu_count: int | None = None,
    load_1min: float | None = None,
    ceiling: int | None = None,
) -> int | None:
    """The intra-op thread count to set, or None to leave torch's as it is.

    ``requested`` (the ``threads`` setting) wins; then an explicit ``OMP_NUM_THREADS`` (torch has
    honoured it already); else the idle cores, at most torch's own default (``ceiling``).
    """
    if requested is not None:
        if requested < 1:
            raise VidcamError(f"threads must be at least 1, got {requested}")
        return requested
    environ = os.environ if environ is None else environ
    if environ.get("OMP_NUM_THREADS"):
        return None
    if load_1min is None:
        try:
            load_1min = os.getloadavg()[0]
        except OSError:  # no load average on this platform: keep torch's default
            return None
    return idle_cores(cpu_count or os.cpu_count() or 1, load_1min, ceiling or torch.get_num_threads())


def planned_threads(requested: int | None) -> int:
    """The intra-op thread count a run with this ``threads`` setting will use, without setting it."""
    return choose_threads(requested) or torch.get_num_threads()


def apply_threads(requested: int | None) -> int:
    """Set torch's intra-op threads for this run (see ``choose_threads``); returns the count in use."""
    threads = choose_threads(requested)
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
