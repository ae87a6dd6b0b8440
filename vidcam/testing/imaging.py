"""Building blocks of clips with ground truth: photos and textures, camera poses and the warps
they make, a film-like camera response, sensor noise and 8-bit quantisation.

Used by :mod:`vidcam.testing.synthetic` (synthetic scenes) and :mod:`vidcam.testing.real_footage`
(real frames).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# --------------------------------------------------------------------------- textures


def _photo_loaders() -> dict[str, Callable[[], np.ndarray]]:
    # Only photos that ship inside the scikit-image wheel (others need a download).
    from skimage import data

    return {
        "astronaut": data.astronaut,
        "chelsea": data.chelsea,
        "coffee": data.coffee,
        "rocket": data.rocket,
        "hubble": data.hubble_deep_field,
    }


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB decoding (IEC 61966-2-1) of values in [0, 1]."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def load_photo_linear(name: str) -> np.ndarray:
    """A bundled photo as linear float32 RGB in [0, 1]."""
    loaders = _photo_loaders()
    if name not in loaders:
        raise ValueError(f"unknown photo {name!r}; choose from {sorted(loaders)}")
    img = loaders[name]()[..., :3].astype(np.float32) / 255.0
    return srgb_to_linear(img).astype(np.float32)


def cover_resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to cover ``height x width`` keeping the aspect ratio, then centre-crop."""
    scale = max(height / img.shape[0], width / img.shape[1])
    new_h, new_w = max(height, round(img.shape[0] * scale)), max(width, round(img.shape[1] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(img, (new_w, new_h), interpolation=interp)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.clip(resized[top : top + height, left : left + width], 0.0, None)


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int = 4) -> np.ndarray:
    """A low-frequency random field with roughly unit standard deviation."""
    coarse = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


PROCEDURAL_BARS = 16


def procedural_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A sharp, high-contrast linear RGB texture: checkerboard, stripes and random bars."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cell = max(2, height // 8)
    checker = ((xx // cell + yy // cell) % 2).astype(np.float32)
    stripes = (np.sin((xx + 0.5 * yy) * 2 * math.pi / cell) > 0).astype(np.float32)
    pattern = np.where(yy < height / 2, stripes, checker)
    tint = rng.uniform(0.3, 1.0, 3).astype(np.float32)
    tex = (0.03 + 0.6 * pattern[..., None]) * tint
    # Dark "text-like" bars: small sharp features in every direction.
    for _ in range(PROCEDURAL_BARS):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(1, max(2, width // 5)), rng.integers(1, max(2, height // 12))
        if rng.random() < 0.5:
            w, h = h, w
        tex[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0.01, 0.5, 3)
    return tex


def rounded_box_alpha(
    xx: np.ndarray, yy: np.ndarray, centre: tuple[float, float], half: float, corner: float, angle: float
) -> np.ndarray:
    """Anti-aliased coverage of a rotated rounded square (signed-distance based, 1 px ramp)."""
    dx, dy = xx - centre[0], yy - centre[1]
    c, s = math.cos(angle), math.sin(angle)
    u, v = np.abs(c * dx + s * dy), np.abs(-s * dx + c * dy)
    qu, qv = u - (half - corner), v - (half - corner)
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    dist = outside + np.minimum(np.maximum(qu, qv), 0) - corner
    return np.clip(0.5 - dist, 0.0, 1.0).astype(np.float32)


def soft_box_mask(
    xx: np.ndarray, yy: np.ndarray, centre: tuple[float, float], half: tuple[float, float], feather: float
) -> np.ndarray:
    """A box mask with a smooth edge ``feather`` pixels wide (for illumination regions)."""
    du = np.abs(xx - centre[0]) - half[0]
    dv = np.abs(yy - centre[1]) - half[1]
    dist = np.maximum(du, dv)
    return (1.0 / (1.0 + np.exp(np.clip(dist / max(feather, 1e-3), -50, 50)))).astype(np.float32)


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x + 0.5, y + 0.5) as float32 arrays."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return xx + 0.5, yy + 0.5


# --------------------------------------------------------------------------- camera paths


def smooth_path(rng: np.random.Generator, n: int, cycles: tuple[float, float], terms: int = 2) -> np.ndarray:
    """A smooth random 1-D path over ``n`` frames with maximum magnitude 1."""
    t = np.arange(n, dtype=np.float64) / max(n - 1, 1)
    path = np.zeros(n)
    for _ in range(terms):
        freq = rng.uniform(*cycles)
        path += rng.uniform(0.5, 1.0) * np.sin(2 * math.pi * freq * t + rng.uniform(0, 2 * math.pi))
    peak = np.max(np.abs(path))
    return path / peak if peak > 0 else path


@dataclass(frozen=True)
class CameraPose:
    """Where the frame looks on the canvas: centre offset from the canvas centre (pixels),
    zoom (canvas pixels per frame pixel) and roll (radians)."""

    dx: float
    dy: float
    zoom: float = 1.0
    roll: float = 0.0


CANVAS_PAD_PX = 3  # spare canvas beyond the furthest corner any view reaches


def canvas_shape(frame_hw: tuple[int, int], poses: list[CameraPose], scale: float) -> tuple[int, int]:
    """Canvas size: ``scale`` x the frame, grown if needed so every view stays inside."""
    reach = np.zeros(2)
    for pose in poses:
        matrix = view_matrix(frame_hw, (0, 0), pose)  # canvas centre at the origin
        fh, fw = frame_hw
        corners = np.array([[0, 0, 1], [fw, 0, 1], [0, fh, 1], [fw, fh, 1]], dtype=np.float64) @ matrix.T
        reach = np.maximum(reach, np.abs(corners).max(axis=0))
    needed = 2 * (np.ceil(reach) + CANVAS_PAD_PX)
    return max(round(frame_hw[0] * scale), int(needed[1])), max(round(frame_hw[1] * scale), int(needed[0]))


def view_matrix(frame_hw: tuple[int, int], canvas_hw: tuple[int, int], pose: CameraPose) -> np.ndarray:
    return frame_to_canvas_matrix(frame_hw, canvas_hw, (pose.dx, pose.dy), pose.zoom, pose.roll)


def frame_to_canvas_matrix(
    frame_hw: tuple[int, int], canvas_hw: tuple[int, int], offset: tuple[float, float], zoom: float, angle: float
) -> np.ndarray:
    """The 2x3 affine taking frame pixel coordinates to canvas coordinates.

    Frame centre lands on canvas centre + offset; the view is scaled by ``zoom`` and rolled
    by ``angle`` (radians). Use with ``cv2.WARP_INVERSE_MAP``.
    """
    fh, fw = frame_hw
    ch, cw = canvas_hw
    c, s = math.cos(angle) * zoom, math.sin(angle) * zoom
    rot = np.array([[c, -s], [s, c]])
    frame_centre = np.array([fw / 2, fh / 2])
    target = np.array([cw / 2 + offset[0], ch / 2 + offset[1]])
    # The affine acts on integer pixel indices whose centres sit at index + 0.5.
    shift = target - 0.5 + rot @ (np.array([0.5, 0.5]) - frame_centre)
    return np.hstack([rot, shift[:, None]]).astype(np.float64)


def _check_inside(matrix: np.ndarray, frame_hw: tuple[int, int], canvas_hw: tuple[int, int]) -> None:
    fh, fw = frame_hw
    corners = np.array([[0, 0, 1], [fw, 0, 1], [0, fh, 1], [fw, fh, 1]], dtype=np.float64)
    mapped = corners @ matrix.T
    if mapped.min() < 1 or np.any(mapped[:, 0] > canvas_hw[1] - 1) or np.any(mapped[:, 1] > canvas_hw[0] - 1):
        raise ValueError("camera path leaves the background canvas; raise canvas_scale or lower the motion")


def warp_view(canvas: np.ndarray, matrix: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Sample the frame's view of the canvas (bilinear, sub-pixel accurate)."""
    _check_inside(matrix, frame_hw, canvas.shape[:2])
    return cv2.warpAffine(
        canvas,
        matrix,
        (frame_hw[1], frame_hw[0]),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )


# --------------------------------------------------------------------------- camera response


def hill_crf(x: np.ndarray, n: tuple[float, ...], k: tuple[float, ...]) -> np.ndarray:
    """Film-like response ``(1 + k^n) x^n / (x^n + k^n)`` per channel: S-shaped in log exposure,
    monotone, 0 -> 0 and 1 -> 1. ``x`` is ``[..., 3]`` in [0, 1]."""
    n_arr, k_arr = np.asarray(n, np.float64), np.asarray(k, np.float64)
    xn = np.power(np.clip(x, 0.0, 1.0), n_arr)
    kn = np.power(k_arr, n_arr)
    return (1.0 + kn) * xn / (xn + kn)


def hill_crf_inverse(y: np.ndarray, n: tuple[float, ...], k: tuple[float, ...]) -> np.ndarray:
    """Inverse of ``hill_crf`` for ``y`` in [0, 1]."""
    n_arr, k_arr = np.asarray(n, np.float64), np.asarray(k, np.float64)
    kn = np.power(k_arr, n_arr)
    y = np.clip(y, 0.0, 1.0)
    return k_arr * np.power(y / np.maximum(1.0 + kn - y, 1e-12), 1.0 / n_arr)


def add_sensor_noise(
    rng: np.random.Generator, linear: np.ndarray, shot: float, read: float
) -> np.ndarray:
    """Shot (signal-dependent gaussian approximation of Poisson) plus read noise, then clip to [0, 1]."""
    sigma = np.sqrt(shot * np.maximum(linear, 0.0) + read**2)
    return np.clip(linear + sigma * rng.standard_normal(linear.shape), 0.0, 1.0)


def quantise_8bit(y: np.ndarray) -> np.ndarray:
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)
