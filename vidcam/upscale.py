"""Output at the video's size from a model fitted at a smaller one.

Flow, training and the fidelity guard run at ``io.fit_side`` (640 px by default): their memory and
time follow the fit size whatever the video's. The output is written at the decoded size: each
frame is the fit-size result upsampled (bilinear) with the input's own detail above the fit's
scale put back. That detail is the full-size input against its own round trip through the fit
size (area down, bilinear up), i.e. exactly what the fit could not see:

- pixel values (deblur, camera output): ``out = up(result) + (input - up(down(input)))``;
- irradiance (HDR): in linear light through the learned inverse response, as a ratio, so that
  neither the frame's exposure nor a window's scale matters:
  ``out = up(result) * (lin / up(down(lin)))^w``, ``w`` ramping to 0 at black and clipped input
  pixels (they carry no detail). Weighting short frames' detail down by their exposure (their
  detail is partly amplified noise) measured worse: 25.04 against 25.13 dB PSNR-mu on a synthetic
  320x180 clip fitted at 160 px (24.66 without detail, 26.45 fitted at 320).

The input's full-size frames are decoded a second time, one at a time (``iter_video``), so the
clip is never held at the video's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from vidcam.config import IOConfig, RenderConfig
from vidcam.fidelity import InverseTone, well_exposed
from vidcam.io.video import Clip, as_float, iter_video, output_size

RATIO_FLOOR = 1e-3  # of the frame's mean linear value: the ratio's floor (black pixels carry no detail anyway)


def fit_max_side(io: IOConfig) -> int | None:
    """The longest side frames are decoded at for the fit: ``io.max_side`` and ``io.fit_side``, whichever is smaller."""
    sides = [side for side in (io.max_side, io.fit_side) if side is not None]
    return min(sides) if sides else None


def _resize(image: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    return cv2.resize(image, size, interpolation=interpolation)


def round_trip(image: np.ndarray, fit_size: tuple[int, int]) -> np.ndarray:
    """``image`` [H,W,C] float32 downscaled to ``fit_size`` (w, h) as the fit saw it and upsampled back."""
    height, width = image.shape[:2]
    return _resize(_resize(image, fit_size, cv2.INTER_AREA), (width, height), cv2.INTER_LINEAR)


@dataclass
class OutputFrames:
    """The input at the output size, frame by frame, and the upscaling of fit-size results onto it."""

    clip: Clip  # the clip as fitted (fit size)
    start: int  # first source frame
    size: tuple[int, int]  # (width, height) of the output

    @classmethod
    def for_clip(cls, clip: Clip, io: IOConfig) -> OutputFrames:
        return cls(clip, int(clip.frame_indices[0]), output_size(clip.info.width, clip.info.height, io.max_side))

    @property
    def fit_size(self) -> tuple[int, int]:
        return self.clip.width, self.clip.height

    @property
    def upscaled(self) -> bool:
        return self.size != self.fit_size

    def inputs(self) -> Iterator[np.ndarray]:
        """Each input frame at the output size (uint8 or uint16), in order."""
        if not self.upscaled:
            yield from self.clip.frames
            return
        yield from iter_video(Path(self.clip.info.path), self.start, self.clip.n_frames, max(self.size))


def upscale_pixels(result: np.ndarray, full_input: np.ndarray) -> np.ndarray:
    """Pixel values [h,w,3] at the fit size -> [H,W,3] at ``full_input``'s size, with its finer detail."""
    observed = as_float(full_input)
    height, width = observed.shape[:2]
    detail = observed - round_trip(observed, (result.shape[1], result.shape[0]))
    up = _resize(np.ascontiguousarray(result, np.float32), (width, height), cv2.INTER_LINEAR)
    return np.clip(up + detail, 0, 1)


class DetailTables:
    """Per input code value and channel: linear light through the inverse response (black and
    clipped values held at the ends of the trusted range, or a clipped neighbour's extrapolated
    irradiance would swamp the round trip of the well-exposed pixels beside it), its log, and the
    weight of its detail. Looked up per pixel, as a lookup table: a 1080p frame's inverse response
    by interpolation took 0.3 s."""

    def __init__(self, inverse: InverseTone, rc: RenderConfig, levels: int = 256):
        codes = np.repeat((np.arange(levels, dtype=np.float32) / (levels - 1))[:, None], 3, axis=1)
        # Any exposure will do: only the ratio of linear light to its own round trip is used.
        self.linear = np.exp(inverse(np.clip(codes, rc.fidelity_black, rc.fidelity_clip))).astype(np.float32)
        self.floor = np.float32(RATIO_FLOOR * float(self.linear[levels // 2].mean()))  # the response's scale is arbitrary
        self.log_linear = np.log(self.linear + self.floor)
        self.weight = well_exposed(torch.from_numpy(codes), rc).numpy().astype(np.float32)

    @staticmethod
    def lookup(table: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """``table`` [levels, 3] at every pixel of ``frame`` [H,W,3] (its code values) -> [H,W,3] float32."""
        if frame.dtype == np.uint8:
            return cv2.LUT(frame, table[None])
        return table[frame, np.arange(3)]


def upscale_irradiance(result: np.ndarray, full_input: np.ndarray, tables: DetailTables) -> np.ndarray:
    """Irradiance [h,w,3] at the fit size -> [H,W,3] at ``full_input``'s size (code values), with
    the input's finer detail as a linear-light ratio (see the module doc)."""
    height, width = full_input.shape[:2]
    up = _resize(np.ascontiguousarray(result, np.float32), (width, height), cv2.INTER_LINEAR)
    smooth = round_trip(tables.lookup(tables.linear, full_input), (result.shape[1], result.shape[0]))
    log_ratio = tables.lookup(tables.log_linear, full_input) - cv2.log(np.maximum(smooth, 0) + tables.floor)
    return up * cv2.exp(tables.lookup(tables.weight, full_input) * log_ratio)
