import json

import numpy as np
import pytest

from vidcam.io.video import read_video
from vidcam.metrics import psnr, psnr_mu
from vidcam.testing import baselines
from vidcam.testing import imaging
from vidcam.testing import synthetic as ms

TINY = dict(n_frames=6, height=32, width=48)
SMALL = dict(n_frames=8, height=72, width=128)


@pytest.fixture(scope="module")
def hdr_clip() -> dict:
    return ms.make_hdr_clip(seed=0, **SMALL)


@pytest.fixture(scope="module")
def blur_clip() -> dict:
    return ms.make_blur_clip(seed=0, max_blur_px=5.0, **SMALL)


def _clipped_fraction(frames: np.ndarray) -> float:
    return float(np.mean(frames.max(axis=-1) >= 254))


@pytest.mark.parametrize("make, key", [(ms.make_hdr_clip, "hdr"), (ms.make_blur_clip, "sharp")])
def test_generators_are_deterministic_per_seed(make, key):
    a, b, c = make(seed=3, **TINY), make(seed=3, **TINY), make(seed=4, **TINY)
    assert np.array_equal(a["frames"], b["frames"])
    assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["frames"], c["frames"])


@pytest.mark.parametrize("make", [ms.make_hdr_clip, ms.make_blur_clip])
def test_shapes_and_types(make):
    clip = make(seed=1, **TINY)
    assert clip["frames"].shape == (6, 32, 48, 3)
    assert clip["frames"].dtype == np.uint8


def test_hdr_ground_truth_is_linear_float_with_a_high_dynamic_range(hdr_clip):
    hdr = hdr_clip["hdr"]
    assert hdr.dtype == np.float32 and hdr.shape == hdr_clip["frames"].shape
    assert hdr.min() > 0
    assert np.percentile(hdr, 99.9) / np.percentile(hdr, 0.1) > 1000


def test_exposures_alternate_short_first():
    clip = ms.make_hdr_clip(seed=0, exposure_ratio=8.0, **TINY)
    assert clip["exposures"].tolist() == [1.0, 8.0] * 3
    three = ms.make_hdr_clip(seed=0, pattern=(1.0, 2.0, 4.0), **TINY)
    assert three["exposures"].tolist() == [1.0, 2.0, 4.0] * 2


def test_long_frames_clip_and_short_frames_mostly_do_not(hdr_clip):
    frames, exposures = hdr_clip["frames"], hdr_clip["exposures"]
    long_clip = _clipped_fraction(frames[exposures == exposures.max()])
    short_clip = _clipped_fraction(frames[exposures == exposures.min()])
    assert long_clip > 0.03
    assert short_clip < 0.02
    assert short_clip < long_clip / 3
    assert frames[exposures == exposures.max()].mean() > frames[exposures == exposures.min()].mean() + 20


def test_short_frames_have_noisy_shadows(hdr_clip):
    """The noise-free recording differs from the actual one mostly through sensor noise."""
    s = hdr_clip["settings"]
    clean = ms.quantise_8bit(ms.hill_crf(np.clip(hdr_clip["hdr"][0] * hdr_clip["exposures"][0], 0, 1), s.crf_n, s.crf_k))
    assert np.std(clean.astype(float) - hdr_clip["frames"][0]) > 1.0


def test_camera_response_is_monotone_non_gamma_and_invertible():
    s = ms.HdrSettings()
    x = np.linspace(0, 1, 1001)[:, None].repeat(3, axis=1)
    y = ms.hill_crf(x, s.crf_n, s.crf_k)
    assert np.all(np.diff(y, axis=0) > 0)
    assert y[0].tolist() == [0.0, 0.0, 0.0] and np.allclose(y[-1], 1.0)
    assert np.max(np.abs(y - x ** (1 / 2.2))) > 0.05
    assert np.max(np.abs(y[:, 0] - y[:, 2])) > 0.005  # channels differ
    assert np.allclose(imaging.hill_crf_inverse(y, s.crf_n, s.crf_k), x, atol=1e-9)


def test_recorded_frames_follow_the_camera_model(hdr_clip):
    """Away from clipping, inverting the response recovers hdr * exposure (up to noise)."""
    s = hdr_clip["settings"]
    frames, hdr, exposures = hdr_clip["frames"], hdr_clip["hdr"], hdr_clip["exposures"]
    linear = imaging.hill_crf_inverse(frames / 255.0, s.crf_n, s.crf_k) / exposures[:, None, None, None]
    valid = (frames > 60) & (frames < 200)
    ratio = np.median(linear[valid] / hdr[valid])
    assert ratio == pytest.approx(1.0, abs=0.03)


def test_sprite_moves_independently_of_the_background(hdr_clip):
    alpha = hdr_clip["alpha"]
    assert 0.02 < alpha[0].mean() < 0.5
    ys, xs = np.nonzero(alpha[0] > 0.5)
    ye, xe = np.nonzero(alpha[-1] > 0.5)
    assert abs(xs.mean() - xe.mean()) > 10


def test_blur_varies_from_nearly_sharp_to_strongly_blurred(blur_clip):
    scores = [psnr(f / 255.0, g / 255.0) for f, g in zip(blur_clip["frames"], blur_clip["sharp"])]
    lengths = blur_clip["blur_px"]
    assert lengths.min() < 0.5 and lengths.max() > 2.5
    sharpest, blurriest = int(np.argmin(lengths)), int(np.argmax(lengths))
    assert scores[sharpest] > 32
    assert scores[blurriest] < scores[sharpest] - 8


def test_blur_ground_truth_is_the_middle_sub_frame():
    clip = ms.make_blur_clip(seed=2, subframes=1, **TINY)
    diff = clip["frames"].astype(int) - clip["sharp"]
    assert np.abs(diff).mean() < 2.0  # one sub-frame: only noise separates them


def test_write_clip_and_regenerate(tmp_path):
    clip = ms.make_hdr_clip(seed=5, **TINY)
    out = tmp_path / "clip.mp4"
    ms.write_clip(clip, out, gt=True)
    decoded = read_video(out)
    assert decoded.frames.shape == clip["frames"].shape
    assert float(decoded.fps) == pytest.approx(24.0)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["kind"] == "hdr" and meta["seed"] == 5
    assert meta["exposures"] == clip["exposures"].tolist()
    again = ms.regenerate(out.with_suffix(".json"))
    assert np.array_equal(again["hdr"], clip["hdr"])
    assert np.array_equal(again["frames"], clip["frames"])
    gt = np.load(tmp_path / "clip_gt.npz")
    assert np.allclose(gt["hdr"].astype(np.float32), clip["hdr"], rtol=2e-3)


def test_cli_writes_a_blur_clip(tmp_path):
    out = tmp_path / "b.mp4"
    assert ms.main(["blur", str(out), "--seed", "1", "--frames", "4", "--width", "48", "--height", "32"]) == 0
    assert read_video(out).frames.shape == (4, 32, 48, 3)
    assert ms.regenerate(out.with_suffix(".json"))["sharp"].shape == (4, 32, 48, 3)


def test_classical_merge_beats_single_frame_linearisation(hdr_clip):
    frames, exposures, gt = hdr_clip["frames"], hdr_clip["exposures"], hdr_clip["hdr"]
    merged = baselines.classical_hdr_merge(frames, exposures)
    assert merged.shape == gt.shape and merged.dtype == np.float32
    assert psnr_mu(merged, gt) > psnr_mu(baselines.single_frame_hdr(frames, exposures), gt) + 0.3


def test_unsharp_mask_keeps_shape_and_sharpens(blur_clip):
    out = baselines.unsharp_mask(blur_clip["frames"])
    assert out.shape == blur_clip["frames"].shape and out.dtype == np.uint8
    assert np.abs(np.diff(out.astype(float), axis=2)).mean() > np.abs(np.diff(blur_clip["frames"].astype(float), axis=2)).mean()
