"""Shared fixtures: tiny synthetic clips written to disk once per test session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))

import make_synthetic  # noqa: E402

TINY = {"n_frames": 6, "height": 36, "width": 64}


@pytest.fixture(scope="session")
def tiny_hdr_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 6-frame 64x36 alternating-exposure clip (mp4 + json sidecar) and its ground truth."""
    result = make_synthetic.make_hdr_clip(seed=5, **TINY)
    path = tmp_path_factory.mktemp("clips") / "tiny_hdr.mp4"
    make_synthetic.write_clip(result, path)
    return path, result


@pytest.fixture(scope="session")
def tiny_blur_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    result = make_synthetic.make_blur_clip(seed=5, max_blur_px=4.0, **TINY)
    path = tmp_path_factory.mktemp("clips") / "tiny_blur.mp4"
    make_synthetic.write_clip(result, path)
    return path, result
