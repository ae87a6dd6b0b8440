"""Optical flow between frames t and t+k, computed once before training.

Backends: torchvision's RAFT (weights from the torch hub cache, a download, or a user
checkpoint; see :mod:`vidcam.raft_weights`) or OpenCV's DIS. Every pair is computed in both
directions and a forward-backward check marks the correspondences to trust. Results are
cached on disk keyed by the frames and the settings that change them.

Also here: flow colour coding, per-frame dominant (camera) motion as a homography, and the
motion-based foreground mask that initialises the foreground layer's alpha.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidcam import raft_weights
from vidcam.config import FlowConfig
from vidcam.errors import VidcamError
from vidcam.io.atomic import atomic_path
from vidcam.progress import Progress, progress as progress_report  # `progress` names a flag here

BACKENDS = ("auto", "raft", "dis")
# DIS settings, chosen by measurement (256x144 textured synthetic pairs, mean EPE): the MEDIUM
# preset refined down to full resolution (finest scale 0) has 2-4x lower error than plain
# MEDIUM (finest scale 1) on translations, rotation+zoom and smooth non-rigid motion
# (e.g. 0.04 vs 0.15 px on a 3.3 px shift, 0.31 vs 0.51 px on 6 deg + 10% zoom) for ~3x the
# time (still ~0.1 s per 432x240 pair). OpenCV has no FINE preset.
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
DIS_FINEST_SCALE = 0
RESPONSE_GAMMA = 2.2  # approximate camera response used to compare differently exposed frames
RAFT_STRIDE = 8  # RAFT works on 1/8-resolution features: inputs must be multiples of this
CACHE_VERSION = 1  # bump when the stored flow would differ for the same settings

# Dominant-motion fit and the motion-based foreground mask.
RANSAC_PX = 1.0  # inlier distance for the homography fit (flow-resolution pixels)
RANSAC_MAX_SAMPLES = 8000  # valid pixels fed to RANSAC per frame (evenly strided)
MIN_HOMOGRAPHY_SAMPLES = 16
FOREGROUND_THRESHOLD_PX = 1.5  # residual motion that counts as "moving unlike the camera" ...
FOREGROUND_RELATIVE = 0.1  # ... or this fraction of the frame's median flow magnitude, if larger
FOREGROUND_SOFTNESS = 0.5  # mask ramps from (1-s) to (1+s) times the threshold
CLEANUP_FRACTION = 0.02  # morphology / blur size as a fraction of the shorter frame side
VIS_PERCENTILE = 99.0  # flow magnitude that maps to full colour saturation in visualisations

Estimator = Callable[[np.ndarray, np.ndarray], np.ndarray]  # [B,h,w,3] x2 -> [B,h,w,2]


@dataclass
class FlowPair:
    """Flow for one gap k, all frames stacked (see the module docstring for conventions)."""

    gap: int
    forward: np.ndarray  # float32 [N-k, H, W, 2]: frame t pixel p <-> frame t+k pixel p + forward[t, p]
    backward: np.ndarray  # float32 [N-k, H, W, 2]: frame t+k pixel p <-> frame t pixel p + backward[t, p]
    valid_forward: np.ndarray  # bool [N-k, H, W]: forward-backward consistent and inside the frame
    valid_backward: np.ndarray  # bool [N-k, H, W]

    def reversed(self) -> FlowPair:
        """The same correspondences seen from frame t+k (backward becomes forward)."""
        return FlowPair(self.gap, self.backward, self.forward, self.valid_backward, self.valid_forward)


@dataclass(frozen=True)
class FlowBackend:
    name: str  # raft | dis
    reason: str
    weights: raft_weights.WeightsSource | None = None


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- backend choice


def choose_backend(cfg: FlowConfig) -> tuple[str, str]:
    """("raft" | "dis", why) of ``resolve_backend``."""
    backend = resolve_backend(cfg)
    return backend.name, backend.reason


def resolve_backend(cfg: FlowConfig) -> FlowBackend:
    """auto: RAFT when weights can be had (which may probe the network), else DIS with a note on
    stderr saying where weights go. Resolve once per run and hand it to ``compute_flows``."""
    if cfg.backend not in BACKENDS:
        raise VidcamError(f"flow.backend must be one of {', '.join(BACKENDS)}, got '{cfg.backend}'")
    if cfg.backend == "dis":
        return FlowBackend("dis", "flow.backend is dis")
    weights, reason = _find_raft_weights(cfg)
    if weights is not None:
        return FlowBackend("raft", reason, weights)
    hint = raft_weights.where_to_put_weights(cfg.raft_model)
    if cfg.backend == "raft":
        raise VidcamError(f"flow.backend is raft but no RAFT weights are available: {hint}")
    _log(f"flow: no RAFT weights available, falling back to DIS flow (less accurate); for RAFT, {hint}")
    return FlowBackend("dis", "no RAFT weights available")


def _find_raft_weights(cfg: FlowConfig) -> tuple[raft_weights.WeightsSource | None, str]:
    """User checkpoint first, then torchvision's file in the hub cache, then a download if online."""
    checkpoint = raft_weights.user_checkpoint(cfg.raft_checkpoint)
    if checkpoint is not None:
        return raft_weights.WeightsSource(cfg.raft_model, checkpoint=checkpoint), f"checkpoint {checkpoint}"
    weights = raft_weights.torchvision_weights(cfg.raft_model)
    source = raft_weights.WeightsSource(cfg.raft_model, torchvision=weights)
    cached = raft_weights.hub_cache_file(weights)
    if cached.is_file():
        return source, f"torchvision {weights} from {cached}"
    if raft_weights.can_download(weights.url):
        return source, f"torchvision {weights}, downloading to {cached}"
    return None, ""


# --------------------------------------------------------------------------- estimators


def _make_estimator(
    backend: FlowBackend, cfg: FlowConfig, device: torch.device | str
) -> tuple[Estimator, FlowBackend]:
    """The estimator for ``backend`` and the backend it really is: in auto mode torchvision
    weights that fail to load (say, a download cut off) give way to DIS."""
    if backend.name == "dis":
        return dis_estimator(), backend
    try:
        net = raft_weights.load_model(backend.weights)
    except Exception as exc:  # a failed download surfaces as URLError, OSError, RuntimeError ...
        hint = raft_weights.where_to_put_weights(cfg.raft_model)
        message = exc if isinstance(exc, VidcamError) else f"cannot load RAFT weights ({exc})"
        if cfg.backend == "auto" and backend.weights.checkpoint is None:  # a user's file must load
            _log(f"flow: {message}; falling back to DIS flow; for RAFT, {hint}")
            return dis_estimator(), FlowBackend("dis", "RAFT weights failed to load")
        raise VidcamError(f"{message}; {hint}, or set flow.backend: dis") from None
    return raft_estimator(net, cfg.raft_iters, device), backend


def dis_estimator(preset: int = DIS_PRESET, finest_scale: int = DIS_FINEST_SCALE) -> Estimator:
    """OpenCV DIS flow on grey 8-bit images."""
    dis = cv2.DISOpticalFlow_create(preset)
    dis.setFinestScale(finest_scale)

    def estimate(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return np.stack([dis.calc(_grey_u8(a), _grey_u8(b), None) for a, b in zip(first, second)])

    return estimate


def _grey_u8(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)


def raft_estimator(net: torch.nn.Module, iters: int, device: torch.device | str) -> Estimator:
    """torchvision RAFT on batches of pairs: [-1, 1] inputs, replicate-padded to what RAFT accepts."""
    net = net.eval().to(device)
    # The correlation pyramid halves the 1/8 features num_levels-1 times and needs 2 cells left.
    min_side = RAFT_STRIDE * 2**net.corr_block.num_levels

    def estimate(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        height, width = first.shape[1:3]
        with torch.inference_mode():
            a = _pad_to_raft(_to_raft_input(first, device), min_side)
            b = _pad_to_raft(_to_raft_input(second, device), min_side)
            flow = net(a, b, num_flow_updates=iters)[-1][:, :, :height, :width]
            return flow.permute(0, 2, 3, 1).float().cpu().numpy()

    return estimate


def _to_raft_input(images: np.ndarray, device: torch.device | str) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device)
    return tensor.permute(0, 3, 1, 2) * 2 - 1


def _pad_to_raft(images: torch.Tensor, min_side: int) -> torch.Tensor:
    """Replicate-pad right and bottom to a multiple of RAFT_STRIDE, at least ``min_side``."""
    height, width = images.shape[-2:]
    pad_h = max(-(-height // RAFT_STRIDE) * RAFT_STRIDE, min_side) - height
    pad_w = max(-(-width // RAFT_STRIDE) * RAFT_STRIDE, min_side) - width
    return F.pad(images, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else images


# --------------------------------------------------------------------------- resolution


def flow_resolution(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) that flow is computed at: the frame size, shrunk so the longer side is <= max_side."""
    longest = max(height, width)
    if longest <= max_side:
        return height, width
    scale = max_side / longest
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def _upsample_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of [B,h,w,2] flow to ``size`` with the vectors rescaled per axis."""
    height, width = size
    small_h, small_w = flow.shape[1:3]
    if (small_h, small_w) == (height, width):
        return flow
    gain = np.array([width / small_w, height / small_h], np.float32)
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) * gain for f in flow])


# --------------------------------------------------------------------------- exposure matching


def match_exposure(
    first: np.ndarray, second: np.ndarray, exposure_first: float, exposure_second: float
) -> tuple[np.ndarray, np.ndarray]:
    """Bring the darker frame to the brighter one's exposure (linearise, scale, clip, re-encode).

    Raising the short exposure rather than lowering the long one makes both clip where the
    long exposure is saturated, so neither frame shows detail the other lacks.
    """
    if np.isclose(exposure_first, exposure_second):
        return first, second
    if exposure_first < exposure_second:
        return _brighten(first, exposure_second / exposure_first), second
    return first, _brighten(second, exposure_first / exposure_second)


def _brighten(image: np.ndarray, gain: float) -> np.ndarray:
    linear = np.power(np.clip(image, 0, 1), RESPONSE_GAMMA) * gain
    return np.power(np.clip(linear, 0, 1), 1 / RESPONSE_GAMMA).astype(np.float32)


def _matching_exposures(cfg: FlowConfig, exposures: np.ndarray | None) -> np.ndarray | None:
    """The exposures to match pairs with, or None when matching is off or would change nothing."""
    if not cfg.exposure_match or exposures is None or np.allclose(exposures, exposures[0]):
        return None
    return exposures


def _pair_images(
    frames: np.ndarray, sources: Sequence[int], targets: Sequence[int], exposures: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    firsts, seconds = [], []
    for s, t in zip(sources, targets):
        a, b = frames[s], frames[t]
        if exposures is not None:
            a, b = match_exposure(a, b, float(exposures[s]), float(exposures[t]))
        firsts.append(a)
        seconds.append(b)
    return np.stack(firsts), np.stack(seconds)


# --------------------------------------------------------------------------- consistency


def consistency_mask(forward: np.ndarray, backward: np.ndarray, tolerance_px: float) -> np.ndarray:
    """bool [B,H,W]: |f(p) + b(p + f(p))| < tolerance (b sampled bilinearly) and p + f(p) in frame."""
    height, width = forward.shape[1:3]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    masks = np.empty(forward.shape[:3], bool)
    for i, (f, b) in enumerate(zip(forward, backward)):
        map_x, map_y = xs + f[..., 0], ys + f[..., 1]
        b_at = cv2.remap(b, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        round_trip = np.linalg.norm(f + b_at, axis=-1)
        # In array-index coordinates pixel centres are integers, so the frame spans [-0.5, size - 0.5].
        inside = (map_x >= -0.5) & (map_x <= width - 0.5) & (map_y >= -0.5) & (map_y <= height - 0.5)
        masks[i] = (round_trip < tolerance_px) & inside
    return masks


# --------------------------------------------------------------------------- compute


def compute_flows(
    frames: np.ndarray,
    cfg: FlowConfig,
    device: torch.device | str = "cpu",
    exposures: np.ndarray | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    backend: FlowBackend | None = None,
) -> dict[int, FlowPair]:
    """Flow for every gap in cfg.gaps, both directions, with validity masks; cached in cache_dir.

    ``backend``: from ``resolve_backend(cfg)``, if the caller already has it (else resolved here).

    ``frames``: float32 [N,H,W,3] in [0,1]. ``exposures``: per-frame relative exposure times
    (linear, length N), used to match brightness within a pair when cfg.exposure_match is on.
    Flow values are rounded to float16 precision (what the cache stores) so a cached result
    equals a fresh one.
    """
    frames = _check_frames(frames)
    gaps = _check_gaps(cfg.gaps)
    exposures = _matching_exposures(cfg, _check_exposures(exposures, len(frames)))
    backend = backend or resolve_backend(cfg)

    def cache_file(used: FlowBackend) -> Path | None:
        if cache_dir is None:
            return None
        return Path(cache_dir) / f"flow_{_cache_key(frames, _cache_settings(cfg, used, gaps, exposures))}.npz"

    path = cache_file(backend)
    cached = None if path is None else _load_cache(path, gaps)
    if cached is not None:
        _log(f"flow: cached ({path.name})")
        return cached
    estimator, used = _make_estimator(backend, cfg, device)
    _log(f"flow: {used.name} ({used.reason})")
    flows = _compute_all(frames, gaps, estimator, cfg, exposures, progress)
    if path is not None:
        _save_cache(path if used == backend else cache_file(used), flows)
    return flows


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 2:
        raise VidcamError(f"flow needs at least 2 frames shaped [N, H, W, 3], got {frames.shape}")
    if np.issubdtype(frames.dtype, np.integer):
        return frames.astype(np.float32) / np.iinfo(frames.dtype).max
    return frames.astype(np.float32, copy=False)


def _check_gaps(gaps: Sequence[int]) -> list[int]:
    if not gaps or any(int(k) < 1 for k in gaps):
        raise VidcamError(f"flow.gaps must be positive frame distances, got {list(gaps)}")
    return sorted({int(k) for k in gaps})


def _check_exposures(exposures: np.ndarray | None, count: int) -> np.ndarray | None:
    if exposures is None:
        return None
    exposures = np.asarray(exposures, np.float64).reshape(-1)
    if len(exposures) != count or not np.all(exposures > 0):
        raise VidcamError(f"flow needs {count} positive exposures (one per frame), got {len(exposures)}")
    return exposures


def _compute_all(
    frames: np.ndarray,
    gaps: list[int],
    estimator: Estimator,
    cfg: FlowConfig,
    exposures: np.ndarray | None,
    progress: bool,
) -> dict[int, FlowPair]:
    size = frames.shape[1:3]
    small = _resize_frames(frames, flow_resolution(*size, cfg.max_side))
    total = sum(2 * max(len(frames) - k, 0) for k in gaps)
    with progress_report(desc="flow", total=total, unit="pair", disable=not progress) as bar:
        return {k: _flow_pair(small, size, k, estimator, cfg, exposures, bar) for k in gaps}


def _flow_pair(
    small: np.ndarray,
    size: tuple[int, int],
    gap: int,
    estimator: Estimator,
    cfg: FlowConfig,
    exposures: np.ndarray | None,
    bar: Progress,
) -> FlowPair:
    """Forward flows t -> t+gap and backward flows t+gap -> t, computed in batches."""
    count = max(len(small) - gap, 0)
    sources = [*range(count), *range(gap, gap + count)]
    targets = [*range(gap, gap + count), *range(count)]
    flow = np.zeros((2 * count, *size, 2), np.float32)
    batch = max(1, cfg.batch_size)
    for start in range(0, len(sources), batch):
        part = slice(start, start + batch)
        first, second = _pair_images(small, sources[part], targets[part], exposures)
        flow[part] = _upsample_flow(estimator(first, second), size)
        bar.update(len(first))
    flow = flow.astype(np.float16).astype(np.float32)  # cache precision, see compute_flows
    forward, backward = flow[:count], flow[count:]
    return FlowPair(
        gap,
        forward,
        backward,
        consistency_mask(forward, backward, cfg.consistency_px),
        consistency_mask(backward, forward, cfg.consistency_px),
    )


# --------------------------------------------------------------------------- cache


def _cache_settings(
    cfg: FlowConfig, backend: FlowBackend, gaps: list[int], exposures: np.ndarray | None
) -> dict[str, object]:
    """The settings that change the stored flow (and nothing else, so unrelated edits still hit)."""
    settings: dict[str, object] = {
        "version": CACHE_VERSION,
        "backend": backend.name,
        "max_side": cfg.max_side,
        "gaps": gaps,
        "consistency_px": cfg.consistency_px,
        "exposures": None if exposures is None else [float(e) for e in exposures],
    }
    if backend.name == "raft":
        settings |= {"weights": backend.weights.identity(), "model": cfg.raft_model, "iters": cfg.raft_iters}
    else:
        settings["dis"] = [DIS_PRESET, DIS_FINEST_SCALE]
    return settings


def _cache_key(frames: np.ndarray, settings: dict[str, object]) -> str:
    digest = hashlib.sha1(repr(frames.shape).encode())
    for frame in frames:
        digest.update(memoryview(np.ascontiguousarray(frame)).cast("B"))
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:20]


def _save_cache(path: Path, flows: dict[int, FlowPair]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for k, pair in flows.items():
        arrays |= {
            f"forward_{k}": pair.forward.astype(np.float16),
            f"backward_{k}": pair.backward.astype(np.float16),
            f"valid_forward_{k}": pair.valid_forward,
            f"valid_backward_{k}": pair.valid_backward,
        }
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def _load_cache(path: Path, gaps: list[int]) -> dict[int, FlowPair] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return {
                k: FlowPair(
                    k,
                    data[f"forward_{k}"].astype(np.float32),
                    data[f"backward_{k}"].astype(np.float32),
                    data[f"valid_forward_{k}"].astype(bool),
                    data[f"valid_backward_{k}"].astype(bool),
                )
                for k in gaps
            }
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        _log(f"flow: ignoring unreadable cache {path.name} ({exc}); recomputing")
        return None


# --------------------------------------------------------------------------- visualisation


def _colour_wheel() -> np.ndarray:
    """The Middlebury colour wheel (Baker et al. 2011): [55, 3] RGB in [0, 1]."""
    segments = ((15, (1, 0, 0), (1, 1, 0)), (6, (1, 1, 0), (0, 1, 0)), (4, (0, 1, 0), (0, 1, 1)),
                (11, (0, 1, 1), (0, 0, 1)), (13, (0, 0, 1), (1, 0, 1)), (6, (1, 0, 1), (1, 0, 0)))  # fmt: skip
    parts = []
    for length, start, end in segments:
        ramp = np.arange(length)[:, None] / length
        parts.append((1 - ramp) * np.array(start) + ramp * np.array(end))
    return np.concatenate(parts)


_WHEEL = _colour_wheel()


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """uint8 RGB [..., H, W, 3]: hue = direction, saturation = magnitude / max_magnitude."""
    flow = np.nan_to_num(np.asarray(flow, np.float32))
    u, v = flow[..., 0], flow[..., 1]
    if max_magnitude is None:
        max_magnitude = float(np.hypot(u, v).max(initial=0.0))
    scale = max(max_magnitude, np.finfo(np.float32).eps)
    radius = np.hypot(u, v) / scale
    position = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (len(_WHEEL) - 1)
    low = np.floor(position).astype(int)
    high = (low + 1) % len(_WHEEL)
    frac = (position - low)[..., None]
    colour = (1 - frac) * _WHEEL[low] + frac * _WHEEL[high]
    inside = (radius <= 1)[..., None]
    colour = np.where(inside, 1 - radius[..., None] * (1 - colour), colour * 0.75)  # 0.75: out of range
    return np.clip(colour * 255 + 0.5, 0, 255).astype(np.uint8)


def export_flow_visualisation(flows: dict[int, FlowPair], out_dir: Path, fps: float) -> None:
    """PNGs ``flow_k{gap}/00000.png ...`` and a video ``flow_k{gap}.mp4`` of the forward flows.

    One colour scale per gap (a high percentile of the magnitudes) so colours compare across
    frames; pixels failing the consistency check are shown at half brightness.
    """
    from vidcam.io.video import write_sdr_video  # imported late: video I/O pulls in PyAV

    out_dir = Path(out_dir)
    for gap, pair in sorted(flows.items()):
        if len(pair.forward) == 0:
            continue
        images = _flow_images(pair)
        folder = out_dir / f"flow_k{gap}"
        folder.mkdir(parents=True, exist_ok=True)
        for t, image in enumerate(images):
            with atomic_path(folder / f"{t:05d}.png") as tmp:
                if not cv2.imwrite(str(tmp), image[..., ::-1]):
                    raise VidcamError(f"cannot write {folder / f'{t:05d}.png'}")
        write_sdr_video(out_dir / f"flow_k{gap}.mp4", images, fps)


def _flow_images(pair: FlowPair) -> np.ndarray:
    magnitude = np.linalg.norm(pair.forward, axis=-1)
    scale = float(np.percentile(magnitude[pair.valid_forward], VIS_PERCENTILE)) if pair.valid_forward.any() else None
    images = flow_to_color(pair.forward, scale)
    images[~pair.valid_forward] //= 2
    return images


# --------------------------------------------------------------------------- dominant motion


def dominant_motion(pair: FlowPair, ransac_px: float = RANSAC_PX) -> tuple[np.ndarray, np.ndarray]:
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
        homographies[t] = _fit_homography(points, pair.forward[t], pair.valid_forward[t], ransac_px)
        predicted = _apply_homography(homographies[t], points) - points
        scores[t] = np.linalg.norm(pair.forward[t] - predicted, axis=-1)
    return homographies, scores


def region_motion(pair: FlowPair, regions: np.ndarray, ransac_px: float = RANSAC_PX) -> np.ndarray:
    """Per forward flow t: the similarity (as a 3x3 matrix) moving the pixels of ``regions[t]``.

    ``regions`` is bool [N, H, W] (e.g. the foreground mask). Fitted by RANSAC on the valid flow
    inside the region; the identity where the region has too few pixels.
    """
    count, height, width = pair.forward.shape[:3]
    points = _pixel_centres(height, width)
    motions = np.tile(np.eye(3), (count, 1, 1))
    for t in range(count):
        inside = regions[t] & pair.valid_forward[t]
        if inside.sum() < MIN_HOMOGRAPHY_SAMPLES:
            continue
        stride = max(1, int(inside.sum()) // RANSAC_MAX_SAMPLES)
        src = np.ascontiguousarray(points[inside][::stride])  # OpenCV rejects strided views
        dst = src + pair.forward[t][inside][::stride]
        affine, _ = cv2.estimateAffinePartial2D(src, dst, None, cv2.RANSAC, ransac_px)
        if affine is not None:
            motions[t, :2] = affine
    return motions


def _pixel_centres(height: int, width: int) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32) + 0.5, np.arange(height, dtype=np.float32) + 0.5)
    return np.stack([xs, ys], axis=-1)


def _apply_homography(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    flat = points.reshape(-1, 1, 2).astype(np.float64)
    return cv2.perspectiveTransform(flat, homography).reshape(points.shape).astype(np.float32)


def _fit_homography(points: np.ndarray, flow: np.ndarray, valid: np.ndarray, ransac_px: float) -> np.ndarray:
    """RANSAC homography on (evenly strided) valid samples; median translation if that fails."""
    mask = valid if valid.sum() >= MIN_HOMOGRAPHY_SAMPLES else np.ones_like(valid)
    stride = max(1, int(mask.sum()) // RANSAC_MAX_SAMPLES)
    src = np.ascontiguousarray(points[mask][::stride])  # OpenCV rejects strided views
    dst = src + flow[mask][::stride]
    homography, _ = cv2.findHomography(src, dst, cv2.RANSAC, ransac_px)
    if homography is None:
        homography = np.eye(3)
        homography[:2, 2] = np.median(flow[mask], axis=0)
    return homography


# --------------------------------------------------------------------------- foreground


def foreground_from_motion(
    flows: dict[int, FlowPair], threshold_px: float = FOREGROUND_THRESHOLD_PX
) -> np.ndarray:
    """float32 [N,H,W] in [0,1]: soft mask of pixels moving unlike the dominant (camera) motion.

    Each flow direction scores every source frame by its residual from the frame's homography,
    relative to max(threshold_px, FOREGROUND_RELATIVE * median flow magnitude); scores are
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
            relative = _relative_residual(direction, threshold_px)
            index = np.asarray(frames, int)
            sums[0, index] += relative * direction.valid_forward
            weights[0, index] += direction.valid_forward
            sums[1, index] += relative
            weights[1, index] += 1
    residual = np.where(weights[0] > 0, sums[0] / np.maximum(weights[0], 1), sums[1] / np.maximum(weights[1], 1))
    soft = np.clip((residual - (1 - FOREGROUND_SOFTNESS)) / (2 * FOREGROUND_SOFTNESS), 0, 1)
    return np.stack([_clean_mask(m) for m in soft]).astype(np.float32)


def _relative_residual(pair: FlowPair, threshold_px: float) -> np.ndarray:
    """Residual from the dominant motion divided by each frame's threshold (1 = at threshold)."""
    _, scores = dominant_motion(pair)
    magnitude = np.linalg.norm(pair.forward, axis=-1).reshape(len(scores), -1)
    thresholds = np.maximum(threshold_px, FOREGROUND_RELATIVE * np.median(magnitude, axis=1))
    return scores / thresholds[:, None, None].astype(np.float32)


def _clean_mask(mask: np.ndarray) -> np.ndarray:
    """Open (drop specks), close (fill holes), blur (soft edge); sizes scale with the frame."""
    size = max(3, int(round(CLEANUP_FRACTION * min(mask.shape))) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    return np.clip(cv2.GaussianBlur(mask, (size, size), 0), 0, 1)
