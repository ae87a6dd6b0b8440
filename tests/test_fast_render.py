"""The fast renderer (vidcam/fast_render.py) gives the exact render's pictures; streamed export pieces."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vidcam import atlas, fast_render
from vidcam.export import measure_display
from vidcam.fast_render import (
    FastScene,
    FastSettings,
    _upsample,
    rendered_frames,
    sampled_irradiance,
)
from vidcam.io.images import read_png, write_png
from vidcam.pipeline import enhance
from vidcam.rendering import exposure_scale, render_clip, srgb_encode, tonemap_aces
from vidcam.run import open_run
from vidcam.streaming import FrameSinks
from vidcam.testing import synthetic as ms

N, H, W = 6, 36, 64
RUN = {
    "train.steps": 200,
    "train.bootstrap_steps": 100,
}
MIN_PSNR_DB = 40.0  # fast vs exact, per frame, on display-referred [0, 1] pictures

pytestmark = pytest.mark.usefixtures("one_thread")




def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def _exact(rc):
    return replace(rc, fast=False)


@pytest.fixture(scope="module")
def hdr_run_dir(tmp_path_factory, tiny_config) -> Path:
    folder = tmp_path_factory.mktemp("fast_hdr")
    ms.write_clip(ms.make_hdr_clip(seed=0, n_frames=N, height=H, width=W), folder / "clip.mp4")
    enhance(folder / "clip.mp4", folder / "run", tiny_config(RUN, small_model=True))
    return folder / "run"


@pytest.fixture(scope="module")
def blur_run_dir(tmp_path_factory, tiny_config) -> Path:
    folder = tmp_path_factory.mktemp("fast_blur")
    ms.write_clip(ms.make_blur_clip(seed=0, max_blur_px=4.0, n_frames=N, height=H, width=W), folder / "clip.mp4")
    # with atlases that change over time: the fast renderer evaluates that change per pixel
    enhance(folder / "clip.mp4", folder / "run", tiny_config({**RUN, "mode": "deblur", "scene.atlas_dynamics": True}, small_model=True))
    return folder / "run"


def test_fast_scene_render_matches_exact(hdr_run_dir):
    run = open_run(hdr_run_dir, "cpu")
    rc = run.cfg.render
    assert rc.fast
    fast = np.stack(list(rendered_frames(run.model, rc)))
    exact = np.stack(list(rendered_frames(run.model, _exact(rc))))
    assert fast.shape == exact.shape == (N, H, W, 3)
    scale = run.hdr_scale
    for t in range(N):
        shown_fast = srgb_encode(tonemap_aces(fast[t] * scale))
        shown_exact = srgb_encode(tonemap_aces(exact[t] * scale))
        assert _psnr(shown_fast, shown_exact) >= MIN_PSNR_DB, t
    relative = np.abs(fast - exact) / (exact + 1e-3 * exact.mean())
    assert np.median(relative) < 0.01 and np.percentile(relative, 99) < 0.15


def test_fast_camera_render_matches_exact(blur_run_dir):
    run = open_run(blur_run_dir, "cpu")
    assert run.operator == "camera" and run.model.blur is not None
    changes = [float(change.mlp.last.weight.detach().abs().max()) for change in run.model.scene.dynamics.values()]
    assert len(changes) == run.n_layers and min(changes) > 0  # learned, and loaded back from the checkpoint
    rc = run.cfg.render
    fast = np.stack(list(rendered_frames(run.model, rc, camera=True)))
    exact = np.stack(list(rendered_frames(run.model, _exact(rc), camera=True)))
    for t in range(N):
        assert _psnr(fast[t], exact[t]) >= MIN_PSNR_DB, t
    assert 0 <= fast.min() and fast.max() <= 1


def test_fast_edit_matches_exact_edit(hdr_run_dir, tmp_path):
    exported = atlas.export_atlas(hdr_run_dir, device="cpu")
    picture = read_png(exported / "layer0_atlas.png").copy()
    h, w = picture.shape[:2]
    picture[h // 4 : h // 2, w // 4 : w // 2] = (200, 90, 40)
    write_png(tmp_path / "layer0_atlas.png", picture)
    (tmp_path / "atlas.json").write_bytes((exported / "atlas.json").read_bytes())
    run = open_run(hdr_run_dir, "cpu")
    fast = atlas.render_edited(run, 0, tmp_path / "layer0_atlas.png")
    run.cfg = replace(run.cfg, render=_exact(run.cfg.render))
    exact = atlas.render_edited(run, 0, tmp_path / "layer0_atlas.png")
    unedited = render_clip(run.model, run.chunk) * run.hdr_scale
    assert np.abs(exact.hdr - unedited).max() > 0.05  # the edit shows
    for t in range(N):
        assert _psnr(fast.sdr[t] / 255.0, exact.sdr[t] / 255.0) >= MIN_PSNR_DB, t


def test_prepass_exposure_scale_within_one_percent(hdr_run_dir, monkeypatch):
    run = open_run(hdr_run_dir, "cpu")
    rc = run.cfg.render
    full = exposure_scale(render_clip(run.model, rc.chunk), rc.key)
    monkeypatch.setattr(fast_render, "PREPASS_PIXELS", H * W // 4)  # every 2nd pixel of every 2nd row
    assert fast_render.prepass_step(run.model) == 2
    stats = measure_display(sampled_irradiance(run.model, rc), rc.key, rc.hdr10_white_nits, rc.hdr10_peak_nits)
    assert stats.scale == pytest.approx(full, rel=0.01)
    assert 0 < stats.light_levels[1] <= stats.light_levels[0] <= rc.hdr10_peak_nits


def test_strided_grid_samples_the_frame(hdr_run_dir):
    """A pre-pass grid (every 3rd pixel) sees the same irradiance as the full frame at those pixels."""
    run = open_run(hdr_run_dir, "cpu")
    settings = FastSettings.from_config(run.cfg.render)
    full = FastScene(run.model, settings, run.chunk).frame(2)
    strided = FastScene(run.model, settings, run.chunk, step=3).frame(2)
    assert strided.shape == (12, 22, 3)
    relative = np.abs(strided - full[::3, ::3]) / full[::3, ::3]
    assert np.median(relative) < 0.001 and np.percentile(relative, 99) < 0.05


def test_upsample_is_exact_on_linear_functions():
    rows, cols, stride = 13, 21, 4
    r, c = (rows - 1 + stride - 1) // stride + 1, (cols - 1 + stride - 1) // stride + 1
    y, x = torch.meshgrid(torch.arange(r) * stride, torch.arange(c) * stride, indexing="ij")
    coarse = torch.stack([2.0 * x + 0.5 * y, -x + 3.0], dim=-1).float()
    dense = _upsample(coarse, rows, cols, stride).view(rows, cols, 2)
    yy, xx = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    assert torch.allclose(dense, torch.stack([2.0 * xx + 0.5 * yy, -xx + 3.0], dim=-1).float(), atol=1e-4)


def test_sinks_stream_to_every_writer_and_abort_on_error():
    got: dict[str, list[int]] = {"a": [], "b": []}
    with FrameSinks() as sinks:
        sinks.add("a", lambda frames: got["a"].extend(frames))
        sinks.add("b", lambda frames: got["b"].extend(f * 2 for f in frames))
        for value in range(5):
            sinks.put("a", value)
            sinks.put("b", value)
    assert got == {"a": [0, 1, 2, 3, 4], "b": [0, 2, 4, 6, 8]}

    def failing(frames):
        for _ in frames:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), FrameSinks() as sinks:
        sinks.add("bad", failing)
        for value in range(10):
            sinks.put("bad", value)

    finished = []

    def consume(frames):
        list(frames)
        finished.append(True)

    with pytest.raises(ValueError), FrameSinks() as sinks:
        sinks.add("c", consume)
        sinks.put("c", 1)
        raise ValueError("render failed")
    assert finished == []  # the producer failed: the writer was made to fail too (no partial output)
