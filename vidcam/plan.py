"""The resolved plan of a run: every ``auto`` setting decided once, from the config and the clip.

``resolve(cfg, frames)`` never changes the config (which keeps the user's intent, ``auto``
included, so ``--resume`` resolves the same way); everything downstream — the model's shape,
training, rendering, export, ``atlas`` and ``edit`` — reads the decisions from the plan, which
is saved in the checkpoint and recorded in ``report.json``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidcam.config import Config
from vidcam.exposure import estimate_exposures, parse_exposures
from vidcam.io.video import as_float
from vidcam.log import log


@dataclass(frozen=True)
class RunPlan:
    mode: str  # hdr | deblur
    blur: bool  # the camera model has a blur generator (deblur mode unless camera.blur says otherwise)
    learn_exposure: bool  # per-frame exposures are trained (when they were estimated, not given)
    operator: str  # SDR transform of enhanced.mp4: camera (the learned response) | aces | reinhard
    log_exposure: tuple[float, ...]  # each frame's initial natural-log exposure
    exposure_source: str  # user | estimated
    exposure_period: int  # frames per exposure cycle; 1 when brightness does not alternate
    exposure_ratio: float  # longest / shortest exposure of the cycle

    @property
    def input_look(self) -> bool:
        """enhanced.mp4 keeps the input's look: deblurred through the learned camera, not tone-mapped."""
        return self.mode == "deblur" and self.operator == "camera"

    @property
    def initial_log_exposure(self) -> np.ndarray:
        return np.asarray(self.log_exposure, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"log_exposure": list(self.log_exposure)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunPlan:
        return cls(**{**data, "log_exposure": tuple(data["log_exposure"])})

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any], cfg: Config) -> RunPlan:
        """The plan a checkpoint was trained with (runs saved before plans existed: from their config,
        into which they wrote the resolved mode)."""
        if "plan" in state:
            return cls.from_dict(state["plan"])
        shape = state["shape"]
        mode = cfg.mode if cfg.mode != "auto" else ("deblur" if shape["blur"] else "hdr")
        learn = bool(cfg.camera.learn_exposure) if cfg.camera.learn_exposure is not None else True
        zeros = (0.0,) * shape["n_frames"]
        return cls(mode, shape["blur"], learn, sdr_operator(cfg.render.tonemap, mode), zeros, "unknown", 1, 1.0)

    def describe_exposures(self) -> str:
        relative = np.exp(self.initial_log_exposure - min(self.log_exposure))
        pattern = relative[: min(4, relative.size)]
        return "pattern " + ", ".join(f"{v:.2g}" for v in pattern) + ("..." if relative.size > 4 else "")


def sdr_operator(tonemap: str, mode: str) -> str:
    """The SDR operator a run uses: ``auto`` is ACES for HDR and the learned camera for deblurring."""
    if tonemap != "auto":
        return tonemap
    return "aces" if mode == "hdr" else "camera"


PLAN_MAX_PIXELS = 20_000_000  # pixels of the whole clip the plan is decided on, at most


def plan_frames(frames: np.ndarray) -> np.ndarray:
    """``frames`` [N,H,W,3] (uint8/uint16) as float32 in [0, 1], every k-th row and column with k as
    small as keeps the clip under ``PLAN_MAX_PIXELS``: the plan needs statistics, not every pixel,
    and a 300-frame clip's float copy at 640x360 alone would be 0.8 GB."""
    n, height, width = frames.shape[:3]
    stride = max(1, math.ceil(math.sqrt(n * height * width / PLAN_MAX_PIXELS)))
    return as_float(frames[:, ::stride, ::stride])


def resolve(cfg: Config, frames: np.ndarray) -> RunPlan:
    """Decide mode, blur, exposures, exposure learning and the SDR operator for ``frames`` [N,H,W,3] float."""
    n = frames.shape[0]
    if cfg.exposures is not None:
        log_exposure = parse_exposures(cfg.exposures, n, cfg.ev)
        period = _cycle_length(log_exposure)
        ratio = float(np.exp(np.ptp(log_exposure)))
        source = "user"
    else:
        estimate = estimate_exposures(frames)
        log_exposure, period, ratio = estimate.log_exposure, estimate.period, estimate.ratio
        source = "estimated"
    alternating = bool(np.ptp(log_exposure) > 1e-6)
    mode = cfg.mode if cfg.mode != "auto" else ("hdr" if alternating else "deblur")
    if mode == "hdr" and not alternating:
        log("HDR mode on a clip whose brightness does not alternate: expect little dynamic range gained")
    blur = cfg.camera.blur if cfg.camera.blur is not None else mode == "deblur"
    learn = cfg.camera.learn_exposure if cfg.camera.learn_exposure is not None else source == "estimated"
    return RunPlan(
        mode=mode,
        blur=blur,
        learn_exposure=learn,
        operator=sdr_operator(cfg.render.tonemap, mode),
        log_exposure=tuple(float(v) for v in log_exposure),
        exposure_source=source,
        exposure_period=period,
        exposure_ratio=ratio,
    )


def _cycle_length(log_exposure: np.ndarray) -> int:
    """The shortest period with which the given exposures repeat (the clip's length when they don't)."""
    n = log_exposure.size
    for period in range(1, n):
        if np.allclose(log_exposure[period:], log_exposure[:-period]):
            return period
    return n
