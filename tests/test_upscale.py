"""Fitting at io.fit_side and writing at the video's size (vidcam.upscale)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidcam.config import IOConfig, RenderConfig
from vidcam.fidelity import InverseTone
from vidcam.io.images import read_exr
from vidcam.io.video import read_video
from vidcam.metrics import psnr
from vidcam.testing import synthetic
from vidcam.upscale import DetailTables, fit_max_side, round_trip, upscale_irradiance, upscale_pixels

GAMMA = 2.2


def textured(height: int = 72, width: int = 128, seed: int = 0) -> np.ndarray:
    """uint8 [H,W,3] with detail at every scale (a photo-like texture)."""
    frames = synthetic.make_hdr_clip(seed=seed, n_frames=2, height=height, width=width)["frames"]
    return np.asarray(frames[0], np.uint8) if frames.dtype == np.uint8 else (np.clip(frames[0], 0, 1) * 255).round().astype(np.uint8)


def gamma_inverse() -> InverseTone:
    z = np.linspace(-12, 12, 4096)
    values = np.clip(np.exp(z / GAMMA), 0, 1)[:, None].repeat(3, 1)  # pixel = exposure^(1/2.2)
    return InverseTone.from_table(z, values)


def test_fit_side_is_the_smaller_of_the_two_limits():
    assert fit_max_side(IOConfig(max_side=None, fit_side=640)) == 640
    assert fit_max_side(IOConfig(max_side=480, fit_side=640)) == 480
    assert fit_max_side(IOConfig(max_side=None, fit_side=None)) is None


def test_a_fit_that_reproduces_its_input_gives_back_the_full_size_input():
    full = textured()
    small = cv2.resize(full.astype(np.float32) / 255, (64, 36), interpolation=cv2.INTER_AREA)
    out = upscale_pixels(small, full)
    truth = full.astype(np.float32) / 255
    assert out.shape == full.shape
    plain = cv2.resize(small, (128, 72), interpolation=cv2.INTER_LINEAR)
    assert psnr(out, truth) > 60  # exact up to float rounding: the detail is the input's own
    assert psnr(plain, truth) < 35  # what the upsampled fit alone loses


def test_irradiance_detail_comes_back_in_linear_light_through_the_response():
    full = textured(seed=3)
    codes = full.astype(np.float32) / 255
    linear = codes**GAMMA
    small = cv2.resize(linear, (64, 36), interpolation=cv2.INTER_AREA) * 7.0  # any scale: a window's, an exposure's
    out = upscale_irradiance(small, full, DetailTables(gamma_inverse(), RenderConfig()))
    exposed = (codes > 0.1) & (codes < 0.9)  # the detail is taken where the input is well exposed
    plain = cv2.resize(small, (128, 72), interpolation=cv2.INTER_LINEAR)
    assert psnr(out[exposed] / 7.0, linear[exposed]) > psnr(plain[exposed] / 7.0, linear[exposed]) + 10


def test_clipped_neighbours_do_not_darken_well_exposed_pixels():
    full = np.full((72, 128, 3), 128, np.uint8)
    full[:, 64:] = 255  # half the frame clipped
    codes = full.astype(np.float32) / 255
    small = cv2.resize(codes**GAMMA, (64, 36), interpolation=cv2.INTER_AREA)
    out = upscale_irradiance(small, full, DetailTables(gamma_inverse(), RenderConfig()))
    up = cv2.resize(small, (128, 72), interpolation=cv2.INTER_LINEAR)
    assert np.allclose(out[:, :60], up[:, :60], rtol=0.05)  # no extrapolated irradiance leaks across


def test_round_trip_of_a_smooth_image_is_itself():
    smooth = np.tile(np.linspace(0, 1, 128, dtype=np.float32)[None, :, None], (72, 1, 3))
    assert np.abs(round_trip(smooth, (64, 36)) - smooth)[:, 2:-2].max() < 1e-2


@pytest.mark.parametrize("mode", ["hdr", "deblur"])
def test_run_fitted_small_writes_at_the_video_size(mode, tmp_path, tiny_config):
    from vidcam.pipeline import enhance

    clip = tmp_path / "clip.mp4"
    made = synthetic.make_hdr_clip(seed=5, n_frames=6, height=72, width=128) if mode == "hdr" else synthetic.make_blur_clip(seed=5, n_frames=6, height=72, width=128)
    synthetic.write_clip(made, clip)
    report = enhance(clip, tmp_path / "run", tiny_config({"io.fit_side": 64, "mode": mode, "train.steps": 30}, small_model=True))
    assert report.size == [128, 72]
    assert read_video(tmp_path / "run" / "enhanced.mp4").frames.shape == (6, 72, 128, 3)
    if mode == "hdr":
        exrs = sorted((tmp_path / "run" / "hdr").glob("*.exr"))
        assert len(exrs) == 6 and read_exr(exrs[0]).shape == (72, 128, 3)
