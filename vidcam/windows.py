"""Temporal windows: a long clip fitted as overlapping windows, each its own model, joined without seams.

Each window is prepared, built and trained by the pipeline's own steps on its frames
(vidcam.batch.fit_window; the plan is resolved once over the whole clip, so every window keeps the
clip's exposure pattern) and checkpoints into ``windows/wNNN/`` of the run folder; a finished window
leaves its render there, so ``--resume`` skips it. The join happens in linear irradiance: each window's absolute scale is
arbitrary, so the gain between neighbours is measured on the frames they share (median log
luminance ratio) and chained from the first window; the overlapping frames are blended with
weights ramping across the overlap; one exposure scale and one tone curve are then applied to the
whole clip, so brightness does not jump at a border. Seam flicker (mean absolute frame-to-frame
change of the SDR output at borders against elsewhere) goes into ``report.windows``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from vidcam.errors import VidcamError
from vidcam.io.video import Clip
from vidcam.plan import RunPlan
from vidcam.rendering import LUMA_709

WINDOWS_DIR = "windows"
WINDOW_RENDER = "render.npy"  # the window's guarded output at the fit size [n,h,w,3] float16: irradiance, or camera output
WINDOW_CONFIDENCE = "confidence.npy"  # the guard's weight on the model [n,h,w] uint8 (255: model trusted)
WINDOW_TONE = "inverse_tone.npz"  # the learned response, tabulated (the output's detail goes through it)
WINDOW_DONE = "window.json"  # written last: the window is finished
LUMINANCE_FLOOR = 1e-4  # pixels darker than this in either window are left out of the gain estimate


@dataclass(frozen=True)
class Window:
    index: int
    start: int  # first frame (clip index)
    end: int  # one past the last frame

    @property
    def name(self) -> str:
        return f"w{self.index:03d}"

    @property
    def n_frames(self) -> int:
        return self.end - self.start


def split_windows(n_frames: int, frames: int, overlap: int) -> list[Window]:
    """Equal windows of at most ``frames`` frames, neighbours sharing at least ``overlap``, spread evenly.

    A clip of at most ``frames`` frames is one window.
    """
    if n_frames <= frames:
        return [Window(0, 0, n_frames)]
    if frames < 2:
        raise VidcamError(f"windows.frames must be at least 2, got {frames}")
    if not 1 <= overlap < frames:
        raise VidcamError(f"windows.overlap must be at least 1 and below windows.frames ({frames}), got {overlap}")
    count = math.ceil((n_frames - overlap) / (frames - overlap))
    size = math.ceil((n_frames - overlap) / count) + overlap  # at most ``frames``: as even as the count allows
    starts = np.round(np.linspace(0, n_frames - size, count)).astype(int)
    return [Window(k, int(s), int(s) + size) for k, s in enumerate(starts)]


def window_folder(outdir: Path, window: Window) -> Path:
    return Path(outdir) / WINDOWS_DIR / window.name


def window_clip(clip: Clip, window: Window) -> Clip:
    return Clip(clip.frames[window.start : window.end], clip.fps, clip.info, clip.frame_indices[window.start : window.end])


def window_plan(plan: RunPlan, window: Window) -> RunPlan:
    return replace(plan, log_exposure=plan.log_exposure[window.start : window.end])


# ----------------------------------------------------------------------------- joining


def load_window_render(outdir: Path, window: Window) -> np.ndarray:
    return np.load(window_folder(outdir, window) / WINDOW_RENDER, mmap_mode="r")


def overlap_gain(left: np.ndarray, right: np.ndarray) -> float:
    """Factor bringing ``right`` to ``left``'s scale: exp(median log luminance ratio) on the shared frames."""
    left_lum, right_lum = np.asarray(left) @ LUMA_709, np.asarray(right) @ LUMA_709
    valid = (left_lum > LUMINANCE_FLOOR) & (right_lum > LUMINANCE_FLOOR)
    if not valid.any():
        return 1.0
    return float(np.exp(np.median(np.log(left_lum[valid]) - np.log(right_lum[valid]))))


def blend_weights(windows: list[Window], n_frames: int) -> np.ndarray:
    """[n_windows, n_frames] weights summing to 1 per frame: 1 inside a window, ramping linearly
    down across the frames it shares with a neighbour (0 outside)."""
    weights = np.zeros((len(windows), n_frames))
    t = np.arange(n_frames)
    for k, window in enumerate(windows):
        left = windows[k - 1].end - window.start if k > 0 else 0
        right = window.end - windows[k + 1].start if k + 1 < len(windows) else 0
        rise = np.clip((t - window.start + 1) / (left + 1), 0, 1)
        fall = np.clip((window.end - t) / (right + 1), 0, 1)
        weights[k] = np.where((t >= window.start) & (t < window.end), rise * fall, 0)
    return weights / weights.sum(axis=0, keepdims=True)


def chained_gains(renders: list[np.ndarray], windows: list[Window], aligned: bool = True) -> list[float]:
    """Each window's factor to the first window's scale, chained over the neighbours' overlaps;
    ``border_gains`` (neighbour to neighbour) are the ratios of consecutive entries."""
    gains = [1.0]
    for k in range(1, len(windows)):
        shared = slice(windows[k].start, windows[k - 1].end)
        left = renders[k - 1][shared.start - windows[k - 1].start : shared.stop - windows[k - 1].start]
        right = renders[k][: shared.stop - windows[k].start]
        gains.append(gains[-1] * (overlap_gain(left, right) if aligned else 1.0))
    return gains


def frame_weights(windows: list[Window], blend: bool = True) -> np.ndarray:
    """[n_windows, n_frames] weights of each window's render in each output frame: the blend
    (``blend_weights``), or with ``blend=False`` a hard cut in the middle of each overlap (the
    naive join, for comparison)."""
    weights = blend_weights(windows, windows[-1].end)
    if not blend:
        weights = (weights == weights.max(axis=0, keepdims=True)).astype(np.float64)
        weights /= weights.sum(axis=0, keepdims=True)
    return weights


def joined_frame(renders: list[np.ndarray], windows: list[Window], weights: np.ndarray, gains: list[float], t: int) -> np.ndarray:
    """Output frame t [H,W,3] float32: every window covering it, times its gain, by its weight."""
    frame = np.zeros(renders[0].shape[1:], np.float32)
    for k, window in enumerate(windows):
        if window.start <= t < window.end and weights[k, t] > 0:
            frame += np.float32(weights[k, t] * gains[k]) * renders[k][t - window.start].astype(np.float32)
    return frame


def join_windows(renders: list[np.ndarray], windows: list[Window], gains: list[float], blend: bool = True) -> np.ndarray:
    """[N,H,W,3] float32: the whole joined clip (``joined_frame`` for every frame; small clips and tests)."""
    weights = frame_weights(windows, blend)
    return np.stack([joined_frame(renders, windows, weights, gains, t) for t in range(windows[-1].end)])


def border_pairs(windows: list[Window]) -> np.ndarray:
    """Bool [N-1]: frame pairs (t, t+1) that enter, cross or leave a region two windows share."""
    at_border = np.zeros(windows[-1].end - 1, bool)
    for previous, window in zip(windows, windows[1:]):
        at_border[max(window.start - 1, 0) : previous.end] = True
    return at_border


class FlickerMeter:
    """Frame-to-frame change of 8-bit output frames fed one at a time, at window borders and
    elsewhere (see ``seam_flicker``); holds one frame."""

    def __init__(self, windows: list[Window]):
        self.at_border = border_pairs(windows)
        self.change: list[float] = []
        self.brightness: list[float] = []
        self._previous: np.ndarray | None = None

    def add(self, frame: np.ndarray) -> None:
        current = frame.astype(np.float32)
        if self._previous is not None:
            self.change.append(float(np.abs(current - self._previous).mean()))
            self.brightness.append(abs(float(current.mean()) - float(self._previous.mean())))
        self._previous = current

    def result(self) -> dict[str, float]:
        change, brightness = np.array(self.change), np.array(self.brightness)
        at_border = self.at_border[: len(change)]

        def mean(values: np.ndarray, where: np.ndarray) -> float:
            return float(values[where].mean()) if where.any() else float("nan")

        border, elsewhere = mean(change, at_border), mean(change, ~at_border)
        return {
            "border": border,
            "elsewhere": elsewhere,
            "ratio": border / elsewhere if elsewhere > 0 else float("nan"),
            "brightness_border": mean(brightness, at_border),
            "brightness_elsewhere": mean(brightness, ~at_border),
        }


def seam_flicker(sdr: np.ndarray, windows: list[Window]) -> dict[str, float]:
    """Frame-to-frame change of the 8-bit output (0-255) at window borders and elsewhere: per pixel
    (``border``, ``elsewhere``: mean absolute change, motion included) and of the frame's mean
    brightness (``brightness_border``, ``brightness_elsewhere``: the jump a seam would make)."""
    meter = FlickerMeter(windows)
    for frame in sdr:
        meter.add(frame)
    return meter.result()


def windows_summary(windows: list[Window], gains: list[float], flicker: dict, naive: dict, tasks: list[dict]) -> dict:
    return {
        "windows": [asdict(w) for w in windows],
        "border_gains": [gains[k] / gains[k - 1] for k in range(1, len(gains))],
        "gains": gains,
        "flicker": flicker,  # the blended, aligned join
        "flicker_naive": naive,  # hard cut mid-overlap, no gains: what the blend and alignment remove
        "tasks": tasks,  # each window's summary (steps, timings, skipped on resume)
    }
