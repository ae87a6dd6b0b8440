"""Per-frame exposure times: parsed from the user's list or estimated from the frames.

Times are relative (only ratios matter) and returned as natural-log exposures with zero mean,
which anchors the irradiance scale: a pixel of irradiance 1 at the mean exposure sits at the
tone mapper's mid-point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidcam.errors import VidcamError

APPROX_GAMMA = 2.2  # the rough response used before the real one is learned
WELL_EXPOSED = (0.08, 0.92)  # pixel values trusted when comparing two frames' brightness
MIN_ALTERNATION_RATIO = 1.5  # brightness phases further apart than this count as an exposure pattern
MAX_PERIOD = 3  # longest brightness cycle looked for
MAX_PATTERN = 8  # longest cyclic pattern accepted from the user


@dataclass
class ExposureEstimate:
    log_exposure: np.ndarray  # [N], zero mean
    period: int  # 1 when brightness does not alternate
    ratio: float  # brightest / darkest phase


def parse_exposures(text: str, n_frames: int, ev: bool = False) -> np.ndarray:
    """``"1,4"`` (a cyclic pattern), one value per frame, or a file holding either.

    Values are exposure times, or EV (log2 units) with ``ev``. Returns zero-mean log exposures.
    """
    source = text
    path = Path(text)
    if len(text) < 4096 and path.is_file():
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise VidcamError(f"cannot read exposure list {path}: {exc}") from None
    tokens = [tok for tok in text.replace(",", " ").split() if tok]
    try:
        values = np.array([float(tok) for tok in tokens], dtype=np.float64)
    except ValueError:
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


def estimate_exposures(frames: np.ndarray) -> ExposureEstimate:
    """Find a cyclic exposure pattern from the frames' brightness (float [N,H,W,3] in [0,1])."""
    n = frames.shape[0]
    linear = np.clip(frames, 0, 1) ** APPROX_GAMMA
    log_gain = _relative_log_gains(frames, linear)  # [N], frame brightness relative to frame 0
    best = ExposureEstimate(np.zeros(n), 1, 1.0)
    for period in range(2, min(MAX_PERIOD, n // 2) + 1):
        phases = np.arange(n) % period
        phase_mean = np.array([log_gain[phases == p].mean() for p in range(period)])
        spread = phase_mean.max() - phase_mean.min()
        residual = np.abs(log_gain - phase_mean[phases]).max()
        if spread > np.log(MIN_ALTERNATION_RATIO) and residual < spread / 3:
            ratio = float(np.exp(spread))
            if ratio > best.ratio:
                best = ExposureEstimate(phase_mean[phases] - phase_mean[phases].mean(), period, ratio)
    return best


def _relative_log_gains(frames: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Log brightness ratio of each frame to its predecessor, chained from frame 0.

    Compared on pixels well exposed in both frames, so clipping and noise don't bias it.
    """
    lo, hi = WELL_EXPOSED
    gains = [0.0]
    for t in range(1, frames.shape[0]):
        a, b = frames[t - 1].mean(-1), frames[t].mean(-1)
        ok = (a > lo) & (a < hi) & (b > lo) & (b < hi)
        if ok.sum() < 16:
            ratio = (linear[t].mean() + 1e-6) / (linear[t - 1].mean() + 1e-6)
        else:
            ratio = np.median(linear[t].mean(-1)[ok] / np.maximum(linear[t - 1].mean(-1)[ok], 1e-6))
        gains.append(gains[-1] + float(np.log(max(ratio, 1e-6))))
    return np.array(gains)
