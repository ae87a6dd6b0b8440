"""Deterministic synthetic clips with ground truth, for tests, demos and benchmarks.

Two generators, both pure functions of a settings dataclass (seed included):

* ``make_hdr_clip``: a camera pans over a linear HDR scene (bright windows, deep shadows,
  small light sources) while a textured sprite moves on its own path; frames alternate
  short / long exposures and go through a noisy, clipped, non-gamma (film-like S-shaped)
  camera response quantised to 8 bits. Ground truth: the linear scene irradiance.
* ``make_blur_clip``: a hand-held camera (smooth drift + shake) over a textured scene with
  a small moving object; each frame averages sub-frames along the path in linear light,
  with a blur length that varies per frame. Ground truth: the middle sub-frame.

``write_clip`` writes the recorded frames as an H.264 MP4 plus a JSON with every setting,
so ``regenerate(json_path)`` rebuilds the ground truth without shipping it.

CLI: ``python tools/make_synthetic.py hdr|blur OUT.mp4 --seed S --frames N --width W --height H``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidcam.io.atomic import atomic_path, atomic_write_text
from vidcam.testing.imaging import (
    CameraPose,
    add_sensor_noise,
    canvas_shape,
    cover_resize,
    hill_crf,
    load_photo_linear,
    pixel_grid,
    procedural_texture,
    quantise_8bit,
    rounded_box_alpha,
    smooth_noise,
    smooth_path,
    soft_box_mask,
    view_matrix,
    warp_view,
)

JSON_VERSION = 1
POSTER_ASPECT = 1.5  # width / height of the blur scene's textured poster


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class HdrSettings:
    seed: int = 0
    n_frames: int = 24
    height: int = 144
    width: int = 256
    fps: int = 24
    exposure_ratio: float = 4.0
    pattern: tuple[float, ...] | None = None  # cyclic exposure times; None -> (1, exposure_ratio)
    background: str = "coffee"
    sprite: str = "chelsea"
    canvas_scale: float = 1.5  # background panorama size relative to the frame
    # Camera motion (maxima over the clip).
    pan_x_frac: float = 0.12  # of the frame width
    pan_y_frac: float = 0.06  # of the frame height
    zoom: float = 0.03
    rotation_deg: float = 2.0
    path_cycles: tuple[float, float] = (0.3, 0.9)  # range of sinusoid frequencies, cycles per clip
    # Illumination of the background (multipliers of the normally lit reflectance).
    illum_variation_stops: float = 0.5
    n_windows: int = 2
    window_size_frac: tuple[float, float] = (0.1, 0.18)  # of the canvas' longer side
    window_gain: tuple[float, float] = (20.0, 50.0)
    window_sky_level: float = 0.35  # sky radiance = window_gain x this x the scene median
    window_tint: tuple[float, float, float] = (0.85, 0.95, 1.15)
    window_bar_frac: float = 0.06  # mullion width, of the window side
    window_frame_reflectance: float = 0.05
    window_cloud_contrast: float = 0.4
    n_shadows: int = 2
    shadow_size_frac: tuple[float, float] = (0.2, 0.35)
    shadow_gain: float = 0.03
    shadow_feather_frac: float = 0.06
    n_lights: int = 3
    light_gain: tuple[float, float] = (300.0, 1500.0)  # relative to the scene median
    light_sigma_px: tuple[float, float] = (1.0, 2.0)
    light_tint: tuple[float, float, float] = (1.0, 0.85, 0.6)
    reflectance_floor: float = 0.002
    # Foreground sprite.
    sprite_size_frac: float = 0.38  # side of the rounded square, of the frame height
    sprite_corner_frac: float = 0.35  # corner radius, of the half side
    sprite_gain: float = 0.8
    sprite_travel_frac: float = 0.5  # of the frame width, over the clip
    sprite_bob_frac: float = 0.12  # of the frame height
    sprite_spin_deg: float = 25.0
    # Exposure and sensor.
    mid_grey_long: float = 0.11  # linear value of the scene median in the longest exposure
    shot_noise: float = 4e-4  # variance per unit of linear signal
    read_noise: float = 2.5e-3  # standard deviation
    # Camera response: Hill curve y = (1 + k^n) x^n / (x^n + k^n), per channel (R, G, B).
    crf_n: tuple[float, float, float] = (1.12, 1.08, 1.04)
    crf_k: tuple[float, float, float] = (0.19, 0.21, 0.23)


@dataclass(frozen=True)
class BlurSettings:
    seed: int = 0
    n_frames: int = 24
    height: int = 144
    width: int = 256
    fps: int = 24
    subframes: int = 9  # odd, so the middle sub-frame is the ground truth instant
    max_blur_px: float = 7.0
    sharp_fraction: float = 0.3  # share of frames that are nearly sharp
    sharp_blur_px: float = 0.5  # blur length bound of those frames
    min_blur_frac: float = 0.4  # other frames blur by [min_blur_frac, 1] * max_blur_px
    curve_frac: float = 0.3  # bend of the shake path within an exposure, of its length
    background: str = "astronaut"
    object_texture: str = "coffee"
    canvas_scale: float = 1.4
    poster_size_frac: float = 0.3  # procedural texture panel, of the canvas height
    drift_frac: float = 0.1  # smooth hand drift, of the frame width
    jitter_px: float = 0.8  # per-frame shake of the sharp position
    rotation_deg: float = 1.0  # smooth drift of the roll angle
    blur_rotation_deg: float = 0.4  # roll sweep during the most blurred exposure
    path_cycles: tuple[float, float] = (0.3, 1.2)
    illum_variation_stops: float = 0.4
    object_radius_frac: float = 0.12  # of the frame height
    object_speed_px: float = 2.0  # per frame
    exposure_level: float = 0.9  # scene maximum-ish (99th percentile) maps to this linear value
    shot_noise: float = 1e-4
    read_noise: float = 1.5e-3
    gamma: float = 2.2


SETTINGS_TYPES: dict[str, type] = {"hdr": HdrSettings, "blur": BlurSettings}


# --------------------------------------------------------------------------- HDR clip


def exposure_times(settings: HdrSettings) -> np.ndarray:
    """Per-frame exposure times (relative units: the pattern's values, short = 1 by default)."""
    pattern = settings.pattern if settings.pattern is not None else (1.0, settings.exposure_ratio)
    return np.array([pattern[i % len(pattern)] for i in range(settings.n_frames)], dtype=np.float64)


def _illumination(rng: np.random.Generator, s: HdrSettings, canvas_hw: tuple[int, int]) -> np.ndarray:
    """Multiplicative illumination map [H, W, 1] (normal light = 1) with deep shadows."""
    ch, cw = canvas_hw
    xx, yy = pixel_grid(ch, cw)
    log_illum = s.illum_variation_stops * math.log(2) * smooth_noise(rng, ch, cw)
    for _ in range(s.n_shadows):
        size = rng.uniform(*s.shadow_size_frac) * max(ch, cw)
        centre = (rng.uniform(0, cw), rng.uniform(0, ch))
        mask = soft_box_mask(xx, yy, centre, (size / 2, size / 3), s.shadow_feather_frac * max(ch, cw))
        log_illum = log_illum + math.log(s.shadow_gain) * mask
    return np.exp(np.maximum(log_illum, math.log(s.shadow_gain)))[..., None]


def _add_windows(rng: np.random.Generator, s: HdrSettings, scene: np.ndarray, reference: float) -> np.ndarray:
    """Paste bright 'windows' onto the scene: a sky-like, low-contrast texture, bright relative
    to ``reference`` (the scene median)."""
    ch, cw = scene.shape[:2]
    xx, yy = pixel_grid(ch, cw)
    out = scene.copy()
    slot = cw / max(s.n_windows, 1)  # one window per vertical strip, so they never overlap
    for i in range(s.n_windows):
        half = min(rng.uniform(*s.window_size_frac) * max(ch, cw), slot, ch) / 2
        centre = (rng.uniform(i * slot + half, (i + 1) * slot - half), rng.uniform(half, ch - half))
        bar = s.window_bar_frac * half
        pane = rounded_box_alpha(xx, yy, centre, half, 0.0, 0.0)
        mullions = np.maximum(
            np.clip(bar - np.abs(xx - centre[0]) + 0.5, 0, 1), np.clip(bar - np.abs(yy - centre[1]) + 0.5, 0, 1)
        )
        clouds = np.exp(s.window_cloud_contrast * smooth_noise(rng, ch, cw, cells=8))[..., None]
        sky = rng.uniform(*s.window_gain) * s.window_sky_level * reference * clouds * np.asarray(s.window_tint, np.float32)
        window = mullions[..., None] * s.window_frame_reflectance + (1 - mullions[..., None]) * sky
        out = pane[..., None] * window + (1 - pane[..., None]) * out
    return out


def _add_lights(rng: np.random.Generator, s: HdrSettings, scene: np.ndarray, reference: float) -> np.ndarray:
    """Small, very bright light sources (gaussian blobs), ``light_gain`` x ``reference``."""
    ch, cw = scene.shape[:2]
    xx, yy = pixel_grid(ch, cw)
    out = scene.copy()
    for _ in range(s.n_lights):
        sigma = rng.uniform(*s.light_sigma_px)
        cx, cy = rng.uniform(0.2 * cw, 0.8 * cw), rng.uniform(0.2 * ch, 0.8 * ch)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))[..., None]
        out = out + rng.uniform(*s.light_gain) * reference * blob * np.asarray(s.light_tint, np.float32)
    return out


def build_hdr_canvas(rng: np.random.Generator, s: HdrSettings, canvas_hw: tuple[int, int]) -> np.ndarray:
    """Linear HDR background panorama (unnormalised; normal light ~ reflectance)."""
    reflectance = np.maximum(cover_resize(load_photo_linear(s.background), *canvas_hw), s.reflectance_floor)
    scene = reflectance * _illumination(rng, s, canvas_hw)
    reference = float(np.median(scene))
    scene = _add_windows(rng, s, scene, reference)
    return _add_lights(rng, s, scene, reference)


def _sprite_texture(s: HdrSettings, side: int) -> np.ndarray:
    tex = load_photo_linear(s.sprite)
    return np.maximum(cover_resize(tex, side, side), s.reflectance_floor) * s.sprite_gain


def _sprite_poses(rng: np.random.Generator, s: HdrSettings) -> list[tuple[float, float, float]]:
    """(cx, cy, angle) per frame, in frame pixels; independent of the camera."""
    t = np.arange(s.n_frames) / max(s.n_frames - 1, 1)
    direction = rng.choice([-1.0, 1.0])
    cx = s.width / 2 + direction * s.sprite_travel_frac * s.width * (t - 0.5)
    cy = s.height / 2 + s.sprite_bob_frac * s.height * smooth_path(rng, s.n_frames, (0.5, 1.0))
    angle = math.radians(s.sprite_spin_deg) * smooth_path(rng, s.n_frames, (0.3, 0.8))
    return list(zip(cx.tolist(), cy.tolist(), angle.tolist()))


def composite_sprite(
    background: np.ndarray, texture: np.ndarray, pose: tuple[float, float, float], half: float, corner: float
) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-composite a rotated textured rounded square in linear light; returns (image, alpha)."""
    h, w = background.shape[:2]
    cx, cy, angle = pose
    xx, yy = pixel_grid(h, w)
    alpha = rounded_box_alpha(xx, yy, (cx, cy), half, corner, angle)[..., None]
    tex_centre = np.array([texture.shape[1] / 2, texture.shape[0] / 2])
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, s], [-s, c]])  # frame offsets -> texture offsets (inverse rotation)
    shift = tex_centre - rot @ np.array([cx, cy])
    matrix = np.hstack([rot, shift[:, None]])
    # Pixel centres: the affine acts on integer indices, so shift by half a pixel either side.
    matrix[:, 2] += rot @ np.array([0.5, 0.5]) - 0.5
    sprite = cv2.warpAffine(texture, matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REFLECT)
    return alpha * sprite + (1 - alpha) * background, alpha[..., 0]


def _camera_poses(rng: np.random.Generator, s: HdrSettings) -> list[CameraPose]:
    """A smooth pan with slight zoom and roll, one pose per frame."""
    n = s.n_frames
    px = s.pan_x_frac * s.width * smooth_path(rng, n, s.path_cycles)
    py = s.pan_y_frac * s.height * smooth_path(rng, n, s.path_cycles)
    zoom = 1.0 + s.zoom * smooth_path(rng, n, s.path_cycles)
    roll = math.radians(s.rotation_deg) * smooth_path(rng, n, s.path_cycles)
    return [CameraPose(px[i], py[i], zoom[i], roll[i]) for i in range(n)]


def render_hdr(s: HdrSettings) -> dict[str, Any]:
    """Render the clip described by ``s`` (see ``make_hdr_clip``)."""
    rng = np.random.default_rng(s.seed)
    poses = _camera_poses(rng, s)
    hw = (s.height, s.width)
    canvas = build_hdr_canvas(rng, s, canvas_shape(hw, poses, s.canvas_scale))
    side = round(s.sprite_size_frac * s.height)
    texture = _sprite_texture(s, side)
    sprite_poses = _sprite_poses(rng, s)
    exposures = exposure_times(s)
    # Normalise so the background median sits at mid_grey_long in the longest exposure.
    scale = s.mid_grey_long / (float(np.median(canvas)) * exposures.max())
    hdr = np.empty((s.n_frames, s.height, s.width, 3), np.float32)
    alphas = np.empty((s.n_frames, s.height, s.width), np.float32)
    for i in range(s.n_frames):
        view = warp_view(canvas, view_matrix(hw, canvas.shape[:2], poses[i]), hw)
        hdr[i], alphas[i] = composite_sprite(view, texture, sprite_poses[i], side / 2, s.sprite_corner_frac * side / 2)
    hdr *= scale
    frames = np.empty(hdr.shape, np.uint8)
    for i in range(s.n_frames):
        exposed = add_sensor_noise(rng, hdr[i].astype(np.float64) * exposures[i], s.shot_noise, s.read_noise)
        frames[i] = quantise_8bit(hill_crf(exposed, s.crf_n, s.crf_k))
    return {
        "kind": "hdr",
        "frames": frames,
        "hdr": hdr,
        "exposures": exposures,
        "alpha": alphas,
        "crf": {"type": "hill", "formula": "(1 + k^n) x^n / (x^n + k^n)", "n": list(s.crf_n), "k": list(s.crf_k)},
        "fps": Fraction(s.fps),
        "settings": s,
    }


def make_hdr_clip(
    seed: int = 0,
    n_frames: int = 24,
    height: int = 144,
    width: int = 256,
    exposure_ratio: float = 4.0,
    pattern: tuple[float, ...] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """An alternating-exposure clip with ground truth.

    Returns a dict: ``frames`` uint8 [N,H,W,3] (recorded), ``hdr`` float32 [N,H,W,3] (linear
    scene irradiance, one scale for all frames), ``exposures`` [N] (relative exposure
    times: recorded = crf(clip(hdr * exposure + noise))), ``alpha`` [N,H,W] (sprite
    coverage), ``crf`` (response parameters), ``fps`` and ``settings`` (``HdrSettings``).
    ``overrides`` are any other ``HdrSettings`` fields.
    """
    settings = HdrSettings(
        seed=seed, n_frames=n_frames, height=height, width=width,
        exposure_ratio=exposure_ratio, pattern=pattern, **overrides,
    )
    return render_hdr(settings)


# --------------------------------------------------------------------------- blur clip


def blur_lengths(rng: np.random.Generator, s: BlurSettings) -> np.ndarray:
    """Per-frame blur length in pixels: a share nearly sharp, the rest clearly blurred."""
    n = s.n_frames
    n_sharp = min(n - 1, max(1, round(s.sharp_fraction * n))) if n > 1 else 0
    lengths = rng.uniform(s.min_blur_frac, 1.0, n) * s.max_blur_px
    sharp_idx = rng.permutation(n)[:n_sharp]
    lengths[sharp_idx] = rng.uniform(0.0, s.sharp_blur_px, n_sharp)
    return lengths


def build_blur_canvas(rng: np.random.Generator, s: BlurSettings, canvas_hw: tuple[int, int]) -> np.ndarray:
    """Linear textured background: a photo under gentle light, plus a procedural poster."""
    ch, cw = canvas_hw
    canvas = cover_resize(load_photo_linear(s.background), ch, cw)
    illum = np.exp(s.illum_variation_stops * math.log(2) * 0.5 * smooth_noise(rng, ch, cw))[..., None]
    canvas = canvas * illum
    ph = min(max(4, round(s.poster_size_frac * ch)), ch - 1)
    pw = min(round(ph * POSTER_ASPECT), cw - 1)
    y0, x0 = rng.integers(0, ch - ph), rng.integers(0, cw - pw)
    canvas[y0 : y0 + ph, x0 : x0 + pw] = procedural_texture(rng, ph, pw)
    return canvas.astype(np.float32)


def _object_texture(s: BlurSettings, side: int) -> np.ndarray:
    return cover_resize(load_photo_linear(s.object_texture), side, side)


def shake_poses(rng: np.random.Generator, s: BlurSettings, lengths: np.ndarray) -> list[list[CameraPose]]:
    """Per frame, per sub-frame camera pose: smooth drift + jitter at the middle
    sub-frame, a (slightly bent) sweep of the frame's blur length around it."""
    n, k = s.n_frames, s.subframes
    drift_x = s.drift_frac * s.width * smooth_path(rng, n, s.path_cycles)
    drift_y = s.drift_frac * s.height * smooth_path(rng, n, s.path_cycles)
    roll = math.radians(s.rotation_deg) * smooth_path(rng, n, s.path_cycles)
    taus = np.linspace(-0.5, 0.5, k)
    out = []
    for i in range(n):
        cx = drift_x[i] + s.jitter_px * rng.standard_normal()
        cy = drift_y[i] + s.jitter_px * rng.standard_normal()
        theta = rng.uniform(0, 2 * math.pi)
        direction = np.array([math.cos(theta), math.sin(theta)])
        normal = np.array([-direction[1], direction[0]])
        bend = s.curve_frac * lengths[i] * rng.choice([-1.0, 1.0])
        sweep = math.radians(s.blur_rotation_deg) * (lengths[i] / s.max_blur_px) * rng.choice([-1.0, 1.0])
        subs = []
        for tau in taus:
            # The bend (4 tau^2) is 0 at the middle sub-frame, so it stays on the sharp position.
            d = lengths[i] * tau * direction + bend * 4 * tau**2 * normal
            subs.append(CameraPose(cx + d[0], cy + d[1], 1.0, roll[i] + sweep * tau))
        out.append(subs)
    return out


def _object_centre(s: BlurSettings, start: tuple[float, float], velocity: tuple[float, float], t: float) -> tuple[float, float]:
    """Object centre at time ``t`` (frames), bouncing inside the frame."""
    def bounce(p0: float, v: float, lo: float, hi: float) -> float:
        span = hi - lo
        q = (p0 - lo + v * t) % (2 * span)
        return lo + (q if q <= span else 2 * span - q)

    r = s.object_radius_frac * s.height
    return bounce(start[0], velocity[0], r, s.width - r), bounce(start[1], velocity[1], r, s.height - r)


def render_blur(s: BlurSettings) -> dict[str, Any]:
    """Render the clip described by ``s`` (see ``make_blur_clip``)."""
    if s.subframes < 1 or s.subframes % 2 == 0:
        raise ValueError("subframes must be a positive odd number")
    rng = np.random.default_rng(s.seed)
    lengths = blur_lengths(rng, s)
    poses = shake_poses(rng, s, lengths)
    hw = (s.height, s.width)
    canvas = build_blur_canvas(rng, s, canvas_shape(hw, [p for subs in poses for p in subs], s.canvas_scale))
    radius = s.object_radius_frac * s.height
    texture = _object_texture(s, max(2, round(2 * radius)))
    start = (rng.uniform(radius, s.width - radius), rng.uniform(radius, s.height - radius))
    heading = rng.uniform(0, 2 * math.pi)
    velocity = (s.object_speed_px * math.cos(heading), s.object_speed_px * math.sin(heading))
    exposure_scale = s.exposure_level / float(np.percentile(canvas, 99))
    mid = s.subframes // 2
    frames = np.empty((s.n_frames, *hw, 3), np.uint8)
    sharp_linear = np.empty((s.n_frames, *hw, 3), np.float32)
    for i in range(s.n_frames):
        # The object's shutter opens for as long as the camera's sweep (blur length / max).
        shutter = max(lengths[i] / s.max_blur_px, 1.0 / s.subframes)
        acc = np.zeros((*hw, 3), np.float64)
        for j, pose in enumerate(poses[i]):
            view = warp_view(canvas, view_matrix(hw, canvas.shape[:2], pose), hw)
            tau = (j / max(s.subframes - 1, 1) - 0.5) * shutter
            centre = _object_centre(s, start, velocity, i + tau)
            sub, _ = composite_sprite(view, texture, (*centre, 0.0), radius, radius)
            sub = sub * exposure_scale
            acc += sub
            if j == mid:
                sharp_linear[i] = np.clip(sub, 0.0, 1.0)
        blurred = add_sensor_noise(rng, acc / s.subframes, s.shot_noise, s.read_noise)
        frames[i] = quantise_8bit(blurred ** (1.0 / s.gamma))
    sharp = quantise_8bit(sharp_linear.astype(np.float64) ** (1.0 / s.gamma))
    return {
        "kind": "blur",
        "frames": frames,
        "sharp": sharp,
        "sharp_linear": sharp_linear,
        "blur_px": lengths,
        "crf": {"type": "gamma", "gamma": s.gamma},
        "fps": Fraction(s.fps),
        "settings": s,
    }


def make_blur_clip(
    seed: int = 0,
    n_frames: int = 24,
    height: int = 144,
    width: int = 256,
    subframes: int = 9,
    max_blur_px: float = 7.0,
    **overrides: Any,
) -> dict[str, Any]:
    """A hand-held, motion-blurred clip with ground truth.

    Returns a dict: ``frames`` uint8 [N,H,W,3] (recorded, blurry), ``sharp`` uint8 (middle
    sub-frame through the same response, noise-free), ``sharp_linear`` float32,
    ``blur_px`` [N] (camera sweep length per frame), ``crf``, ``fps`` and ``settings``
    (``BlurSettings``). ``overrides`` are any other ``BlurSettings`` fields.
    """
    settings = BlurSettings(
        seed=seed, n_frames=n_frames, height=height, width=width,
        subframes=subframes, max_blur_px=max_blur_px, **overrides,
    )
    return render_blur(settings)


# --------------------------------------------------------------------------- files


def render(settings: HdrSettings | BlurSettings) -> dict[str, Any]:
    """Render either kind of clip from its settings."""
    return render_hdr(settings) if isinstance(settings, HdrSettings) else render_blur(settings)


def json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def clip_metadata(result: dict[str, Any], video_crf: int) -> dict[str, Any]:
    """Everything needed to regenerate ``result`` plus what a reader wants to know."""
    meta: dict[str, Any] = {
        "version": JSON_VERSION,
        "kind": result["kind"],
        "seed": result["settings"].seed,
        "fps": str(result["fps"]),
        "n_frames": int(result["frames"].shape[0]),
        "height": int(result["frames"].shape[1]),
        "width": int(result["frames"].shape[2]),
        "settings": dataclasses.asdict(result["settings"]),
        "crf": result["crf"],
        "video_crf": video_crf,
    }
    if result["kind"] == "hdr":
        meta["exposures"] = result["exposures"]
    else:
        meta["blur_px"] = result["blur_px"]
    return meta


def sidecar_paths(out_mp4: str | Path) -> tuple[Path, Path]:
    """(JSON path, ground-truth NPZ path) beside a clip."""
    out = Path(out_mp4)
    return out.with_suffix(".json"), out.with_name(out.stem + "_gt.npz")


DEFAULT_VIDEO_CRF = 14


def write_clip(
    result: dict[str, Any],
    out_mp4: str | Path,
    video_crf: int = DEFAULT_VIDEO_CRF,
    gt: bool = False,
    generator: str | None = None,
    extra_settings: dict[str, Any] | None = None,
) -> None:
    """Write the recorded frames as H.264 MP4, the JSON sidecar, and optionally the ground truth.

    ``generator`` names another generator in the sidecar (its ``regenerate`` rebuilds the truth);
    ``extra_settings`` are stored with the settings (e.g. a resolved source path).
    """
    from vidcam.io.encode import write_sdr_video

    out = Path(out_mp4)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_sdr_video(out, result["frames"], result["fps"], crf=video_crf)
    meta = clip_metadata(result, video_crf)
    if generator is not None:
        meta["generator"] = generator
    meta["settings"].update(extra_settings or {})
    json_path, gt_path = sidecar_paths(out)
    atomic_write_text(json_path, json.dumps(meta, indent=1, default=json_default) + "\n")
    if gt:
        arrays = {"hdr": result["hdr"].astype(np.float16), "exposures": result["exposures"]} if result["kind"] == "hdr" \
            else {"sharp": result["sharp"], "blur_px": result["blur_px"]}
        with atomic_path(gt_path) as tmp:
            np.savez_compressed(tmp, **arrays)


def settings_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """A settings dataclass from a sidecar's settings (unknown keys ignored, lists back to tuples)."""
    known = {f.name for f in dataclasses.fields(cls)}
    # JSON turns tuples into lists; the dataclasses are frozen and hashable with tuples.
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
    return cls(**clean)


def regenerate(json_path: str | Path) -> dict[str, Any]:
    """Re-render a clip (recorded frames and ground truth) from its JSON sidecar."""
    meta = json.loads(Path(json_path).read_text())
    return render(settings_from_dict(SETTINGS_TYPES[meta["kind"]], meta["settings"]))


# --------------------------------------------------------------------------- CLI


def clip_arguments(description: str, kinds: list[str], width: int, height: int) -> argparse.ArgumentParser:
    """The command-line arguments every clip generator shares (tools/make_synthetic.py, tools/make_real_truth.py)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("kind", choices=kinds)
    p.add_argument("out", type=Path, help="output .mp4 (a .json sidecar is written beside it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--width", type=int, default=width)
    p.add_argument("--height", type=int, default=height)
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--ratio", type=float, default=4.0, help="hdr: long / short exposure ratio")
    p.add_argument("--pattern", type=str, default=None, help="hdr: cyclic exposure times, e.g. '1,4,16'")
    p.add_argument("--max-blur", type=float, default=7.0, help="blur: longest camera sweep in pixels")
    p.add_argument("--video-crf", type=int, default=DEFAULT_VIDEO_CRF, help="H.264 quality (lower = better)")
    p.add_argument("--gt", action="store_true", help="also write OUT_gt.npz with the ground truth")
    return p


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = clip_arguments(__doc__.split("\n\n")[0], sorted(SETTINGS_TYPES), 256, 144)
    p.add_argument("--subframes", type=int, default=9, help="blur: sub-frames per exposure")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    common = dict(seed=args.seed, n_frames=args.frames, height=args.height, width=args.width, fps=args.fps)
    if args.kind == "hdr":
        pattern = tuple(float(v) for v in args.pattern.split(",")) if args.pattern else None
        result = make_hdr_clip(exposure_ratio=args.ratio, pattern=pattern, **common)
    else:
        result = make_blur_clip(subframes=args.subframes, max_blur_px=args.max_blur, **common)
    write_clip(result, args.out, video_crf=args.video_crf, gt=args.gt)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB) and {sidecar_paths(args.out)[0].name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
