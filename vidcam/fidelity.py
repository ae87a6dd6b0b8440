"""The fidelity guard: the output is never worse than the input where the scene model fails.

The fitted model knows how well it explains each recorded pixel: rendered *through* its learned
camera (blur, tone response, exposure) it should reproduce the input up to noise. Where it does,
its camera-free render is trusted; where it does not (a moving person the atlases cannot hold, an
object seen in one frame), the input is. Per pixel the output blends two estimates of the true
frame, weighted like a Wiener combination of two independent errors:

* the input, whose expected squared error is ``E_in = blur + noise``: ``blur`` is how much the
  learned PSF changes the content here, the model's own sharp-minus-blurred render, capped at
  ``reblur_cap`` times what the PSF changes in the input once more (model-independent, but
  re-blurring a blurred frame shows only a third to a sixth of its loss: alone it cost heavily
  blurred frames 0.3-0.6 dB on a real hand-held clip, 1 dB on a synthetic one),
  ``noise`` the residual level that counts as noise (0 for the input's error once clipped or black
  pixels are handled separately). The render resolves less than the truth, so its sharp-minus-
  blurred difference understates the blur; deblurring therefore scales the frame's ``blur`` map up
  until its mean is what the frame's PSF changes in the nearest sharp input frame, when that is
  more (``FidelityGuard.content_blur``);
* the model's render, whose expected squared error is ``U = gain * max(R - noise, 0)``: ``R`` is the
  local energy of the re-render residual ``input - recorded`` (what the model did not explain, in
  pixel values), ``gain`` the ratio of the camera-free render's error to that residual (blur hides
  part of a sharp error from the residual, so ``gain >= 1``). Deblurring also measures ``U``
  outright where it can: on a frame sharp enough to be kept whole the input *is* the true frame
  (up to noise), so the render's error there is known, and a blurred frame's ``U`` is at least
  that of the nearest such frame (``measured_model_error``). Blur hides a render's error from the
  residual in just the frames to be deblurred; on a real hand-held clip the residual alone put
  5 of 17 blurred frames 0.3-0.8 dB below their input.

The weight on the model is ``w = E_in / (E_in + U)``. A frame whose estimated output error is not
clearly below its input's (``mean(w^2 U + (1-w)^2 E_in)`` above ``frame_keep`` times
``mean(E_in)``: a gain too small to be sure of) is taken from the input whole. So is a frame that
one weight from its mean energies would not improve, the model's error taken as correlated with
the input's blur error (``blend_by_means``): the two fail at the same moving edges, and the local
estimates, right on a frame's average, misplace its errors; on real hand-held clips the local
rule alone let lightly blurred frames lose up to 1.2 dB. A longer fit does not remove this: it
re-renders a lightly blurred frame better while its sharp render may still sit a little off along
the blur's path, which the re-render cannot show. So is a frame with nearly the detail of the
sharpest frame near it, or nearly its ratio of fine to coarse detail (``sharp_frames``,
``sharp_by_ratio``). The input's blur error is also bounded per frame from the input alone
(``blur_loss``): a model that wrongly believes a sharp frame blurred would otherwise claim a gain
there.

Deblur output (pixel values): ``out = w (sharp + lowpass(r)) + (1 - w) input``; the blur keeps the
low frequencies, so the low-pass residual maps one to one onto the sharp render.
HDR / irradiance output: the input gives irradiance ``T^-1(input) / exposure`` where it is well
exposed; where it is black or clipped the model is the only source (``w = 1``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidcam.config import RenderConfig
from vidcam.io.encode import write_sdr_video
from vidcam.io.video import as_float
from vidcam.fast_render import frame_renderer, tone_tabulated
from vidcam.log import frame_ranges, log
from vidcam.models.model import VidcamModel
from vidcam.rendering import render_frame

SHARP_TILES = 4  # sharp_frames compares frames tile by tile on this grid per side
FINE_COARSE_PX = (1.0, 3.0)  # fine_to_coarse: high-pass scales (Gaussian sigma) of fine and of coarser detail
POOR_CONFIDENCE = 0.5  # deblur: a frame whose mean weight on the model is below this is reported as poorly explained
# HDR: a frame whose re-render is below this (dB) is. Its weight on the model is low wherever the input
# is well exposed, by design (the input records the irradiance there), so it says nothing of failure.
# The bundled demo re-renders at 33.5 dB at worst; a real 3-exposure clip's longer frames at 27.6-30.
POOR_RERENDER_DB = 30.0
INVERSE_TONE_SAMPLES = 4096  # grid of the tabulated inverse response
INVERSE_TONE_Z = (-12.0, 12.0)  # log exposure range it covers


def _check_image(name: str, x: Tensor, channels: int | None = 3) -> None:
    if x.dim() != 3 or (channels is not None and x.shape[-1] != channels):
        raise ValueError(f"{name} must be [H, W, {channels or 'C'}], got {tuple(x.shape)}")


def gaussian_blur(image: Tensor, sigma_px: float) -> Tensor:
    """Separable Gaussian blur of ``[H, W, C]`` (reflected borders); ``sigma_px <= 0`` returns it unchanged."""
    _check_image("image", image, None)
    if sigma_px <= 0:
        return image
    radius = max(1, int(math.ceil(3 * sigma_px)))
    radius = min(radius, image.shape[0] - 1, image.shape[1] - 1)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=image.device)
    kernel = torch.exp(-0.5 * (taps / sigma_px) ** 2)
    kernel = kernel / kernel.sum()
    x = image.permute(2, 0, 1)[:, None].float()  # [C, 1, H, W]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return x[:, 0].permute(1, 2, 0)


class InverseTone:
    """The learned response ``T_c(z)`` inverted per channel by tabulation: pixel value -> log exposure ``z``.

    ``T_c`` is monotone (a training loss keeps it so); the table is made monotone with a running
    maximum so that small dips cannot make the inverse multi-valued.
    """

    def __init__(self, model: VidcamModel, samples: int = INVERSE_TONE_SAMPLES, z_range: tuple[float, float] = INVERSE_TONE_Z):
        device = model.device
        with torch.no_grad():
            z = torch.linspace(*z_range, samples, device=device)
            curve = model.tone.curve(z).float()  # [M, 3]
        self.z = z.cpu().numpy().astype(np.float64)
        self.values = np.maximum.accumulate(curve.cpu().numpy().astype(np.float64), axis=0)

    @classmethod
    def from_table(cls, z: np.ndarray, values: np.ndarray) -> InverseTone:
        """The inverse of a response tabulated earlier (``z`` [M], ``values`` [M, 3]: a saved run's)."""
        inverse = cls.__new__(cls)
        inverse.z, inverse.values = np.asarray(z, np.float64), np.asarray(values, np.float64)
        return inverse

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Log exposure ``z`` ``[..., 3]`` for pixel values ``[..., 3]`` in [0, 1] (clamped to the table's ends)."""
        if pixels.shape[-1] != 3:
            raise ValueError(f"pixels must end in 3 channels, got {pixels.shape}")
        out = np.empty(pixels.shape, np.float32)
        for c in range(3):
            out[..., c] = np.interp(pixels[..., c], self.values[:, c], self.z)
        return out


@dataclass
class FrameRenders:
    """What the model says about one frame, ``[H, W, 3]`` each, on the CPU."""

    sharp_irradiance: Tensor  # camera-free scene irradiance
    sharp: Tensor  # that irradiance through the tone response at the frame's exposure, no blur
    recorded: Tensor  # the model's re-render of the input: blur + response + exposure
    input_reblurred: Tensor  # the input blurred once more by the learned PSF (the input itself without blur)
    log_exposure: float
    psf_variance: Tensor | None = None  # [H, W] the learned PSF's variance (px^2) about its centroid; None without blur


def _psf_blur(model: VidcamModel, t: int, images: list[Tensor], chunk: int) -> tuple[list[Tensor], Tensor]:
    """Blur each ``[H, W, C]`` image of frame ``t`` by the learned PSF: ``sum_k w_k image(p + offset_k)``
    (bilinear); and the PSF's variance about its centroid ``[H, W]`` (px^2)."""
    frame = model.frame
    device = model.device
    stacked = torch.cat(images, dim=-1).permute(2, 0, 1)[None].float().to(device)  # [1, C, H, W]
    xy_all = frame.pixel_centres(device)
    centre = xy_all.new_tensor([frame.width / 2, frame.height / 2])
    out, variance = [], []
    for start in range(0, xy_all.shape[0], chunk):
        xy = xy_all[start : start + chunk]
        t_index = torch.full((xy.shape[0],), t, device=device, dtype=torch.long)
        xyt = torch.cat([xy, frame.time(t_index)[:, None]], dim=1)
        offsets, weights = model.blur(xyt)  # [B, K, 2] model units, [B, K]
        offsets_px, weights = offsets.float() / frame.pixel_size, weights.float()
        at = xy[:, None] / frame.pixel_size + offsets_px + centre  # px
        grid = torch.stack([at[..., 0] / frame.width * 2 - 1, at[..., 1] / frame.height * 2 - 1], dim=-1)
        sampled = F.grid_sample(stacked, grid[None], mode="bilinear", padding_mode="border", align_corners=False)
        out.append((sampled[0].permute(1, 2, 0) * weights[..., None]).sum(1).cpu())  # [B, C]
        centroid = (weights[..., None] * offsets_px).sum(1, keepdim=True)
        variance.append((weights * (offsets_px - centroid).square().sum(-1)).sum(1).cpu())
    blurred = torch.cat(out).reshape(frame.height, frame.width, -1)
    return list(torch.split(blurred, [im.shape[-1] for im in images], dim=-1)), torch.cat(variance).reshape(frame.height, frame.width)


@torch.no_grad()
def tone_pixels(model: VidcamModel, irradiance: Tensor, log_exposure: float) -> Tensor:
    """Irradiance ``[H, W, 3]`` through the learned response at ``log_exposure``, on the CPU."""
    # Tabulated: the tone network at every pixel cost 0.77 s a 640x360 frame, the table 0.02 s.
    values = tone_tabulated(model, irradiance.reshape(-1, 3).to(model.device), log_exposure)
    return values.float().cpu().reshape(irradiance.shape)


@torch.no_grad()
def render_through_camera(
    model: VidcamModel, t: int, chunk: int, input_frame: Tensor, sharp_irradiance: np.ndarray | None = None
) -> FrameRenders:
    """Render frame ``t`` with and without the camera, and re-blur ``input_frame`` ``[H, W, 3]`` by its PSF.
    ``sharp_irradiance`` [H, W, 3]: the frame's scene render when the caller has it already.

    The recorded (blurred) render applies the learned PSF to the sharp render's image rather than
    evaluating the scene at every PSF sample: the same up to bilinear interpolation and the frame's
    border, at the cost of one sharp render instead of ``K``.
    """
    _check_image("input_frame", input_frame)
    frame = model.frame
    if tuple(input_frame.shape[:2]) != (frame.height, frame.width):
        raise ValueError(f"input frame is {tuple(input_frame.shape[:2])}, the model {frame.height}x{frame.width}")
    device = model.device
    if sharp_irradiance is None:
        sharp_irradiance = render_frame(model, t, chunk)
    sharp_irradiance = torch.from_numpy(np.ascontiguousarray(sharp_irradiance, np.float32))
    log_exposure = float(model.exposures(torch.tensor([t], device=device)))

    input_frame = input_frame.float()
    sharp = tone_pixels(model, sharp_irradiance, log_exposure)
    psf_variance = None
    if model.blur is None:
        recorded, input_reblurred = sharp, input_frame
    else:
        (recorded_irradiance, input_reblurred), psf_variance = _psf_blur(model, t, [sharp_irradiance, input_frame], chunk)
        recorded = tone_pixels(model, recorded_irradiance, log_exposure)
    return FrameRenders(
        sharp_irradiance=sharp_irradiance,
        sharp=sharp,
        recorded=recorded,
        input_reblurred=input_reblurred,
        log_exposure=log_exposure,
        psf_variance=psf_variance,
    )


@dataclass
class FrameVerdict:
    """The guard's decision for one frame."""

    weight: Tensor  # [H, W] weight on the model's render (the confidence), 1 = model, 0 = input
    rerender_psnr: float  # the model's re-render of the input against the input, dB
    expected_gain_db: float  # estimated output-over-input PSNR gain (0 when guarded)
    guarded: bool  # the whole frame was taken from the input


def detail_energy(frame: np.ndarray, sigma_px: float, grid: int = 1) -> np.ndarray:
    """Mean squared high-pass (frame minus its Gaussian blur) of a frame ``[H, W, 3]`` in [0, 1]: the
    detail blur removes, over the whole frame (``grid`` 1: shape ``[1]``) or per tile of a
    ``grid`` x ``grid`` split (``[grid * grid]``)."""
    image = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32))
    energy = (image - gaussian_blur(image, sigma_px)).square().mean(-1).numpy()
    rows = np.array_split(energy, grid, axis=0)
    return np.array([tile.mean() for row in rows for tile in np.array_split(row, grid, axis=1)])


def blur_loss(detail: np.ndarray, neighbours: int) -> np.ndarray:
    """Per frame ``[N]``: detail energy missing against the most detailed frame within ``neighbours`` either side.

    Nearby frames see much the same scene; the detail a frame lacks against the sharpest of them is
    what its blur took away, which bounds the input's blur error from the input alone, so a scene
    model that wrongly believes a sharp frame blurred cannot claim a gain there.
    """
    return np.maximum(_most_detail(detail, neighbours) - detail, 0.0)


def sharp_frames(tile_detail: np.ndarray, neighbours: int, margin: float) -> np.ndarray:
    """Per frame ``[N]`` bool: its detail energy is within ``margin`` (a fraction) of the most
    detailed frame's within ``neighbours`` either side, over the whole frame or in most (the
    median) of its tiles, so there is no blur to remove that would pay for the scene model's
    errors (a real 35-dB frame lost 0.2-0.7 dB to the model's render). ``tile_detail``:
    ``[N, tiles]`` (``detail_energy`` per tile). The whole frame's share misses a sharp frame
    beside one where an object adds detail; the tiles' share misses one whose content the
    camera moved between tiles; either is evidence enough to keep the input."""
    frame = tile_detail.mean(axis=1)
    frame_share = frame / np.maximum(_most_detail(frame, neighbours), 1e-12)
    tile_share = np.median(tile_detail / np.maximum(_most_detail(tile_detail, neighbours), 1e-12), axis=1)
    return np.maximum(frame_share, tile_share) >= 1.0 - margin


def fine_to_coarse(frame: np.ndarray) -> float:
    """Median over ``SHARP_TILES`` x ``SHARP_TILES`` tiles of the fine detail energy over the coarser
    (``FINE_COARSE_PX``): blur takes the fine detail first, while how much texture a frame shows
    (a rider passing, leaves uncovered) scales both, so the ratio compares the sharpness of frames
    whose content differs."""
    fine, coarse = (detail_energy(frame, sigma, SHARP_TILES) for sigma in FINE_COARSE_PX)
    return float(np.median(fine / np.maximum(coarse, 1e-12)))


def sharp_by_ratio(ratio: np.ndarray, neighbours: int, margin: float) -> np.ndarray:
    """Per frame ``[N]`` bool: its ``fine_to_coarse`` is within ``margin`` of the largest within
    ``neighbours`` frames either side. On real shake clips the detail share alone missed sharp
    frames (0.81 of the most detailed nearby, a 38.8-dB frame that then lost 0.8 dB) that this
    finds (0.89-1.0 for frames blurred under 0.5 px, at most 0.90 for blurred ones)."""
    return ratio / np.maximum(_most_detail(ratio, neighbours), 1e-12) >= 1.0 - margin


def _most_detail(detail: np.ndarray, neighbours: int) -> np.ndarray:
    """Per frame (and tile, for ``[N, tiles]``): the largest value within ``neighbours`` frames either side."""
    n = len(detail)
    return np.stack([detail[max(0, t - neighbours) : t + neighbours + 1].max(axis=0) for t in range(n)])


def measured_model_error(input_frame: Tensor, renders: FrameRenders, rc: RenderConfig) -> Tensor:
    """``[H, W]``: the local squared error of the camera-free render of a frame whose input is its
    true content (a sharp frame), above the noise level."""
    error = gaussian_blur((renders.sharp - input_frame.float()).square(), rc.fidelity_window_px).mean(-1)
    return (error - rc.fidelity_noise**2).clamp_min(0)


def model_weight(
    input_frame: Tensor,
    renders: FrameRenders,
    rc: RenderConfig,
    input_blur: float | None = None,
    frame_rule: bool = True,
    model_error_floor: Tensor | None = None,
    misregistration: float = 0.0,
    content_blur: float | None = None,
) -> FrameVerdict:
    """Per-pixel weight on the model (see the module doc), in pixel values, channels pooled.

    ``input_blur``: the frame's blur error energy estimated from the input alone (``blur_loss``);
    the model's per-pixel estimate of the input's blur error is scaled down to it where larger.
    ``model_error_floor`` ``[H, W]``: the least the render's squared error is taken to be
    (``measured_model_error`` of a nearby sharp frame). ``misregistration``: the fraction of the
    PSF's RMS radius the sharp render may sit off along the blur path (``misregistration_error``).
    ``content_blur``: the least mean blur error the input is taken to have (``FidelityGuard.content_blur``).
    """
    _check_image("input_frame", input_frame)
    residual = input_frame - renders.recorded
    rerender_mse = float(residual.square().mean())
    window = rc.fidelity_window_px
    unexplained = gaussian_blur(residual.square(), window).mean(-1)  # R
    noise = rc.fidelity_noise**2
    psf_blur = gaussian_blur((renders.input_reblurred - input_frame).square(), window).mean(-1)
    model_blur = gaussian_blur((renders.sharp - renders.recorded).square(), window).mean(-1)
    blur_error = torch.minimum(model_blur, rc.fidelity_reblur_cap * psf_blur)
    if input_blur is not None:
        blur_error = blur_error * min(1.0, input_blur / max(float(blur_error.mean()), 1e-12))
    if content_blur is not None:
        blur_error = blur_error * max(1.0, content_blur / max(float(blur_error.mean()), 1e-12))
    input_error = blur_error + noise  # E_in
    model_error = rc.fidelity_gain * (unexplained - noise).clamp_min(0)  # U
    if model_error_floor is not None:
        model_error = torch.maximum(model_error, model_error_floor)
    weight, expected = _blend(input_error, model_error)
    baseline = float(input_error.mean())
    guarded = frame_rule and (
        expected > rc.fidelity_frame_keep * baseline
        or blend_by_means(baseline, float(model_error.mean()), float(blur_error.mean()), rc.fidelity_correlation) > baseline
    )
    if guarded:
        weight, expected = torch.zeros_like(weight), baseline
    elif renders.psf_variance is not None and misregistration > 0:
        weight, expected = _blend(input_error, model_error + misregistration_error(renders, misregistration, rc))
    gain_db = 10 * math.log10(baseline / max(expected, 1e-12))
    return FrameVerdict(weight, 10 * math.log10(1 / max(rerender_mse, 1e-12)), gain_db, guarded)


def _blend(input_error: Tensor, model_error: Tensor) -> tuple[Tensor, float]:
    """The per-pixel weight on the model that minimises the expected squared error of blending two
    independent estimates with these error energies, and that expected error's mean."""
    weight = input_error / (input_error + model_error)
    return weight, float((weight.square() * model_error + (1 - weight).square() * input_error).mean())


def misregistration_error(renders: FrameRenders, fraction: float, rc: RenderConfig) -> Tensor:
    """``[H, W]``: the squared error a shift of the sharp render along its blur path would cause,
    ``(fraction * PSF RMS radius)^2 * |grad sharp|^2``, locally averaged."""
    sharp = renders.sharp.float()
    grad_x, grad_y = torch.zeros_like(sharp), torch.zeros_like(sharp)
    grad_x[:, 1:-1] = (sharp[:, 2:] - sharp[:, :-2]) / 2
    grad_y[1:-1] = (sharp[2:] - sharp[:-2]) / 2
    gradient_energy = gaussian_blur(grad_x.square() + grad_y.square(), rc.fidelity_window_px).mean(-1)
    return fraction**2 * renders.psf_variance * gradient_energy


def blend_by_means(input_error: float, model_error: float, blur_error: float, correlation: float) -> float:
    """Expected squared error of blending a frame's input and model estimate with one weight, from
    the frame's mean error energies alone, the model's error correlated with the input's blur error
    (both fail at the same moving edges; the input's noise is independent of it)."""
    weight = input_error / max(input_error + model_error, 1e-12)
    cross = 2 * weight * (1 - weight) * correlation * math.sqrt(model_error * blur_error)
    return weight**2 * model_error + (1 - weight) ** 2 * input_error + cross


def guard_pixels(input_frame: Tensor, renders: FrameRenders, verdict: FrameVerdict, rc: RenderConfig) -> Tensor:
    """Guarded output in pixel values ``[H, W, 3]``: ``w (sharp + lowpass(residual)) + (1 - w) input``."""
    residual = input_frame - renders.recorded
    model_estimate = renders.sharp + gaussian_blur(residual, rc.fidelity_lowpass_px)
    w = verdict.weight[..., None]
    return (w * model_estimate + (1 - w) * input_frame).clamp(0, 1)


def well_exposed(pixels: Tensor, rc: RenderConfig) -> Tensor:
    """Per channel 1 where a pixel value carries its irradiance (not near black, not near clipping), ramping to 0."""
    lo, hi = rc.fidelity_black, rc.fidelity_clip
    ramp = min(lo, 1 - hi)
    return ((pixels - lo * 0.5) / ramp).clamp(0, 1) * ((hi + (1 - hi) * 0.5 - pixels) / ramp).clamp(0, 1)


def guard_irradiance(
    input_frame: Tensor, renders: FrameRenders, verdict: FrameVerdict, inverse: InverseTone, rc: RenderConfig
) -> Tensor:
    """Guarded scene irradiance ``[H, W, 3]``: towards ``T^-1(input) / exposure`` where the model fails and the input is well exposed."""
    _check_image("input_frame", input_frame)
    from_input = np.exp(inverse(input_frame.numpy()) - renders.log_exposure)
    from_input = torch.from_numpy(from_input)
    trust_input = (1 - verdict.weight[..., None]) * well_exposed(input_frame, rc)
    return trust_input * from_input + (1 - trust_input) * renders.sharp_irradiance


@dataclass
class FidelityGuard:
    """Guards a run's render frame by frame and collects what it decided, for the report and the confidence video."""

    model: VidcamModel
    frames: np.ndarray  # the input clip [N, H, W, 3], uint8 or uint16
    rc: RenderConfig
    confidence: list[np.ndarray] = field(default_factory=list)  # per frame [H, W] uint8, 255 = model trusted
    frame_stats: dict[int, dict[str, Any]] = field(default_factory=dict)  # per frame: what ``summary`` reports
    _inverse: InverseTone | None = None
    _blur_loss: np.ndarray | None = None
    _sharp: np.ndarray | None = None  # per frame: sharp enough to be kept whole (deblur)
    _measured: dict[int, Tensor] = field(default_factory=dict)  # sharp frame -> its measured_model_error
    _render: Callable[[int], np.ndarray] | None = None  # the run's renderer, for frames the caller has not handed over

    def input_frame(self, t: int) -> Tensor:
        return torch.from_numpy(as_float(self.frames[t]))

    def __call__(self, t: int, camera: bool, sharp_irradiance: np.ndarray | None = None) -> np.ndarray:
        """The guarded frame ``t``: pixel values with ``camera``, else scene irradiance; float32 [H, W, 3].
        ``sharp_irradiance``: the model's render of the frame, when the caller has it (else rendered here)."""
        observed = self.input_frame(t)
        if sharp_irradiance is None:
            sharp_irradiance = self.render(t)
        renders = render_through_camera(self.model, t, self.rc.chunk, observed, sharp_irradiance)
        self._measure_input_blur()
        input_blur = float(self._blur_loss[t]) if self._blur_loss is not None else None
        for done in [s for s in self._measured if s < t - self.rc.fidelity_neighbours]:
            del self._measured[done]  # frames are guarded in order: memory stays within the window
        if self._sharp is not None and self._sharp[t]:
            self._measured[t] = measured_model_error(observed, renders, self.rc)
            verdict = model_weight(observed, renders, self.rc, input_blur)
            verdict = FrameVerdict(torch.zeros_like(verdict.weight), verdict.rerender_psnr, 0.0, True)
        else:
            # Static atlases re-render a misplaced frame worse, which the residual shows; changing
            # ones can re-render it well (README, Performance).
            misregistration = self.rc.fidelity_misregistration if len(self.model.scene.dynamics) else 0.0
            verdict = model_weight(
                observed, renders, self.rc, input_blur, model_error_floor=self._error_floor(t, renders),
                misregistration=misregistration, content_blur=self.content_blur(t),
            )
        self.frame_stats[t] = {
            "rerender_psnr": round(verdict.rerender_psnr, 2),
            "confidence": round(float(verdict.weight.mean()), 3),
            "expected_gain_db": round(verdict.expected_gain_db, 2),
            "guarded": verdict.guarded,
            "sharp": bool(self._sharp is not None and self._sharp[t]),
        }
        self.confidence.append((verdict.weight.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
        if camera:
            return guard_pixels(observed, renders, verdict, self.rc).numpy()
        if self._inverse is None:
            self._inverse = InverseTone(self.model)
        return guard_irradiance(observed, renders, verdict, self._inverse, self.rc).numpy()

    def unchanged_frames(self) -> list[int]:
        """The frames the output takes from the input whole whatever the model renders (deblur: those
        sharp already), known from the input alone, before any frame is rendered."""
        self._measure_input_blur()
        return [] if self._sharp is None else np.flatnonzero(self._sharp).tolist()

    def _measure_input_blur(self) -> None:
        """Deblur: each frame's blur error and whether it is sharp, from the input alone (once)."""
        if self.model.blur is None or self._blur_loss is not None:
            return
        tile_detail, ratio = [], []
        for i in range(len(self.frames)):  # one pass: each frame converted once
            frame = self.input_frame(i).numpy()
            tile_detail.append(detail_energy(frame, self.rc.fidelity_detail_px, SHARP_TILES))
            ratio.append(fine_to_coarse(frame))
        tiles = np.stack(tile_detail)
        self._blur_loss = blur_loss(tiles.mean(axis=1), self.rc.fidelity_neighbours)
        self._sharp = sharp_frames(tiles, self.rc.fidelity_neighbours, self.rc.fidelity_sharp_margin) | sharp_by_ratio(
            np.array(ratio), self.rc.fidelity_neighbours, self.rc.fidelity_sharp_ratio_margin
        )

    def _error_floor(self, t: int, renders: FrameRenders) -> Tensor | None:
        """The least squared error frame ``t``'s render is taken to have, ``[H, W]``: the larger of the
        nearest sharp frame's measured error and, with changing atlases, ``change_error`` (from
        ``renders``, frame ``t``'s); None when neither applies."""
        measured = self._sharp_frame_error(t)
        if not len(self.model.scene.dynamics) or self.rc.fidelity_change <= 0:
            return measured
        change = self.change_error(t, renders)
        return change if measured is None else torch.maximum(measured, change)

    def change_error(self, t: int, renders: FrameRenders) -> Tensor:
        """``[H, W]``: ``fidelity_change`` times the local energy of what the atlases' change adds to
        frame ``t``'s render in pixel values (``renders``: the frame's, with the change)."""
        scene = self.model.scene
        changing, scene.changing = scene.changing, False
        try:
            static_irradiance = torch.from_numpy(np.ascontiguousarray(self.render(t), np.float32))
        finally:
            scene.changing = changing
        static = tone_pixels(self.model, static_irradiance, renders.log_exposure)
        energy = gaussian_blur((renders.sharp - static).square(), self.rc.fidelity_window_px).mean(-1)
        return self.rc.fidelity_change * energy

    @torch.no_grad()
    def content_blur(self, t: int) -> float | None:
        """Deblur: the mean squared change frame ``t``'s learned PSF makes to the nearest sharp input
        frame (within ``fidelity_neighbours``) less the noise it smooths away, ``mean((B_t(y_s) - y_s)^2) - noise^2``:
        the input's blur error measured on content the input resolves. None without such a frame or
        with ``fidelity_sharp_content`` off."""
        nearest = self._nearest_sharp(t) if self.rc.fidelity_sharp_content else None
        if nearest is None:
            return None
        sharp_input = self.input_frame(nearest)
        (blurred,), _ = _psf_blur(self.model, t, [sharp_input], self.rc.chunk)
        return max(float((blurred - sharp_input).square().mean()) - self.rc.fidelity_noise**2, 0.0)

    def _nearest_sharp(self, t: int) -> int | None:
        if self._sharp is None:
            return None
        near = [s for s in np.flatnonzero(self._sharp) if abs(s - t) <= self.rc.fidelity_neighbours]
        return int(min(near, key=lambda s: (abs(s - t), s))) if near else None

    def _sharp_frame_error(self, t: int) -> Tensor | None:
        """The measured render error of the sharp frame nearest ``t`` (within ``fidelity_neighbours``), if any."""
        nearest = self._nearest_sharp(t)
        if nearest is None:
            return None
        if nearest not in self._measured:
            observed = self.input_frame(nearest)
            renders = render_through_camera(self.model, nearest, self.rc.chunk, observed, self.render(nearest))
            self._measured[nearest] = measured_model_error(observed, renders, self.rc)
        return self._measured[nearest]

    def render(self, t: int) -> np.ndarray:
        """Frame ``t``'s sharp irradiance by the run's renderer (``rc.fast``): a sharp frame ahead of
        the stream is measured on the picture the output is made of, at the fast renderer's cost."""
        if self._render is None:
            self._render = frame_renderer(self.model, self.rc)
        return self._render(t)

    def summary(self) -> dict[str, Any]:
        order = sorted(self.frame_stats)
        summary: dict[str, Any] = {k: [self.frame_stats[t][k] for t in order] for k in ("rerender_psnr", "confidence", "expected_gain_db")}
        summary["guarded_frames"] = [t for t in order if self.frame_stats[t]["guarded"]]
        summary["sharp_frames"] = [t for t in order if self.frame_stats[t]["sharp"]]
        return summary

    def write(self, confidence_video: Path, fps: Fraction, crf: int) -> dict[str, Any]:
        """Write the confidence video (white = model trusted, black = input kept), say on stderr which
        frames the model does not explain, and return the per-frame figures for the report."""
        if not self.confidence:
            return {}
        grey = np.stack(self.confidence)[..., None].repeat(3, axis=-1)
        write_sdr_video(confidence_video, grey, fps, crf)
        summary = self.summary()
        guarded, sharp = set(summary["guarded_frames"]), set(summary["sharp_frames"])
        if self.model.blur is None:
            poor = [t for t, p in enumerate(summary["rerender_psnr"]) if p < POOR_RERENDER_DB]
        else:  # a sharp frame is kept whole by design (no blur to remove), not for what the model lacks
            poor = [t for t, c in enumerate(summary["confidence"]) if (c < POOR_CONFIDENCE or t in guarded) and t not in sharp]
        if sharp:
            log(f"frames {frame_ranges(summary['sharp_frames'])} are sharp already: kept as recorded")
        if poor:
            kept = sorted(guarded - sharp)
            log(
                f"the scene model does not explain frames {frame_ranges(poor)} well (re-render PSNR"
                f" {min(summary['rerender_psnr'][t] for t in poor):.1f} dB at worst): the output keeps the input there"
                f" where it can (whole frames kept: {frame_ranges(kept) or 'none'};"
                f" {confidence_video.name} shows where)"
            )
        return summary
