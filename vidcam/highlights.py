"""Highlights a frame clipped, taken from the neighbours that measured them, along the flow.

Where a frame is clipped it records only that the scene was brighter than its range. The atlas
render there is an extrapolation of a smooth network, and comes out far too bright; a neighbour
at a shorter exposure measured the same scene point. Each clipped pixel of frame ``t`` therefore
takes the irradiance its flow-linked neighbours (``t ± k`` for every flow gap ``k``, where the
flow is forward-backward consistent) recorded well exposed, linearised through the learned
inverse response and exposures: the scene's own per-frame values, so a moving person's bright
shirt is held as well as a static sky. Where no neighbour saw the point well exposed either, the
atlas render stays. Either way a clipped value is never left below the irradiance that clips the
frame's own exposure: that much the frame did measure.

Only clipped pixels are filled: in the shadows the atlas pools many frames and is less noisy than
one neighbour (filling black pixels too measured 1.2 dB lower PSNR-mu on a real-motion clip). The
fill comes after the fidelity guard, whose verdicts rest on the model's own render (the guard
keeps the model's values at clipped pixels, which the fill then replaces). On a rigid synthetic
scene, where the atlas pooled the short frames' highlights well, the fill measured 0.1-0.6 dB lower
PSNR-L; on real motion 0.5-2.0 dB higher.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np
import torch

from vidcam.config import RenderConfig
from vidcam.fidelity import InverseTone, well_exposed
from vidcam.io.video import as_float
from vidcam.models.model import VidcamModel
from vidcam.plan import RunPlan

BRIGHT = 0.5  # a pixel not well exposed above this value is clipped (below it, black)


def irradiance_ceiling(model: VidcamModel, rc: RenderConfig) -> np.ndarray:
    """Per channel ``[3]``: the most scene irradiance an HDR output holds, ``rc.highlight_headroom_stops``
    above the brightest the clip's shortest exposure records unclipped. Above that every frame was
    clipped and a value is only the network's extrapolation: on a real 1080p clip (a sunset behind
    a window, 6000 steps) it reached 10^5, past the largest half float an EXR holds (65504)."""
    clip_z = InverseTone(model)(np.full((1, 3), rc.fidelity_clip, np.float32))[0]
    with torch.no_grad():
        shortest = float(model.exposures.all().min())
    return np.exp(clip_z - shortest + rc.highlight_headroom_stops * math.log(2)).astype(np.float32)


class HighlightFill:
    """Fills frame ``t``'s clipped pixels from its flow-linked neighbours (module doc), one frame at a time."""

    def __init__(self, model: VidcamModel, frames: np.ndarray, flows: list[dict], rc: RenderConfig):
        """``frames``: the clip at the fit size ``[N, H, W, 3]`` (uint8/uint16); ``flows``: ``ClipData.flows``
        (per gap: ``gap``, ``flow`` ``[2, N-k, H, W, 2]`` forward then backward, ``valid`` ``[2, N-k, H, W]``)."""
        self.frames, self.flows, self.rc = frames, flows, rc
        self.filled: dict[int, float] = {}  # per frame: the fraction of its values taken from the neighbours
        self.inverse = InverseTone(model)
        # per channel: the log exposure a value at the clip level stands for
        self.clip_z = self.inverse(np.full((1, 3), rc.fidelity_clip, np.float32))[0]
        with torch.no_grad():
            self.log_exposure = model.exposures.all().float().cpu().numpy()

    @classmethod
    def for_run(cls, model: VidcamModel, frames: np.ndarray, flows: list[dict] | None, rc: RenderConfig, plan: RunPlan) -> HighlightFill | None:
        """The fill an HDR run's scene irradiance gets (``rc.highlight_fill``), or None: another mode,
        no flow, or an SDR output through the learned camera (pixel values, not irradiance)."""
        if plan.mode != "hdr" or plan.operator == "camera" or not rc.highlight_fill or not flows:
            return None
        return cls(model, frames, flows, rc)

    def summary(self) -> dict[str, list[float]]:
        """For the report: ``filled``, per frame in order, the fraction of values taken from the neighbours."""
        return {"filled": [self.filled[t] for t in sorted(self.filled)]}

    def trust(self, t: int) -> np.ndarray:
        """Per value of frame ``t`` ``[H, W, 3]``: 1 where it carries its irradiance, 0 black or clipped."""
        return well_exposed(torch.from_numpy(as_float(self.frames[t])), self.rc).numpy()

    def measured(self, t: int) -> np.ndarray:
        """Frame ``t``'s irradiance ``[H, W, 3]`` as recorded, values held inside the trusted range
        (near the response's flat ends a code value's inverse is arbitrarily large)."""
        pixels = np.clip(as_float(self.frames[t]), self.rc.fidelity_black, self.rc.fidelity_clip)
        return np.exp(self.inverse(pixels) - self.log_exposure[t])

    def links(self, t: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(neighbour, flow [H, W, 2], valid [H, W])`` for every flow gap, both directions, inside the clip."""
        for pair in self.flows:
            k = pair["gap"]
            if t + k < len(self.frames):
                yield t + k, pair["flow"][0, t], pair["valid"][0, t]
            if t - k >= 0:
                yield t - k, pair["flow"][1, t - k], pair["valid"][1, t - k]

    def __call__(self, t: int, irradiance: np.ndarray) -> np.ndarray:
        """Frame ``t``'s scene irradiance ``[H, W, 3]`` with its clipped pixels filled."""
        pixels = as_float(self.frames[t])
        clipped = (pixels > BRIGHT) * (1 - self.trust(t))
        if not clipped.any():
            self.filled[t] = 0.0
            return irradiance
        height, width = pixels.shape[:2]
        grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        total = np.zeros_like(irradiance, dtype=np.float32)
        weight = np.zeros_like(irradiance, dtype=np.float32)
        for neighbour, flow, valid in self.links(t):
            flow = flow.float().cpu().numpy()
            map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]

            def warped(image: np.ndarray) -> np.ndarray:
                return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

            w = warped(self.trust(neighbour)) * valid.float().cpu().numpy()[..., None]
            total += w * warped(self.measured(neighbour))
            weight += w
        share = clipped * weight / (weight + self.rc.highlight_fill_trust)
        self.filled[t] = round(float(share.mean()), 4)
        filled = (1 - share) * irradiance + share * total / np.maximum(weight, 1e-9)
        # A clipped value says the irradiance was at least what clips this frame's exposure.
        floor = np.exp(self.clip_z - self.log_exposure[t])
        return (filled + clipped * np.maximum(floor - filled, 0)).astype(np.float32)
