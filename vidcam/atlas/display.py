"""How an atlas picture is shown: the same transform as the run's ``enhanced.mp4``.

Runs whose output went through the learned camera (``tonemap: camera``, the deblur default)
show the atlas through the learned tone curve at the clip's mean exposure; the others (ACES
for HDR, or Reinhard) show it as sRGB(ACES(hdr_scale x irradiance)), the HDR default's own
transform. Both are per-channel monotone curves of log irradiance, tabulated once
(``DisplayCurve``) and inverted by interpolation, which is how an edited picture is taken
back to irradiance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vidcam.errors import VidcamError
from vidcam.models.camera import DEFAULT_Z_RANGE
from vidcam.models.model import VidcamModel
from vidcam.rendering import display_sdr, srgb_encode, tone_image, tonemap_aces
from vidcam.run import Run

CURVE_SAMPLES = 8192  # table resolution of a display curve
CURVE_MARGIN = 4.0  # log units beyond the training range of the learned tone curve
ACES_RANGE = (-12.0, 6.0)  # log(hdr_scale x irradiance) from black to well past ACES white
STRICT_STEP = 1e-9  # makes a flat stretch of a curve strictly increasing so it can be inverted


@dataclass
class DisplayCurve:
    """Per-channel monotone map between log irradiance z and an atlas picture's values in [0, 1].

    value_c = T_c(z + offset), with T_c tabulated on ``CURVE_SAMPLES`` points of
    ``[s_min, s_max]``: for ``kind`` "camera" the learned tone curve and offset the mean log
    exposure; for "aces" sRGB(ACES(exp(s))) and offset log(hdr_scale).
    """

    kind: str
    offset: float
    s_min: float
    s_max: float
    values: np.ndarray | None = field(default=None, repr=False)  # [K, 3], from tabulate()

    @property
    def s(self) -> np.ndarray:
        return np.linspace(self.s_min, self.s_max, CURVE_SAMPLES)

    def tabulate(self, model: VidcamModel) -> DisplayCurve:
        if self.kind == "camera":
            with torch.no_grad():
                s = torch.as_tensor(self.s, dtype=torch.float32, device=model.device)
                self.values = model.tone.curve(s).cpu().numpy().astype(np.float64)
        elif self.kind == "aces":
            self.values = np.repeat(srgb_encode(tonemap_aces(np.exp(self.s)))[:, None], 3, axis=1)
        else:
            raise VidcamError(f"unknown atlas display '{self.kind}'")
        return self

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Display values [..., 3] in [0, 1] of log irradiance z [..., 3]."""
        s, table = z + self.offset, self._table()
        return np.stack([np.interp(s[..., c], self.s, table[:, c]) for c in range(3)], axis=-1)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Log irradiance [..., 3] displayed as ``values`` [..., 3] (clamped to the table's ends)."""
        increasing = np.maximum.accumulate(self._table(), axis=0) + (np.arange(CURVE_SAMPLES) * STRICT_STEP)[:, None]
        channels = [np.interp(values[..., c], increasing[:, c], self.s) for c in range(3)]
        return np.stack(channels, axis=-1) - self.offset

    def _table(self) -> np.ndarray:
        if self.values is None:
            raise RuntimeError("DisplayCurve.tabulate(model) must run first")
        return self.values

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "offset": self.offset, "s_min": self.s_min, "s_max": self.s_max}


def display_curve(run: Run) -> DisplayCurve:
    """The atlas display matching the run's output (see the module docstring)."""
    if run.operator == "camera":
        mean_exposure = float(run.model.exposures.all().mean().detach())
        lo, hi = run.state.get("z_range", DEFAULT_Z_RANGE)
        curve = DisplayCurve("camera", mean_exposure, lo - CURVE_MARGIN, hi + CURVE_MARGIN)
    else:
        curve = DisplayCurve("aces", math.log(run.hdr_scale), *ACES_RANGE)
    return curve.tabulate(run.model)


def display_frame(run: Run, irradiance: np.ndarray, t: int) -> np.ndarray:
    """Sharp linear irradiance [H,W,3] of frame t displayed the way the run's enhanced.mp4 was."""
    if run.operator == "camera":
        return tone_image(run.model, irradiance, t, run.chunk)
    return display_sdr(irradiance * run.hdr_scale, run.operator)
