"""Per-frame exposure times: parsed from the user's list or estimated from the frames.

Times are relative (only ratios matter) and returned as natural-log exposures with zero mean,
which anchors the irradiance scale: a pixel of irradiance 1 at the mean exposure sits at the
tone mapper's mid-point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidcam.errors import VidcamError

APPROX_GAMMA = 2.2  # the rough response used before the real one is learned
WELL_EXPOSED = (0.08, 0.92)  # pixel values trusted when comparing two frames' brightness
MIN_ALTERNATION_RATIO = 2.0  # phases 1 EV apart or more are exposures; smaller swings are often a flickering light
MAX_PERIOD = 3  # longest brightness cycle looked for
MAX_PATTERN = 8  # longest cyclic pattern accepted from the user
ESTIMATE_MAX_SIDE = 160  # frames are compared at this size: enough pixels, and fast on 1080p
MIN_COMPARED_PIXELS = 16  # fewer pixels well exposed in both frames leave their brightness step unmeasured
MIN_MEASURED_STEPS = 0.5  # fewer measured steps than this fraction: mean brightness is compared instead
FLAT_RANGE = 0.1  # 3x3 value range under which a pixel is inside a region, not on an edge that motion moves
STEP_TOLERANCE = 0.25  # a frame-to-frame step follows the pattern within this fraction of its spread
MIN_CONSISTENT_STEPS = 0.8  # fraction of the clip's steps that must follow the pattern (not a flicker)


@dataclass
class ExposureEstimate:
    log_exposure: np.ndarray  # [N], zero mean
    period: int  # 1 when brightness does not alternate
    ratio: float  # brightest / darkest phase

    @property
    def pattern(self) -> np.ndarray:
        """Relative exposure of each phase, from frame 0 on; the darkest is 1."""
        phases = self.log_exposure[: self.period]
        return np.exp(phases - phases.min())


def parse_exposures(text: str, n_frames: int, ev: bool = False) -> np.ndarray:
    """``"1,4"`` (a cyclic pattern), one value per frame, or a file holding either.

    Values are exposure times, or EV (log2 units) with ``ev``. Returns zero-mean log exposures.
    """
    if not text.strip():
        raise VidcamError("the exposure list is empty: give values like '1,4' or a file holding them")
    source = _shortened(text)
    path = Path(text)
    from_file = _is_file(path)
    if from_file:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise VidcamError(f"cannot read exposure list {path}: {exc}") from None
    elif _is_dir(path):
        raise VidcamError(f"exposure list {path} is a folder: give a file, or values like '1,4'")
    tokens = [tok for tok in text.replace(",", " ").split() if tok]
    try:
        values = np.array([float(tok) for tok in tokens], dtype=np.float64)
    except ValueError:
        if not from_file and _looks_like_path(text):
            raise VidcamError(f"exposure file not found: {text}") from None
        raise VidcamError(f"malformed exposure list '{source}': expected numbers like '1,4'") from None
    if values.size == 0:
        raise VidcamError(f"exposure list '{source}' holds no values")
    if not np.all(np.isfinite(values)):
        raise VidcamError(f"exposure list '{source}' holds non-finite values")
    if not ev and np.any(values <= 0):
        raise VidcamError(f"exposure times must be positive (use --ev for EV values): '{source}'")
    if values.size != n_frames and values.size > MAX_PATTERN:
        raise VidcamError(
            f"exposure list has {values.size} values for {n_frames} frames: "
            f"give a cyclic pattern of at most {MAX_PATTERN} values or one value per frame"
        )
    pattern = np.resize(values, n_frames)
    log_exposure = pattern * np.log(2.0) if ev else np.log(pattern)
    return log_exposure - log_exposure.mean()


def _is_file(path: Path) -> bool:
    try:  # a long inline list is no valid path: the OS refuses the name
        return path.is_file()
    except (OSError, ValueError):
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _looks_like_path(text: str) -> bool:
    """A path separator, or a file suffix such as ``.txt`` and no list separators."""
    if "/" in text or "\\" in text:
        return True
    suffix = Path(text).suffix
    return "," not in text and len(suffix) > 1 and suffix[1].isalpha()


def _shortened(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def estimate_exposures(frames: np.ndarray) -> ExposureEstimate:
    """Find a cyclic exposure pattern from the frames' brightness (float [N,H,W,3] in [0,1]).

    Each frame is compared with its predecessor only (the brightness step between them); a
    period P is accepted when the steps of each phase agree across the whole clip and a cycle
    of steps returns to its start. Steps are never chained over the clip: their small biases
    would add up to a drift as large as the pattern itself.
    """
    n = frames.shape[0]
    best = ExposureEstimate(np.zeros(n), 1, 1.0)
    if n < 4:
        return best
    small = _downscaled(frames, ESTIMATE_MAX_SIDE)
    steps = np.array([_log_step(small[t - 1], small[t]) for t in range(1, n)])  # NaN: unmeasured
    if np.isfinite(steps).mean() < MIN_MEASURED_STEPS:  # e.g. exposures so far apart that nothing overlaps
        steps = np.array([_mean_log_step(small[t - 1], small[t]) for t in range(1, n)])
    best_consistency = 0.0
    for period in range(2, min(MAX_PERIOD, n // 2) + 1):
        fit = _fit_pattern(steps, period)
        if fit is not None and fit[1] > best_consistency:
            log_pattern, best_consistency = fit
            log_exposure = log_pattern[np.arange(n) % period]
            ratio = float(np.exp(np.ptp(log_pattern)))
            best = ExposureEstimate(log_exposure - log_exposure.mean(), period, ratio)
    return best


def _fit_pattern(steps: np.ndarray, period: int) -> tuple[np.ndarray, float] | None:
    """The cyclic log-exposure pattern (phase 0 = frame 0 at 0) that the measured (finite) steps
    follow, and the fraction of them that follow it; None when they don't form one."""
    phase = np.arange(1, steps.size + 1) % period  # step t leads into frame t
    measured = np.isfinite(steps)
    if any(not np.any(measured & (phase == p)) for p in range(period)):
        return None
    phase, steps = phase[measured], steps[measured]
    medians = np.array([np.median(steps[phase == p]) for p in range(period)])
    closure = medians.sum()  # a full cycle of exposure steps ends where it started, but for a fade
    balanced = medians - closure / period
    log_pattern = np.concatenate([[0.0], np.cumsum(balanced[1:])])
    spread = float(np.ptp(log_pattern))
    if spread < np.log(MIN_ALTERNATION_RATIO) or abs(closure) > STEP_TOLERANCE * spread:
        return None
    consistency = float(np.mean(np.abs(steps - medians[phase]) <= STEP_TOLERANCE * spread))
    if consistency < MIN_CONSISTENT_STEPS:
        return None
    return log_pattern, consistency


def _downscaled(frames: np.ndarray, max_side: int) -> np.ndarray:
    height, width = frames.shape[1:3]
    scale = max_side / max(height, width)
    if scale >= 1:
        return np.clip(frames, 0, 1).astype(np.float32, copy=False)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = [cv2.resize(np.asarray(frame, np.float32), size, interpolation=cv2.INTER_AREA) for frame in frames]
    return np.clip(np.stack(small), 0, 1)


def _log_step(before: np.ndarray, after: np.ndarray) -> float:
    """Log brightness ratio of ``after`` to ``before``, compared on co-located pixels well
    exposed in both, so clipping and near-black noise don't bias it; inside flat regions where
    there are enough, since an edge that moved mixes a bright and a dark side differently.
    NaN when too few pixels are well exposed in both (a black frame tells nothing)."""
    lo, hi = WELL_EXPOSED
    value_before, value_after = before.mean(-1), after.mean(-1)
    linear_before = (before**APPROX_GAMMA).mean(-1)
    linear_after = (after**APPROX_GAMMA).mean(-1)
    compared = (value_before > lo) & (value_before < hi) & (value_after > lo) & (value_after < hi)
    flat = compared & (_local_range(value_before) < FLAT_RANGE) & (_local_range(value_after) < FLAT_RANGE)
    if flat.sum() >= MIN_COMPARED_PIXELS:
        compared = flat
    elif compared.sum() < MIN_COMPARED_PIXELS:
        return float("nan")
    ratios = linear_after[compared] / np.maximum(linear_before[compared], 1e-6)
    return float(np.log(max(float(np.median(ratios)), 1e-6)))


def _mean_log_step(before: np.ndarray, after: np.ndarray) -> float:
    linear_before, linear_after = before**APPROX_GAMMA, after**APPROX_GAMMA
    return float(np.log((linear_after.mean() + 1e-6) / (linear_before.mean() + 1e-6)))


def _local_range(image: np.ndarray) -> np.ndarray:
    kernel = np.ones((3, 3), np.uint8)
    image = np.asarray(image, np.float32)
    return cv2.dilate(image, kernel) - cv2.erode(image, kernel)
