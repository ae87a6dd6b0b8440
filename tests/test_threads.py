"""vidcam/threads.py: a run takes only the cores the load leaves idle, unless told otherwise."""

from __future__ import annotations

import pytest
import torch

from vidcam.config import load_config
from vidcam.errors import VidcamError
from vidcam.threads import apply_threads, choose_threads


def test_busy_machine_gets_one_thread_idle_machine_all_of_torchs():
    assert choose_threads(None, environ={}, cpu_count=2, load_1min=9.0, ceiling=2) == 1
    assert choose_threads(None, environ={}, cpu_count=2, load_1min=1.4, ceiling=2) == 1
    assert choose_threads(None, environ={}, cpu_count=2, load_1min=0.4, ceiling=2) == 2
    # Never more than torch's own default (physical cores), whatever the logical CPUs.
    assert choose_threads(None, environ={}, cpu_count=8, load_1min=0.0, ceiling=4) == 4
    assert choose_threads(None, environ={}, cpu_count=8, load_1min=5.0, ceiling=4) == 3


def test_explicit_setting_then_environment_win_over_the_load():
    assert choose_threads(3, environ={"OMP_NUM_THREADS": "1"}, cpu_count=2, load_1min=9.0, ceiling=2) == 3
    assert choose_threads(None, environ={"OMP_NUM_THREADS": "2"}, cpu_count=2, load_1min=9.0, ceiling=2) is None
    with pytest.raises(VidcamError):
        choose_threads(0, environ={})


def test_threads_setting_reaches_torch_and_config():
    assert load_config("fast", overrides={"threads": 1}).threads == 1
    before = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
