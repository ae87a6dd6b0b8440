"""Writing a run's results: frames, videos, pictures of what was learned, and the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidcam import run as run_folder
from vidcam.config import Config
from vidcam.fidelity import FidelityGuard
from vidcam.io.images import write_exr, write_png
from vidcam.io.video import Clip
from vidcam.io.encode import write_hdr10_video, write_sdr_video
from vidcam.models.model import VidcamModel
from vidcam.plan import RunPlan
from vidcam.plots import image_grid, line_plot
from vidcam.progress import progress
from vidcam.rendering import display_clip, exposure_scale, render_clip, through_camera, to_uint8
from vidcam.report_html import write_report_html
from vidcam.run import Report, StageTimer

CRF_SAMPLES = 256
CHANNEL_COLORS = {"R": (220, 40, 40), "G": (40, 160, 40), "B": (40, 80, 220)}


def render_output(model: VidcamModel, chunk: int, camera: bool, guard: FidelityGuard | None) -> np.ndarray:
    """[N,H,W,3] float32: the sharp scene irradiance, or with ``camera`` what a blur-free camera
    records; ``guard`` keeps the input wherever the model does not explain it."""
    if guard is None:
        return render_clip(model, chunk, through_camera(model) if camera else None)
    return np.stack([guard(t, camera) for t in progress(range(model.frame.n_frames), "render", unit="frame", leave=False)])


def write_exr_sequence(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        write_exr(folder / f"{t:05d}.exr", frame)


def write_png_sequence(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        write_png(folder / f"{t:05d}.png", frame)


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """[N,H,2W,3] input | output."""
    return np.concatenate([left, right], axis=2)


@torch.no_grad()
def crf_samples(model: VidcamModel, z_range: tuple[float, float]) -> dict[str, list[float]]:
    z = torch.linspace(*z_range, CRF_SAMPLES, device=model.device)
    curves = model.tone.curve(z).float().cpu().numpy()
    return {"log_exposure_irradiance": z.cpu().tolist(), **{c: curves[:, i].tolist() for i, c in enumerate("RGB")}}


def save_crf_plot(path: Path, samples: dict[str, list[float]]) -> None:
    z = np.array(samples["log_exposure_irradiance"])
    series = {c: (z, np.array(samples[c])) for c in "RGB"}
    write_png(
        path,
        line_plot(series, "learned camera response", "log irradiance + log exposure", "pixel value", colors=CHANNEL_COLORS),
    )


def save_loss_plot(path: Path, history: list[dict[str, float]]) -> None:
    if not history:
        return
    steps = np.array([h["step"] for h in history])
    names = list(dict.fromkeys(k for h in history for k in h if k not in ("step", "seconds", "psnr")))
    series = {name: (steps, np.array([h.get(name, np.nan) for h in history])) for name in names}
    write_png(path, line_plot(series, "training losses", "step", "loss", log_y=True))


@torch.no_grad()
def save_psf_plot(path: Path, model: VidcamModel, frames: list[int], grid: int = 3, cell: int = 48) -> None:
    """The learned blur kernels at a grid of positions, one row per frame."""
    if model.blur is None:
        return
    frame, device = model.frame, model.device
    radius = model.blur.radius if hasattr(model.blur, "radius") else 5.0
    tiles, labels = [], []
    for t in frames:
        for gy in range(grid):
            for gx in range(grid):
                px = torch.tensor([[(gx + 0.5) * frame.width / grid, (gy + 0.5) * frame.height / grid]], device=device)
                xy = frame.to_model(px)
                xyt = torch.cat([xy, frame.time(torch.tensor([t], device=device))[:, None]], dim=1)
                offsets = model.blur.offsets_px(xyt)[0].float().cpu().numpy()
                weights = model.blur(xyt)[1][0].float().cpu().numpy()
                tiles.append(_splat_kernel(offsets, weights, radius, cell))
                labels.append(f"t={t}" if gx == 0 and gy == 0 else "")
    write_png(path, image_grid(tiles, grid * grid, labels))


def _splat_kernel(offsets_px: np.ndarray, weights: np.ndarray, radius: float, cell: int) -> np.ndarray:
    """Bilinearly splat weighted sample offsets into a cell x cell picture of the PSF."""
    canvas = np.zeros((cell, cell), np.float64)
    scale = (cell / 2 - 1) / (radius + 1)
    for (dx, dy), w in zip(offsets_px, weights):
        x, y = cell / 2 + dx * scale, cell / 2 + dy * scale
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for ox, oy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if 0 <= x0 + ox < cell and 0 <= y0 + oy < cell:
                canvas[y0 + oy, x0 + ox] += w * wt
    canvas /= max(canvas.max(), 1e-9)
    return to_uint8(np.repeat(canvas[..., None], 3, -1))


def write_run_outputs(
    outdir: Path,
    model: VidcamModel,
    clip: Clip,
    cfg: Config,
    plan: RunPlan,
    history: list[dict[str, float]],
    z_range: tuple[float, float],
    report: Report,
    timer: StageTimer,
    audio_from: Path | None,
) -> None:
    """Render without the camera's flaws and write the mode's videos, pictures and report."""
    rc = cfg.render
    hdr = None
    guard = FidelityGuard(model, clip.frames, rc) if rc.fidelity == "guard" else None
    with timer.stage("render"):
        if plan.operator == "camera":
            sdr = to_uint8(render_output(model, rc.chunk, True, guard))
        else:
            irradiance = render_output(model, rc.chunk, False, guard)
            report.hdr_scale = scale = exposure_scale(irradiance, rc.key)
            hdr = irradiance * scale
            sdr = display_clip(hdr, plan.operator)
    with timer.stage("encode"):
        if plan.mode == "hdr" and hdr is not None:
            write_exr_sequence(outdir / run_folder.HDR_DIR, hdr)
            write_hdr10_video(
                outdir / run_folder.HDR10_VIDEO, hdr, clip.fps, rc.hdr10_white_nits, rc.hdr10_peak_nits, rc.crf, audio_from
            )
        write_sdr_video(outdir / run_folder.SDR_VIDEO, sdr, clip.fps, rc.crf, audio_from)
        if rc.save_frames:
            write_png_sequence(outdir / run_folder.FRAMES_DIR, sdr)
        if rc.compare:
            source = clip.frames if clip.frames.dtype == np.uint8 else to_uint8(clip.frames_float())
            write_sdr_video(outdir / run_folder.COMPARE_VIDEO, side_by_side(source, sdr), clip.fps, rc.crf, audio_from)
        if guard is not None:
            report.fidelity = guard.write(outdir / run_folder.CONFIDENCE_VIDEO, clip.fps, rc.crf)
    samples = crf_samples(model, z_range)
    save_crf_plot(outdir / run_folder.CRF_PLOT, samples)
    save_loss_plot(outdir / run_folder.LOSS_PLOT, history)
    if model.blur is not None:
        n = model.frame.n_frames
        save_psf_plot(outdir / run_folder.PSF_PLOT, model, sorted({0, n // 3, 2 * n // 3, n - 1}))
    report.config, report.timings, report.crf, report.tonemap = cfg.to_dict(), timer.seconds, samples, plan.operator
    report.write(outdir)
    write_report_html(outdir)
