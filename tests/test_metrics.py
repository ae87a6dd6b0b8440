import math

import numpy as np
import pytest

from vidcam.metrics import align_scale, mse, mu_law, psnr, psnr_l, psnr_mu, ssim


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64] / 64.0
    base = 0.5 + 0.3 * np.sin(6 * xx)[..., None] * np.cos(4 * yy)[..., None] * np.array([1.0, 0.8, 0.6])
    return np.clip(base + 0.05 * rng.standard_normal((48, 64, 3)), 0, 1)


@pytest.fixture
def hdr() -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.exp(rng.uniform(np.log(1e-3), np.log(10.0), (2, 24, 32, 3)))


def test_identical_images_give_infinite_psnr_and_unit_ssim(image):
    assert psnr(image, image) == math.inf
    assert ssim(image, image) == pytest.approx(1.0)


def test_known_mse_gives_known_psnr():
    gt = np.zeros((10, 10))
    pred = np.full((10, 10), 0.1)  # MSE 0.01 -> 20 dB at range 1, 40 dB at range 10
    assert mse(pred, gt) == pytest.approx(0.01)
    assert psnr(pred, gt) == pytest.approx(20.0)
    assert psnr(pred, gt, data_range=10.0) == pytest.approx(40.0)


def test_ssim_drops_with_noise(image):
    rng = np.random.default_rng(2)
    scores = [ssim(np.clip(image + s * rng.standard_normal(image.shape), 0, 1), image) for s in (0.02, 0.05, 0.1)]
    assert scores[0] < 1.0
    assert scores[0] > scores[1] > scores[2]


def test_ssim_matches_skimage_reference(image):
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    noisy = np.clip(image + 0.05 * np.random.default_rng(3).standard_normal(image.shape), 0, 1)
    reference = structural_similarity(
        noisy, image, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert ssim(noisy, image) == pytest.approx(reference, abs=1e-6)


def test_ssim_accepts_grey_and_frame_stacks(image):
    grey = image.mean(-1)
    assert ssim(grey, grey) == pytest.approx(1.0)
    stack = np.stack([image, image * 0.9])
    assert ssim(stack, stack) == pytest.approx(1.0)
    assert ssim(stack[::-1], stack) < 1.0


def test_shape_mismatch_is_an_error(image):
    with pytest.raises(ValueError):
        psnr(image, image[:-1])


def test_align_scale_recovers_a_global_scale(hdr):
    assert align_scale(hdr * 0.25, hdr) == pytest.approx(4.0)
    assert align_scale(hdr, hdr) == pytest.approx(1.0)


def test_hdr_psnrs_are_invariant_to_a_global_scale_of_the_prediction(hdr):
    pred = hdr * np.exp(0.05 * np.random.default_rng(4).standard_normal(hdr.shape))
    for metric in (psnr_mu, psnr_l):
        assert metric(pred * 37.0, hdr) == pytest.approx(metric(pred, hdr), abs=1e-6)
        assert metric(pred * 1e-3, hdr) == pytest.approx(metric(pred, hdr), abs=1e-6)


def test_hdr_psnr_without_alignment_sees_the_scale(hdr):
    assert psnr_mu(hdr, hdr, align=False) == math.inf
    assert psnr_mu(hdr * 2.0, hdr, align=False) < 30.0


def test_mu_law_maps_unit_interval_onto_itself_monotonically():
    x = np.linspace(0, 1, 101)
    y = mu_law(x)
    assert y[0] == 0.0 and y[-1] == pytest.approx(1.0)
    assert np.all(np.diff(y) > 0)


def test_mu_law_psnr_weighs_dark_errors_more_than_bright_ones():
    gt = np.full((16, 16, 3), 0.5)
    gt[:8] = 0.01  # shadows in the top half, highlights in the bottom half
    gt[0, 0] = gt[-1, -1] = 1.0  # the peak; leaves 127 shadow and 127 highlight pixels
    dark, bright = gt == 0.01, gt == 0.5
    error = 0.005
    dark_err, bright_err = gt + error * dark, gt + error * bright
    assert psnr_mu(dark_err, gt, align=False) < psnr_mu(bright_err, gt, align=False) - 10.0
    # Linear PSNR cannot tell them apart (same absolute error on a similar pixel count).
    assert psnr_l(dark_err, gt, align=False) == pytest.approx(psnr_l(bright_err, gt, align=False), abs=1e-9)
