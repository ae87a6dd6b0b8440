"""Scene plus camera: what the camera would have recorded at a pixel, and what the scene really was."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from vidcam.config import Config
from vidcam.models.camera import Exposures, ToneMapper, make_blur
from vidcam.models.scene import Frame, LayeredScene

LOG_FLOOR = 1e-8  # irradiance floor before taking logs


@dataclass
class ClipShape:
    """What a checkpoint needs, beside the config, to rebuild its model."""

    n_frames: int
    height: int
    width: int
    blur: bool
    learn_exposure: bool = True  # per-frame exposures are parameters (else fixed buffers)
    atlas_resolutions: list[int] | None = None  # filled in when the model is first built
    still_frames: list[int] | None = None  # deblur: frames as sharp as the input gets, whose PSF stays a delta
    atlas_dynamics: bool = False  # the atlases change over time (scene.atlas_dynamics)


class VidcamModel(nn.Module):
    def __init__(
        self,
        cfg: Config,
        shape: ClipShape,
        log_exposure: np.ndarray | None = None,
        motions: list[np.ndarray | None] | None = None,
    ):
        super().__init__()
        self.frame = Frame(shape.n_frames, shape.height, shape.width)
        self.scene = LayeredScene(cfg.scene, self.frame, motions, shape.atlas_resolutions, shape.atlas_dynamics)
        self.shape = replace(shape, atlas_resolutions=self.scene.atlas_resolutions)
        self.tone = ToneMapper(cfg.camera.tone_hidden, cfg.camera.tone_layers)
        if log_exposure is None:
            log_exposure = np.zeros(shape.n_frames)
        self.exposures = Exposures(log_exposure, shape.learn_exposure, cfg.camera.exposure_bound_ev)
        self.blur = make_blur(cfg.camera, shape.n_frames, self.frame.pixel_size, shape.still_frames) if shape.blur else None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def irradiance(self, xy: Tensor, t: Tensor) -> Tensor:
        """Sharp scene irradiance [B,3]: what is rendered once the camera is dropped."""
        return self.scene(xy, t)["irradiance"]

    def forward(self, xy: Tensor, t: Tensor) -> dict[str, Tensor]:
        """The recorded pixel value [B,3] and the scene outputs behind it."""
        if self.blur is None:
            out = self.scene(xy, t)
            recorded_irradiance = out["irradiance"]
        else:
            offsets, weights = self.blur(torch.cat([xy, self.frame.time(t)[:, None]], dim=1))
            out = self.scene(xy, t, offsets)
            recorded_irradiance = (weights[..., None].float() * out["irradiance"]).sum(1)
        log_irradiance = recorded_irradiance.clamp_min(LOG_FLOOR).log()
        out["log_irradiance"] = log_irradiance
        out["rgb"] = self.tone(log_irradiance, self.exposures(t))
        return out

    def meta(self) -> dict:
        return asdict(self.shape)
