"""Optical flow between frames t and t+k, computed once before training.

Backends: torchvision's RAFT (weights from the torch hub cache, a download, or a user
checkpoint; see :mod:`vidcam.raft_weights`) or OpenCV's DIS. Every pair is computed in both
directions and a forward-backward check marks the correspondences to trust. Results are
cached on disk keyed by the frames and the settings that change them.

What the flow is used for lives elsewhere: :mod:`vidcam.motion` (camera motion, foreground
mask), :mod:`vidcam.flow.visualise` (colour coding), :mod:`vidcam.training.data` (flow loss).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidcam import raft_weights
from vidcam.config import FlowConfig, choices
from vidcam.errors import VidcamError
from vidcam.flow.types import FlowPair
from vidcam.io.atomic import atomic_path
from vidcam.log import log
from vidcam.progress import Progress  # `progress` names a flag here
from vidcam.progress import progress as progress_report

BACKENDS = choices(FlowConfig, "backend")
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

Estimator = Callable[[np.ndarray, np.ndarray], np.ndarray]  # [B,h,w,3] x2 -> [B,h,w,2]


@dataclass(frozen=True)
class FlowBackend:
    name: str  # raft | dis
    reason: str
    weights: raft_weights.WeightsSource | None = None


# --------------------------------------------------------------------------- backend choice


def choose_backend(cfg: FlowConfig) -> tuple[str, str]:
    """("raft" | "dis", why) of ``resolve_backend``."""
    backend = resolve_backend(cfg)
    return backend.name, backend.reason


# Flow between a short and a long exposure: RAFT scored below DIS on every HDR clip measured (fast
# preset, PSNR-mu / PSNR-L): real-motion 1:5 24.90 / 28.83 (RAFT small) against 26.30 / 31.12,
# the HDR demo 35.49 / 36.91 against 36.28 / 36.48, and RAFT large cost the 1:5 clip 0.5 dB.
HDR_AUTO_REASON = "HDR: auto uses DIS, which linked short and long exposures better than RAFT"


def resolve_backend(cfg: FlowConfig, hdr: bool = False) -> FlowBackend:
    """auto: DIS for an HDR clip (``hdr``); otherwise RAFT when weights can be had (which may probe
    the network), else DIS with a note on stderr saying where weights go. Resolve once per run and
    hand it to ``compute_flows``."""
    if cfg.backend not in BACKENDS:
        raise VidcamError(f"flow.backend must be one of {', '.join(BACKENDS)}, got '{cfg.backend}'")
    if cfg.backend == "dis":
        return FlowBackend("dis", "flow.backend is dis")
    if cfg.backend == "auto" and hdr:
        return FlowBackend("dis", HDR_AUTO_REASON)
    weights, reason = _find_raft_weights(cfg)
    if weights is not None:
        return FlowBackend("raft", reason, weights)
    hint = raft_weights.where_to_put_weights(cfg.raft_model)
    if cfg.backend == "raft":
        raise VidcamError(f"flow.backend is raft but no RAFT weights are available: {hint}")
    log(f"flow: no RAFT weights available, falling back to DIS flow (less accurate); for RAFT, {hint}")
    return FlowBackend("dis", "no RAFT weights available")


def expected_backend(cfg: FlowConfig, hdr: bool = False) -> str:
    """"raft" | "dis": what a run will use, judged without probing the network (for the plan's time
    estimate): auto counts as RAFT when the clip is not HDR and weights are on this machine, a
    user's checkpoint or torchvision's file in the hub cache."""
    if cfg.backend != "auto":
        return cfg.backend
    if hdr:
        return "dis"
    return "raft" if _find_raft_weights(cfg, online=False)[0] is not None else "dis"


def _find_raft_weights(cfg: FlowConfig, online: bool = True) -> tuple[raft_weights.WeightsSource | None, str]:
    """User checkpoint first, then torchvision's file in the hub cache, then (``online``: probing
    the network) a download."""
    checkpoint = raft_weights.user_checkpoint(cfg.raft_checkpoint)
    if checkpoint is not None:
        return raft_weights.WeightsSource(cfg.raft_model, checkpoint=checkpoint), f"checkpoint {checkpoint}"
    weights = raft_weights.torchvision_weights(cfg.raft_model)
    source = raft_weights.WeightsSource(cfg.raft_model, torchvision=weights)
    cached = raft_weights.hub_cache_file(weights)
    if cached.is_file():
        return source, f"torchvision {weights} from {cached}"
    if online and raft_weights.can_download(weights.url):
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
            log(f"flow: {message}; falling back to DIS flow; for RAFT, {hint}")
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
        log(f"flow: cached ({path.name})")
        return cached
    estimator, used = _make_estimator(backend, cfg, device)
    log(f"flow: {used.name} ({used.reason})")
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
        log(f"flow: ignoring unreadable cache {path.name} ({exc}); recomputing")
        return None
