"""Writing a run's results: frames, videos, pictures of what was learned, and the report."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidcam import run as run_folder
from vidcam.config import Config, RenderConfig
from vidcam.fast_render import rendered_frames, sampled_irradiance
from vidcam.fidelity import FidelityGuard, InverseTone
from vidcam.highlights import HighlightFill, irradiance_ceiling
from vidcam.io.encode import write_hdr10_video, write_sdr_video
from vidcam.io.images import write_exr, write_png
from vidcam.io.video import Clip, as_float, iter_source_frames
from vidcam.models.model import VidcamModel
from vidcam.plan import RunPlan
from vidcam.plots import image_grid, line_plot
from vidcam.rendering import (
    LUMA_709,
    display_sdr,
    srgb_encode,
    to_uint8,
    tonemap_reinhard,
)
from vidcam.report_html import write_report_html
from vidcam.run import Report, StageTimer
from vidcam.streaming import FrameSinks
from vidcam.upscale import DetailTables, OutputFrames, upscale_irradiance, upscale_pixels

CRF_SAMPLES = 256
WHITE_PERCENTILE = 99.9  # Reinhard's white point: this percentile of the clip's luminance
LOG_LUMINANCE_RANGE = (-14.0, 14.0)  # natural-log luminance histogram of the display pre-pass
LOG_LUMINANCE_BINS = 2800  # 0.01 wide: the white point is found to 1 %
CHANNEL_COLORS = {"R": (220, 40, 40), "G": (40, 160, 40), "B": (40, 80, 220)}


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


@dataclass
class DisplayStats:
    """Clip-wide numbers the per-frame display needs, measured before any frame is written."""

    scale: float  # exposure scale: the clip's log-average luminance lands at the key
    white: float  # Reinhard's white point (99.9th percentile luminance, after scaling)
    light_levels: tuple[int, int]  # HDR10 (MaxCLL, MaxFALL) in nits, of the sampled pixels


def measure_display(samples: Iterable[np.ndarray], key: float, white_nits: float, peak_nits: float) -> DisplayStats:
    """``DisplayStats`` from per-frame irradiance samples [M,3] (``fast_render.sampled_irradiance``),
    accumulated as sums and a log-luminance histogram: memory does not grow with the clip."""
    log_sum, count = 0.0, 0
    histogram = np.zeros(LOG_LUMINANCE_BINS, np.int64)
    brightest, brightest_mean = 0.0, 0.0  # max(R,G,B) of any pixel, and of any frame's mean, unscaled
    for frame in samples:
        log_luminance = np.log(np.maximum(frame @ LUMA_709, 1e-6)).astype(np.float64)
        log_sum, count = log_sum + float(log_luminance.sum()), count + log_luminance.size
        histogram += np.histogram(log_luminance, LOG_LUMINANCE_BINS, LOG_LUMINANCE_RANGE)[0]
        peak = frame.max(axis=-1)
        brightest, brightest_mean = max(brightest, float(peak.max())), max(brightest_mean, float(peak.mean()))
    scale = float(key / np.exp(log_sum / max(count, 1)))
    edges = np.linspace(*LOG_LUMINANCE_RANGE, LOG_LUMINANCE_BINS + 1)
    white_bin = int(np.searchsorted(np.cumsum(histogram), WHITE_PERCENTILE / 100 * histogram.sum()))
    white = float(np.exp(edges[min(white_bin + 1, LOG_LUMINANCE_BINS)]) * scale)
    nits = [min(value * scale * white_nits, peak_nits) for value in (brightest, brightest_mean)]
    return DisplayStats(scale, white, (round(nits[0]), round(nits[1])))


def display_frame(hdr: np.ndarray, operator: str, stats: DisplayStats) -> np.ndarray:
    """One exposure-normalised HDR frame -> uint8 sRGB, with the clip's white point (no flicker)."""
    if operator == "reinhard":
        return to_uint8(srgb_encode(tonemap_reinhard(hdr, stats.white)))
    return display_sdr(hdr, operator)


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
    output: OutputFrames,
    flows: list[dict] | None = None,
) -> None:
    """Render without the camera's flaws and write the mode's videos, pictures and report.

    Frames stream: each is rendered at the fit size, guarded, brought to the output size
    (vidcam.upscale) and handed to the writers before the next is rendered (the clip-wide
    exposure scale comes from a pre-pass over sampled pixels), so memory does not grow with the
    clip's length. ``flows`` (``ClipData.flows``): HDR runs fill clipped pixels from the neighbours
    they link (vidcam.highlights)."""
    rc = cfg.render
    camera = plan.operator == "camera"
    stats = None
    if not camera:
        with timer.stage("render"):
            stats = measure_display(sampled_irradiance(model, rc), rc.key, rc.hdr10_white_nits, rc.hdr10_peak_nits)
        report.hdr_scale = stats.scale
    guard = FidelityGuard(model, clip.frames, rc) if rc.fidelity == "guard" else None
    fill = HighlightFill.for_run(model, clip.frames, flows, rc, plan)
    ceiling = None if camera else irradiance_ceiling(model, rc)
    # The guard takes the sharp irradiance and decides per pixel between it and the input.
    frames = iter(rendered_frames(model, rc, camera=camera and guard is None))
    upscale = FrameUpscaler(output, rc, None if camera else InverseTone(model))
    with FrameSinks() as sinks:
        unchanged = guard.unchanged_frames() if guard is not None else []
        open_writers(sinks, outdir, output, rc, plan, stats, audio_from, unchanged)
        for t, full_input in enumerate(output.inputs()):
            with timer.stage("render"):
                image = next(frames)
                if guard is not None:
                    image = guard(t, camera, sharp_irradiance=image)
                if fill is not None:  # after the guard, whose verdicts rest on the model's own render
                    image = fill(t, image)
                image = upscale(image, full_input)
                if ceiling is not None:
                    image = np.minimum(image, ceiling)
                hdr = None if stats is None else image * stats.scale
                sdr = to_uint8(image) if stats is None else display_frame(hdr, plan.operator, stats)
            with timer.stage("encode"):
                write_frame(sinks, outdir, t, full_input, rc, hdr, sdr)
        next(frames, None)  # the renderer's progress report ends
        with timer.stage("encode"):
            sinks.close()
    if guard is not None:
        report.fidelity = guard.write(outdir / run_folder.CONFIDENCE_VIDEO, clip.fps, rc.video_crf())
    if fill is not None:
        report.highlights = fill.summary()
    samples = crf_samples(model, z_range)
    save_crf_plot(outdir / run_folder.CRF_PLOT, samples)
    save_loss_plot(outdir / run_folder.LOSS_PLOT, history)
    if model.blur is not None:
        n = model.frame.n_frames
        save_psf_plot(outdir / run_folder.PSF_PLOT, model, sorted({0, n // 3, 2 * n // 3, n - 1}))
    report.config, report.timings, report.crf, report.tonemap = cfg.to_dict(), timer.seconds, samples, plan.operator
    report.write(outdir)
    write_report_html(outdir)


class FrameUpscaler:
    """Fit-size results of frame t -> the output size (``vidcam.upscale``); unchanged when they agree."""

    def __init__(self, output: OutputFrames, rc: RenderConfig, inverse: InverseTone | None):
        self.output = output
        self.tables = None
        if inverse is not None and output.upscaled:
            self.tables = DetailTables(inverse, rc, np.iinfo(output.clip.frames.dtype).max + 1)

    def __call__(self, image: np.ndarray, full_input: np.ndarray) -> np.ndarray:
        if not self.output.upscaled:
            return image
        if self.tables is None:
            return upscale_pixels(image, full_input)
        return upscale_irradiance(image, full_input, self.tables)


def write_exr_sequence(folder: Path, frames: Iterable[np.ndarray]) -> None:
    """``folder/00000.exr ...``, one linear EXR per frame (a writer thread: compression runs beside the render)."""
    for t, frame in enumerate(frames):
        write_exr(folder / f"{t:05d}.exr", frame)


def open_writers(
    sinks: FrameSinks,
    outdir: Path,
    output: OutputFrames,
    rc: RenderConfig,
    plan: RunPlan,
    stats: DisplayStats | None,
    audio_from: Path | None,
    unchanged_frames: list[int] | None = None,
) -> None:
    """One streaming writer per video the run writes; frame folders are made ready.
    ``unchanged_frames``: frames the output takes whole from the input (``FidelityGuard.unchanged_frames``)."""
    clip = output.clip
    fps = clip.fps
    enhanced, crf = outdir / run_folder.SDR_VIDEO, rc.video_crf(plan.input_look)
    # In the input's look, what the output leaves as it was keeps the input's own coding.
    source = iter_source_frames(clip.info.path, output.start, clip.n_frames, output.size) if plan.input_look else None
    kept = (unchanged_frames or []) if source is not None else []
    sinks.add("sdr", lambda frames: write_sdr_video(enhanced, frames, fps, crf, audio_from, source, kept))
    if plan.mode == "hdr" and stats is not None:
        (outdir / run_folder.HDR_DIR).mkdir(parents=True, exist_ok=True)
        sinks.add("exr", lambda frames: write_exr_sequence(outdir / run_folder.HDR_DIR, frames))
        hdr10 = outdir / run_folder.HDR10_VIDEO
        white, peak, levels = rc.hdr10_white_nits, rc.hdr10_peak_nits, stats.light_levels
        sinks.add("hdr10", lambda frames: write_hdr10_video(hdr10, frames, fps, white, peak, rc.video_crf(), audio_from, levels))
    if rc.compare:
        compare = outdir / run_folder.COMPARE_VIDEO
        sinks.add("compare", lambda frames: write_sdr_video(compare, frames, fps, rc.video_crf(), audio_from))
    if rc.save_frames:
        (outdir / run_folder.FRAMES_DIR).mkdir(parents=True, exist_ok=True)


def write_frame(
    sinks: FrameSinks, outdir: Path, t: int, source: np.ndarray, rc: RenderConfig, hdr: np.ndarray | None, sdr: np.ndarray
) -> None:
    sinks.put("sdr", sdr)
    if "hdr10" in sinks and hdr is not None:
        sinks.put("exr", hdr)
        sinks.put("hdr10", hdr)
    if rc.save_frames:
        write_png(outdir / run_folder.FRAMES_DIR / f"{t:05d}.png", sdr)
    if rc.compare:
        if source.dtype != np.uint8:
            source = to_uint8(as_float(source))
        sinks.put("compare", side_by_side(source[None], sdr[None])[0])
