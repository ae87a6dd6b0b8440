"""Rendering the trained model: scene-only irradiance in large tiles, and display transforms."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from vidcam.models.model import LOG_FLOOR, VidcamModel

LUMA_709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


@torch.no_grad()
def render_frame(
    model: VidcamModel,
    t: int,
    chunk: int,
    evaluate: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> np.ndarray:
    """Evaluate ``evaluate(xy, t)`` (default: sharp scene irradiance) at every pixel of frame t.

    Returns float32 [H, W, C]. The camera's blur generator is not involved: the render
    drops the camera.
    """
    evaluate = evaluate or model.irradiance
    frame = model.frame
    device = next(model.parameters()).device
    xy_all = frame.pixel_centres(device)
    outputs = []
    for start in range(0, xy_all.shape[0], chunk):
        xy = xy_all[start : start + chunk]
        t_index = torch.full((xy.shape[0],), t, device=device, dtype=torch.long)
        outputs.append(evaluate(xy, t_index).float().cpu())
    return torch.cat(outputs).view(frame.height, frame.width, -1).numpy()


def recorded_by_camera(model: VidcamModel, log_exposure: float | None = None) -> Callable[[Tensor, Tensor], Tensor]:
    """Sharp irradiance through the learned tone mapper: what a blur-free camera would record.

    ``log_exposure`` None uses each frame's own learned exposure.
    """

    def evaluate(xy: Tensor, t: Tensor) -> Tensor:
        log_irradiance = model.irradiance(xy, t).clamp_min(LOG_FLOOR).log()
        exposure = model.exposures(t) if log_exposure is None else torch.full_like(t, log_exposure, dtype=torch.float32)
        return model.tone(log_irradiance, exposure)

    return evaluate


def exposure_scale(hdr: np.ndarray, key: float) -> float:
    """Scale putting the clip's log-average luminance at ``key`` (Reinhard's auto exposure)."""
    luminance = hdr @ LUMA_709
    return float(key / np.exp(np.log(np.maximum(luminance, 1e-6)).mean()))


def tonemap_aces(hdr: np.ndarray) -> np.ndarray:
    """Narkowicz's fit of the ACES filmic curve, on linear values; output linear [0, 1]."""
    x = np.maximum(hdr, 0) * 0.6  # the fit expects ACES exposure, 0.6 of scene linear
    return np.clip((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0, 1)


def tonemap_reinhard(hdr: np.ndarray, white: float | None = None) -> np.ndarray:
    """Reinhard's extended global operator on luminance, colour ratios kept."""
    luminance = np.maximum(hdr @ LUMA_709, 1e-9)[..., None]
    white = white or float(np.percentile(luminance, 99.9))
    mapped = luminance * (1 + luminance / white**2) / (1 + luminance)
    return np.clip(hdr / luminance * mapped, 0, 1)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


TONEMAPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"aces": tonemap_aces, "reinhard": tonemap_reinhard}


def sdr_operator(tonemap: str, mode: str) -> str:
    """The SDR operator a run uses: ``auto`` is ACES for HDR and the learned camera for deblurring."""
    if tonemap != "auto":
        return tonemap
    return "aces" if mode == "hdr" else "camera"


def display_sdr(hdr: np.ndarray, operator: str) -> np.ndarray:
    """Exposure-normalised linear HDR -> 8-bit sRGB with a global operator."""
    return to_uint8(srgb_encode(TONEMAPS[operator](hdr)))


def display_clip(hdr: np.ndarray, operator: str) -> np.ndarray:
    """Like ``display_sdr`` for a whole clip [N,H,W,3], with one white point for all frames (no flicker)."""
    if operator == "reinhard":
        white = float(np.percentile(np.maximum(hdr @ LUMA_709, 1e-9), 99.9))
        return np.stack([to_uint8(srgb_encode(tonemap_reinhard(frame, white))) for frame in hdr])
    return np.stack([display_sdr(frame, operator) for frame in hdr])
