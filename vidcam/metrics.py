"""Image-quality metrics for evaluation against ground truth (numpy, float64 inside).

* ``psnr`` / ``ssim``: standard full-reference metrics on display-referred images.
* ``psnr_mu`` / ``psnr_l``: HDR metrics. Self-supervised HDR is only defined up to a global
  scale, so the prediction is first aligned to the ground truth by one scalar
  (``align_scale``), then both are normalised by the ground truth's maximum and compared
  after the mu-law tone curve (PSNR-mu, Kalantari & Ramamoorthi 2017) or linearly (PSNR-L).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11  # 11x11 gaussian window, as in Wang et al. (and skimage's gaussian_weights)
SSIM_K1 = 0.01
SSIM_K2 = 0.03
MU_LAW_MU = 5000.0
# Pixels darker than this (relative to the clip's maximum) are too noisy / quantised to
# say anything about the scale between prediction and ground truth.
ALIGN_FLOOR = 1e-4


def _as_float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _check_shapes(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"shape mismatch: pred {pred.shape} vs gt {gt.shape}")


def mse(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean squared error over all elements."""
    _check_shapes(pred, gt)
    return float(np.mean((_as_float(pred) - _as_float(gt)) ** 2))


def psnr(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all elements; ``inf`` for identical inputs."""
    err = mse(pred, gt)
    if err == 0.0:
        return math.inf
    return float(10.0 * math.log10(data_range**2 / err))


def _ssim_plane(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Mean SSIM of one 2-D plane with a gaussian window (Wang et al. 2004)."""
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    ssim_map = num / den
    # Like Wang et al. (and skimage), ignore the border where the window hangs off the image.
    pad = SSIM_WINDOW // 2
    if min(x.shape) > 2 * pad:
        ssim_map = ssim_map[pad:-pad, pad:-pad]
    return float(np.mean(ssim_map))


def ssim(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity, averaged over channels (and frames).

    Accepts ``[H, W]``, ``[H, W, C]`` or ``[N, H, W, C]``.
    """
    _check_shapes(pred, gt)
    p, g = _as_float(pred), _as_float(gt)
    if p.ndim == 2:
        return _ssim_plane(p, g, data_range)
    if p.ndim == 3:
        return float(np.mean([_ssim_plane(p[..., c], g[..., c], data_range) for c in range(p.shape[-1])]))
    if p.ndim == 4:
        return float(np.mean([ssim(p[i], g[i], data_range) for i in range(p.shape[0])]))
    raise ValueError(f"ssim expects [H,W], [H,W,C] or [N,H,W,C], got shape {p.shape}")


def align_scale(pred: np.ndarray, gt: np.ndarray, floor: float = ALIGN_FLOOR) -> float:
    """The global scale ``a`` so that ``a * pred`` best matches ``gt`` in log space.

    Robust estimate: ``exp(median(log gt - log pred))`` over pixels where both exceed
    ``floor`` times their own maximum.
    """
    _check_shapes(pred, gt)
    p, g = _as_float(pred), _as_float(gt)
    valid = (p > floor * max(p.max(), 0.0)) & (g > floor * max(g.max(), 0.0)) & (p > 0) & (g > 0)
    if not np.any(valid):
        return 1.0
    return float(np.exp(np.median(np.log(g[valid]) - np.log(p[valid]))))


def _normalise_hdr(pred: np.ndarray, gt: np.ndarray, align: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scale-align pred to gt, divide both by gt's maximum and clip to [0, 1]."""
    _check_shapes(pred, gt)
    p, g = _as_float(pred), _as_float(gt)
    if align:
        p = p * align_scale(p, g)
    peak = g.max()
    if peak <= 0:
        raise ValueError("ground truth has no positive values")
    return np.clip(p / peak, 0.0, 1.0), np.clip(g / peak, 0.0, 1.0)


def mu_law(x: np.ndarray, mu: float = MU_LAW_MU) -> np.ndarray:
    """The mu-law tone curve ``log(1 + mu x) / log(1 + mu)`` for x in [0, 1]."""
    return np.log1p(mu * x) / math.log1p(mu)


def psnr_mu(pred: np.ndarray, gt: np.ndarray, mu: float = MU_LAW_MU, align: bool = True) -> float:
    """PSNR after mu-law tone mapping of the (aligned, normalised) linear HDR images."""
    p, g = _normalise_hdr(pred, gt, align)
    return psnr(mu_law(p, mu), mu_law(g, mu))


def psnr_l(pred: np.ndarray, gt: np.ndarray, align: bool = True) -> float:
    """PSNR of the (aligned, normalised) linear HDR images."""
    p, g = _normalise_hdr(pred, gt, align)
    return psnr(p, g)
