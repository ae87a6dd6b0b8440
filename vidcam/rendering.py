"""Rendering a trained model: any per-pixel function of (x, y, t) over whole frames, and the
display transforms from linear HDR to 8-bit SDR.

One render path serves every output: ``render_frame`` evaluates an ``Evaluate`` function
(default: the sharp scene irradiance, i.e. the camera dropped) at every pixel of a frame in
chunks without autograd; ``render_frames`` / ``render_clip`` do it for the clip with progress.
``through_camera`` wraps any irradiance function in the learned tone mapper (what a blur-free
camera would record); the export, ``vidcam atlas`` and ``vidcam edit`` all build on these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from vidcam.models.model import LOG_FLOOR, VidcamModel
from vidcam.progress import progress

LUMA_709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)

Evaluate = Callable[[Tensor, Tensor], Tensor]  # (model xy [B,2], frame index long [B]) -> [B, C]


def in_chunks(function: Callable[[Tensor], Tensor], inputs: Tensor, chunk: int) -> Tensor:
    """``function`` applied to ``inputs`` [M, ...] ``chunk`` rows at a time, results concatenated on the CPU (float32)."""
    return torch.cat([function(inputs[start : start + chunk]).float().cpu() for start in range(0, inputs.shape[0], chunk)])


@torch.no_grad()
def render_frame(model: VidcamModel, t: int, chunk: int, evaluate: Evaluate | None = None) -> np.ndarray:
    """Evaluate ``evaluate(xy, t)`` (default: sharp scene irradiance) at every pixel of frame t.

    Returns float32 [H, W, C]. The camera's blur generator is not involved: the render
    drops the camera.
    """
    evaluate = evaluate or model.irradiance
    frame, device = model.frame, model.device

    def at_frame_t(xy: Tensor) -> Tensor:
        return evaluate(xy, torch.full((xy.shape[0],), t, device=device, dtype=torch.long))

    return in_chunks(at_frame_t, frame.pixel_centres(device), chunk).view(frame.height, frame.width, -1).numpy()


def render_frames(
    model: VidcamModel,
    chunk: int,
    evaluate: Evaluate | None = None,
    desc: str = "render",
    frames: Sequence[int] | None = None,
) -> Iterator[np.ndarray]:
    """``render_frame`` for every frame in order (or for ``frames``), with a progress bar."""
    for t in progress(range(model.frame.n_frames) if frames is None else frames, desc, unit="frame", leave=False):
        yield render_frame(model, t, chunk, evaluate)


def render_clip(model: VidcamModel, chunk: int, evaluate: Evaluate | None = None, desc: str = "render") -> np.ndarray:
    """[N,H,W,C] float32 of ``evaluate`` (default: sharp irradiance) over every frame."""
    return np.stack(list(render_frames(model, chunk, evaluate, desc)))


def through_camera(
    model: VidcamModel, irradiance: Evaluate | None = None, log_exposure: float | Tensor | None = None
) -> Evaluate:
    """``irradiance`` (default: the sharp scene) through the learned tone mapper: what a blur-free
    camera would record. ``log_exposure``: None uses each frame's own learned exposure, a float
    one exposure for every frame, a tensor [N] one per frame of the clip (natural logs)."""
    irradiance = irradiance or model.irradiance
    per_frame = log_exposure.to(model.device, torch.float32) if isinstance(log_exposure, Tensor) else None

    def evaluate(xy: Tensor, t: Tensor) -> Tensor:
        log_irradiance = irradiance(xy, t).clamp_min(LOG_FLOOR).log()
        if per_frame is not None:
            exposure = per_frame[t]
        elif log_exposure is None:
            exposure = model.exposures(t)
        else:
            exposure = torch.full_like(t, log_exposure, dtype=torch.float32)
        return model.tone(log_irradiance, exposure)

    return evaluate


def recorded_irradiance(model: VidcamModel) -> Evaluate:
    """The irradiance the sensor integrated, the learned blur included (the sharp scene for a
    run without blur): what the tone mapper was fed in training, so ``through_camera`` of it at
    each frame's own exposure is the model's own re-render of the input."""

    def evaluate(xy: Tensor, t: Tensor) -> Tensor:
        return model(xy, t)["log_irradiance"].exp()

    return evaluate


@torch.no_grad()
def tone_image(model: VidcamModel, irradiance: np.ndarray, t: int, chunk: int) -> np.ndarray:
    """Linear irradiance [H,W,3] through the learned camera at frame t's exposure, uint8."""
    device = model.device

    def tone(part: Tensor) -> Tensor:
        exposure = model.exposures(torch.full((part.shape[0],), t, device=device, dtype=torch.long))
        return model.tone(part.clamp_min(LOG_FLOOR).log(), exposure)

    flat = torch.as_tensor(irradiance.reshape(-1, 3), device=device)
    return to_uint8(in_chunks(tone, flat, chunk).view(irradiance.shape).numpy())


# ----------------------------------------------------------------------------- display


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


def display_sdr(hdr: np.ndarray, operator: str) -> np.ndarray:
    """Exposure-normalised linear HDR -> 8-bit sRGB with a global operator."""
    return to_uint8(srgb_encode(TONEMAPS[operator](hdr)))


def reinhard_white(hdr: np.ndarray) -> float:
    """The white point ``display_clip`` gives Reinhard's operator for a clip: the 99.9th percentile of luminance."""
    return float(np.percentile(np.maximum(hdr @ LUMA_709, 1e-9), 99.9))


def display_linear(hdr: np.ndarray, operator: str, white: float | None = None) -> np.ndarray:
    """Exposure-normalised linear HDR -> sRGB float32 in [0, 1] (``white``: Reinhard's white point)."""
    mapped = tonemap_reinhard(hdr, white) if operator == "reinhard" else TONEMAPS[operator](hdr)
    return srgb_encode(mapped).astype(np.float32)


def display_clip(hdr: np.ndarray, operator: str) -> np.ndarray:
    """Like ``display_sdr`` for a whole clip [N,H,W,3], with one white point for all frames (no flicker)."""
    if operator == "reinhard":
        white = reinhard_white(hdr)
        return np.stack([to_uint8(srgb_encode(tonemap_reinhard(frame, white))) for frame in hdr])
    return np.stack([display_sdr(frame, operator) for frame in hdr])
