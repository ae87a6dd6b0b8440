"""What the optical flow says about motion, to initialise the scene model.

* ``dominant_motion``: each frame's camera motion as a homography (RANSAC on valid flow) and
  every pixel's departure from it;
* ``region_motion``: the similarity moving a region (the foreground) from frame to frame;
* ``foreground_from_motion``: a soft mask of pixels moving unlike the camera, which
  initialises the foreground layer's alpha; ``load_masks``: the user's masks instead;
* ``initial_motions``: each layer's motion chained into the middle frame, the mappings' start.

Coordinates are flow-resolution pixels with centres at +0.5 (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vidcam.config import Config, MotionConfig
from vidcam.errors import VidcamError
from vidcam.flow.types import FlowPair
from vidcam.io.images import read_png
from vidcam.io.video import Clip
from vidcam.log import log

DEFAULTS = MotionConfig()



def dominant_motion(pair: FlowPair, cfg: MotionConfig = DEFAULTS) -> tuple[np.ndarray, np.ndarray]:
    """Per forward flow t: the homography of the camera motion and each pixel's departure from it.

    Returns H float64 [N-k, 3, 3] mapping frame t pixel coordinates (centres at +0.5) to frame
    t+k, fitted by RANSAC on valid flow, and a float32 [N-k, H, W] score: the distance in
    pixels between the flow and the homography's prediction (at every pixel, valid or not).
    """
    count, height, width = pair.forward.shape[:3]
    points = _pixel_centres(height, width)
    homographies = np.zeros((count, 3, 3))
    scores = np.zeros((count, height, width), np.float32)
    for t in range(count):
        homographies[t] = _fit_homography(points, pair.forward[t], pair.valid_forward[t], cfg)
        predicted = _apply_homography(homographies[t], points) - points
        scores[t] = np.linalg.norm(pair.forward[t] - predicted, axis=-1)
    return homographies, scores


def region_motion(pair: FlowPair, regions: np.ndarray, cfg: MotionConfig = DEFAULTS) -> np.ndarray:
    """Per forward flow t: the similarity (as a 3x3 matrix) moving the pixels of ``regions[t]``.

    ``regions`` is bool [N, H, W] (e.g. the foreground mask). Fitted by RANSAC on the valid flow
    inside the region; the identity where the region has too few pixels.
    """
    count, height, width = pair.forward.shape[:3]
    points = _pixel_centres(height, width)
    motions = np.tile(np.eye(3), (count, 1, 1))
    for t in range(count):
        inside = regions[t] & pair.valid_forward[t]
        if inside.sum() < cfg.min_homography_samples:
            continue
        stride = max(1, int(inside.sum()) // cfg.ransac_max_samples)
        src = np.ascontiguousarray(points[inside][::stride])  # OpenCV rejects strided views
        dst = src + pair.forward[t][inside][::stride]
        affine, _ = cv2.estimateAffinePartial2D(src, dst, None, cv2.RANSAC, cfg.ransac_px)
        if affine is not None:
            motions[t, :2] = affine
    return motions


def _pixel_centres(height: int, width: int) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32) + 0.5, np.arange(height, dtype=np.float32) + 0.5)
    return np.stack([xs, ys], axis=-1)


def _apply_homography(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    flat = points.reshape(-1, 1, 2).astype(np.float64)
    return cv2.perspectiveTransform(flat, homography).reshape(points.shape).astype(np.float32)


def _fit_homography(points: np.ndarray, flow: np.ndarray, valid: np.ndarray, cfg: MotionConfig) -> np.ndarray:
    """RANSAC homography on (evenly strided) valid samples; median translation if that fails."""
    mask = valid if valid.sum() >= cfg.min_homography_samples else np.ones_like(valid)
    stride = max(1, int(mask.sum()) // cfg.ransac_max_samples)
    src = np.ascontiguousarray(points[mask][::stride])  # OpenCV rejects strided views
    dst = src + flow[mask][::stride]
    homography, _ = cv2.findHomography(src, dst, cv2.RANSAC, cfg.ransac_px)
    if homography is None:
        homography = np.eye(3)
        homography[:2, 2] = np.median(flow[mask], axis=0)
    return homography


# --------------------------------------------------------------------------- foreground


def foreground_from_motion(flows: dict[int, FlowPair], cfg: MotionConfig = DEFAULTS) -> np.ndarray:
    """float32 [N,H,W] in [0,1]: soft mask of pixels moving unlike the dominant (camera) motion.

    Each flow direction scores every source frame by its residual from the frame's homography,
    relative to max(foreground_threshold_px, foreground_relative * median flow magnitude); scores are
    averaged over the consistent measurements of all gaps and directions (all measurements
    where none is consistent), ramped to [0, 1], then cleaned morphologically and smoothed.
    """
    pairs = [pair for pair in flows.values() if len(pair.forward)]
    if not pairs:
        raise VidcamError("foreground_from_motion needs at least one frame pair")
    count = max(len(pair.forward) + pair.gap for pair in pairs)
    height, width = pairs[0].forward.shape[1:3]
    sums = np.zeros((2, count, height, width), np.float32)  # [valid-weighted, all]
    weights = np.zeros((2, count, height, width), np.float32)
    for pair in pairs:
        n = len(pair.forward)
        for direction, frames in ((pair, range(n)), (pair.reversed(), range(pair.gap, pair.gap + n))):
            relative = _relative_residual(direction, cfg)
            index = np.asarray(frames, int)
            sums[0, index] += relative * direction.valid_forward
            weights[0, index] += direction.valid_forward
            sums[1, index] += relative
            weights[1, index] += 1
    residual = np.where(weights[0] > 0, sums[0] / np.maximum(weights[0], 1), sums[1] / np.maximum(weights[1], 1))
    softness = cfg.foreground_softness
    soft = np.clip((residual - (1 - softness)) / (2 * softness), 0, 1)
    return np.stack([_clean_mask(m, cfg.cleanup_fraction) for m in soft]).astype(np.float32)


def _relative_residual(pair: FlowPair, cfg: MotionConfig) -> np.ndarray:
    """Residual from the dominant motion divided by each frame's threshold (1 = at threshold)."""
    _, scores = dominant_motion(pair, cfg)
    magnitude = np.linalg.norm(pair.forward, axis=-1).reshape(len(scores), -1)
    thresholds = np.maximum(cfg.foreground_threshold_px, cfg.foreground_relative * np.median(magnitude, axis=1))
    return scores / thresholds[:, None, None].astype(np.float32)


def _clean_mask(mask: np.ndarray, cleanup_fraction: float) -> np.ndarray:
    """Open (drop specks), close (fill holes), blur (soft edge); sizes scale with the frame."""
    size = max(3, int(round(cleanup_fraction * min(mask.shape))) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    return np.clip(cv2.GaussianBlur(mask, (size, size), 0), 0, 1)


def load_masks(folder: Path, clip: Clip) -> np.ndarray:
    """User foreground masks (PNG/JPG, one per source frame, sorted by name) as float [N,H,W]."""
    if not folder.is_dir():
        raise VidcamError(f"mask folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(files) <= int(clip.frame_indices.max()):
        raise VidcamError(f"{folder} holds {len(files)} masks; the clip needs one per source frame")
    masks = []
    for index in clip.frame_indices:
        mask = read_png(files[index])
        peak = float(np.iinfo(mask.dtype).max) if mask.dtype.kind in "ui" else 1.0
        mask = (mask.max(-1) if mask.ndim == 3 else mask).astype(np.float32) / peak
        masks.append(cv2.resize(mask, (clip.width, clip.height), interpolation=cv2.INTER_AREA))
    return np.clip(np.stack(masks), 0, 1)


# --------------------------------------------------------------------------- the mappings' start


def chain_to_reference(pair_homographies: np.ndarray, reference: int) -> np.ndarray:
    """Per-frame homographies [N,3,3] into frame ``reference`` from pairwise ones (t -> t+1, [N-1,3,3])."""
    n = pair_homographies.shape[0] + 1
    chained = np.tile(np.eye(3), (n, 1, 1))
    for t in range(reference - 1, -1, -1):  # t -> t+1 -> ... -> reference
        chained[t] = chained[t + 1] @ pair_homographies[t]
    for t in range(reference + 1, n):  # t -> t-1 -> ... -> reference
        chained[t] = chained[t - 1] @ np.linalg.inv(pair_homographies[t - 1])
    return chained / chained[:, 2:3, 2:3]


def initial_motions(cfg: Config, flows: dict[int, FlowPair], foreground: np.ndarray | None) -> list[np.ndarray] | None:
    """Each layer's motion into the middle frame, chained from gap-1 flow: the camera's
    (dominant homography) for the background, the foreground region's for layer 1.

    Where the chained camera homographies stop being usable maps of one plane (a pan too wide
    for one plane, or RANSAC's small perspective errors compounding over the clip), their
    perspective is damped (``chain_camera``): on a real panning clip (bikes.mp4) the chain's
    projective depth crossed zero at a corner of 18 of 48 frames, sending atlas coordinates off
    to +-2500 and leaving those frames unexplained."""
    if not cfg.scene.global_motion or 1 not in flows:
        return None
    camera, _ = dominant_motion(flows[1], cfg.motion)
    reference = (camera.shape[0] + 1) // 2
    height, width = flows[1].forward.shape[1:3]
    motions = [chain_camera(camera, reference, (height, width), cfg.motion.max_perspective_spread)]
    if foreground is not None and cfg.scene.layers > 1:
        motions.append(chain_to_reference(region_motion(flows[1], foreground > 0.5, cfg.motion), reference))
    return motions


def chain_camera(pair_homographies: np.ndarray, reference: int, size: tuple[int, int], max_spread: float) -> np.ndarray:
    """``chain_to_reference`` of the camera's pairwise homographies, their perspective damped
    towards their affine part at the frame centre just enough that the chain's
    ``perspective_spread`` over frames of ``size`` (h, w) stays within ``max_spread``."""
    height, width = size
    chained = chain_to_reference(pair_homographies, reference)
    spread = perspective_spread(chained, height, width)
    if spread <= max_spread:
        return chained
    centre = np.array([width / 2, height / 2])
    affine = np.stack([affine_at(h, centre) for h in pair_homographies])
    normalised = pair_homographies / pair_homographies[:, 2:3, 2:3]

    def damped(share: float) -> np.ndarray:
        return chain_to_reference(affine + share * (normalised - affine), reference)

    lo, hi = 0.0, 1.0  # the perspective share kept: lo is within the bound, hi is not
    for _ in range(12):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if perspective_spread(damped(mid), height, width) <= max_spread else (lo, mid)
    log(
        f"motion: the camera's chained homographies are not one plane's (corner depth ratio {spread:.3g} >"
        f" {max_spread:g}); the background keeps {lo:.0%} of their perspective"
    )
    return damped(lo)


def perspective_spread(homographies: np.ndarray, height: int, width: int) -> float:
    """Largest ratio, over frames, of the projective depth ``w`` at one frame corner to another's
    (``inf`` where ``w`` reaches zero or changes sign: a corner mapped to infinity or behind the
    plane). 1 for affine motion."""
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], np.float64)
    w = np.einsum("nij,kj->nki", homographies, corners)[..., 2]  # [N, 4]
    lo, hi = np.abs(w).min(axis=1), np.abs(w).max(axis=1)
    if np.any(np.sign(w) != np.sign(w[:, :1])) or np.any(lo <= 1e-9):
        return float("inf")
    return float((hi / lo).max())


def affine_at(homography: np.ndarray, point: np.ndarray) -> np.ndarray:
    """The affine map (3x3) agreeing with ``homography`` to first order at ``point`` (x, y)."""
    x = np.array([point[0], point[1], 1.0])
    p = homography @ x
    mapped = p[:2] / p[2]
    jacobian = (homography[:2, :2] - np.outer(mapped, homography[2, :2])) / p[2]
    affine = np.eye(3)
    affine[:2, :2] = jacobian
    affine[:2, 2] = mapped - jacobian @ x[:2]
    return affine
