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
from vidcam.io.video import Clip, iter_video, output_size

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


def as_float(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) / np.float32(np.iinfo(frame.dtype).max)


def upscale_pixels(result: np.ndarray, full_input: np.ndarray) -> np.ndarray:
    """Pixel values [h,w,3] at the fit size -> [H,W,3] at ``full_input``'s size, with its finer detail."""
    observed = as_float(full_input)
    height, width = observed.shape[:2]
    detail = observed - round_trip(observed, (result.shape[1], result.shape[0]))
    up = _resize(np.ascontiguousarray(result, np.float32), (width, height), cv2.INTER_LINEAR)
    return np.clip(up + detail, 0, 1)


def upscale_irradiance(result: np.ndarray, full_input: np.ndarray, inverse: InverseTone, rc: RenderConfig) -> np.ndarray:
    """Irradiance [h,w,3] at the fit size -> [H,W,3] at ``full_input``'s size, with the input's finer
    detail as a linear-light ratio (see the module doc)."""
    observed = as_float(full_input)
    height, width = observed.shape[:2]
    up = _resize(np.ascontiguousarray(result, np.float32), (width, height), cv2.INTER_LINEAR)
    # Any exposure will do: only the ratio to its own round trip is used. Black and clipped values
    # are held at the ends of the trusted range, or a clipped neighbour's extrapolated irradiance
    # would swamp the round trip of the well-exposed pixels beside it.
    linear = np.exp(inverse(np.clip(observed, rc.fidelity_black, rc.fidelity_clip)))
    smooth = round_trip(linear, (result.shape[1], result.shape[0]))
    floor = np.float32(RATIO_FLOOR * float(linear.mean()))  # the response's scale is arbitrary
    log_ratio = np.log(linear + floor) - np.log(np.maximum(smooth, 0) + floor)
    weight = well_exposed(torch.from_numpy(observed), rc).numpy()
    return up * np.exp(weight * log_ratio)
