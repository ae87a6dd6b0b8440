"""Shared fixtures: tiny synthetic clips written to disk once per test session, and the
settings of a tiny training run."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from vidcam.config import Config, load_config
from vidcam.testing import synthetic
from vidcam.testing.real_footage import DATA_ENV

# The real clips beside the checkout (../shared/data); tests that need them skip when it is absent.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if SHARED_DATA.is_dir():
    os.environ.setdefault(DATA_ENV, str(SHARED_DATA))

TINY = {"n_frames": 6, "height": 36, "width": 64}

# A run that trains in seconds on the CPU: the fast preset with small batches and few pre-fit
# steps. Tests add their own step counts and sizes on top.
TINY_TRAINING = {
    "device": "cpu",
    "flow.backend": "dis",
    "train.time_budget": None,  # the step count ends training, however busy the machine is
    "train.batch_size": 2048,
    "train.flow_batch_size": 512,
    "train.reg_batch_size": 256,
    "train.log_every": 10,
    "camera.tone_prefit_steps": 100,
}


# Smaller networks and batches still, for tests that render every pixel of a run many times.
SMALL_MODEL = {
    "train.batch_size": 1024,
    "train.reg_batch_size": 512,
    "camera.tone_prefit_steps": 50,
    "camera.tone_hidden": 32,
    "scene.deformation.encoding.log2_table_size": 12,
    "scene.alpha.encoding.log2_table_size": 12,
    "scene.atlas.encoding.levels": 4,
    "scene.atlas.encoding.max_resolution": 128,
}


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., Config]:
    """``tiny_config(overrides, small_model=False)``: the fast preset with TINY_TRAINING (and
    SMALL_MODEL) and ``overrides`` on top."""

    def make(overrides: dict[str, Any] | None = None, small_model: bool = False) -> Config:
        base = {**TINY_TRAINING, **(SMALL_MODEL if small_model else {})}
        return load_config("fast", overrides={**base, **(overrides or {})})

    return make


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models on a busy 2-core machine: a second OpenMP thread makes every op wait for a time
    slice (about 100x slower); one thread is as fast as two when the machine is idle."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_hdr_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 6-frame 64x36 alternating-exposure clip (mp4 + json sidecar) and its ground truth."""
    result = synthetic.make_hdr_clip(seed=5, **TINY)
    path = tmp_path_factory.mktemp("clips") / "tiny_hdr.mp4"
    synthetic.write_clip(result, path)
    return path, result


@pytest.fixture(scope="session")
def tiny_blur_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    result = synthetic.make_blur_clip(seed=5, max_blur_px=4.0, **TINY)
    path = tmp_path_factory.mktemp("clips") / "tiny_blur.mp4"
    synthetic.write_clip(result, path)
    return path, result
