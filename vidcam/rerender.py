"""``vidcam render``: re-render a fitted run with the camera changed, without refitting.

The fit separates the scene (linear irradiance) from the camera (exposure, blur, response), so
a run can be rendered again as a different camera would have recorded it (Huang et al.,
supplementary §3.1):

- a new exposure through the learned response: ``ev`` stops relative to the clip's reference
  exposure, constant (a virtual bracket) or ramped linearly over the rendered frames, or an
  absolute exposure time;
- the learned blur kept (deblur runs), which reproduces the input;
- the linear HDR through a display operator (ACES, Reinhard) instead of the learned response.

The reference exposure is the mean learned log exposure of the clip, the same for every frame:
an alternating-exposure clip re-renders at one steady exposure (``ev 0`` is its geometric-mean
exposure). Exposure times are in the run's units, those of ``report.json``'s
``exposures.learned``, whose geometric mean is 1 (so ``exposure 1`` is ``ev 0``). With neither
given, each frame keeps its own learned exposure. The display operators render the linear HDR
exposure-normalised as the run's export did (its ``hdr_scale``), times ``2^ev``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vidcam.errors import VidcamError
from vidcam.io.encode import write_sdr_video
from vidcam.rendering import (
    display_linear,
    exposure_scale,
    recorded_irradiance,
    reinhard_white,
    render_frames,
    through_camera,
)
from vidcam.run import Run, open_run
from vidcam.threads import apply_threads

TONEMAPS = ("camera", "aces", "reinhard")
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")
LN2 = math.log(2.0)

EvSpec = float | tuple[float, float] | str
FramesSpec = slice | range | str


@dataclass(frozen=True)
class RenderSettings:
    """What to change, checked for syntax (not yet against a run)."""

    ev: tuple[float, float] | None = None  # stops at the first and last rendered frame, from the reference
    exposure: float | None = None  # absolute exposure time in the run's units
    with_blur: bool = False  # keep the learned blur
    tonemap: str | None = None  # camera | aces | reinhard; None: see RenderJob.tonemap
    frames: slice = field(default_factory=lambda: slice(None))  # which frames, Python slice semantics


@dataclass(frozen=True)
class RenderJob:
    """The settings resolved against a run."""

    frames: range  # frame indices of the run that are rendered, in order
    tonemap: str  # camera (the learned response) | aces | reinhard
    with_blur: bool
    log_offsets: np.ndarray | None  # per rendered frame, natural-log exposure from the reference; None: own


def parse_ev(value: EvSpec) -> tuple[float, float]:
    """``+1.5`` (or 1.5) -> (1.5, 1.5); ``0:+2`` or (0, 2) -> a ramp from 0 to +2 stops."""
    if isinstance(value, (int, float)):
        parts: list[object] = [value, value]
    elif isinstance(value, (tuple, list)):
        parts = list(value)
    else:
        text = str(value).strip()
        parts = text.split(":") if ":" in text else [text, text]
    try:
        if len(parts) != 2:
            raise ValueError
        start, end = (float(part) for part in parts)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise VidcamError(f"--ev: expected stops like +1.5 or a ramp like 0:+2, got '{value}'") from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise VidcamError(f"--ev: stops must be finite, got '{value}'")
    return start, end


def parse_exposure(value: float | str) -> float:
    try:
        exposure = float(value)
    except (TypeError, ValueError):
        raise VidcamError(f"--exposure: expected an exposure time like 0.5, got '{value}'") from None
    if not (math.isfinite(exposure) and exposure > 0):
        raise VidcamError(f"--exposure: an exposure time must be positive, got '{value}'")
    return exposure


def parse_frames(value: FramesSpec | None) -> slice:
    """``A:B`` (either may be empty or negative, as in Python), a slice or a range."""
    if value is None:
        return slice(None)
    if isinstance(value, slice):
        return value
    if isinstance(value, range):
        return slice(value.start, value.stop, value.step)
    parts = str(value).strip().split(":")
    try:
        if not 2 <= len(parts) <= 3:
            raise ValueError
        bounds = [int(part) if part.strip() else None for part in parts]
    except ValueError:
        raise VidcamError(f"--frames: expected a range like 10:40 (Python slice), got '{value}'") from None
    return slice(*bounds)


def frame_range(frames: slice, n_frames: int) -> range:
    """The frames of a clip of ``n_frames`` that ``frames`` selects; out-of-range bounds are errors, not clipped."""
    text = ":".join("" if bound is None else str(bound) for bound in (frames.start, frames.stop))
    for bound in (frames.start, frames.stop):
        if bound is not None and not -n_frames <= bound <= n_frames:
            raise VidcamError(f"--frames {text}: out of range, the run has {n_frames} frames (0..{n_frames - 1})")
    if frames.step == 0:
        raise VidcamError("--frames: the step cannot be 0")
    selected = range(n_frames)[frames]
    if len(selected) == 0:
        raise VidcamError(f"--frames {text}: selects none of the run's {n_frames} frames")
    return selected


def make_settings(
    ev: EvSpec | None = None,
    exposure: float | str | None = None,
    with_blur: bool = False,
    tonemap: str | None = None,
    frames: FramesSpec | None = None,
) -> RenderSettings:
    """Check the user's values (before any run is loaded)."""
    if ev is not None and exposure is not None:
        raise VidcamError("give either --ev or --exposure, not both")
    if tonemap is not None and tonemap not in TONEMAPS:
        raise VidcamError(f"--tonemap must be one of {', '.join(TONEMAPS)}, got '{tonemap}'")
    return RenderSettings(
        ev=parse_ev(ev) if ev is not None else None,
        exposure=parse_exposure(exposure) if exposure is not None else None,
        with_blur=bool(with_blur),
        tonemap=tonemap,
        frames=parse_frames(frames),
    )


def reference_log_exposure(run: Run) -> float:
    """The mean learned log exposure of the clip: ``ev 0``."""
    return float(run.model.exposures.all().detach().float().mean())


def resolve_job(run: Run, settings: RenderSettings) -> RenderJob:
    """Check the settings against the run. The operator defaults to the learned response when an
    exposure or the blur is asked for, else to the run's own (what its enhanced.mp4 shows)."""
    if settings.with_blur and run.model.blur is None:
        raise VidcamError(f"--with-blur: {run.folder} was fitted without a blur model ({run.plan.mode} run)")
    frames = frame_range(settings.frames, run.model.frame.n_frames)
    changes_camera = settings.ev is not None or settings.exposure is not None or settings.with_blur
    tonemap = settings.tonemap or ("camera" if changes_camera else run.operator)
    log_offsets = None
    if settings.ev is not None:
        log_offsets = np.linspace(*settings.ev, len(frames)) * LN2
    elif settings.exposure is not None:
        log_offsets = np.full(len(frames), math.log(settings.exposure) - reference_log_exposure(run))
    return RenderJob(frames, tonemap, settings.with_blur, log_offsets)


@torch.no_grad()
def render_job(run: Run, job: RenderJob) -> Iterator[np.ndarray]:
    """The re-rendered frames, float32 [H,W,3] display values in [0, 1], one per ``job.frames``."""
    model = run.model
    irradiance = recorded_irradiance(model) if job.with_blur else model.irradiance
    if job.tonemap == "camera":
        log_exposure = None
        if job.log_offsets is not None:
            log_exposure = model.exposures.all().detach().float().cpu().clone()
            log_exposure[list(job.frames)] = torch.as_tensor(reference_log_exposure(run) + job.log_offsets, dtype=torch.float32)
        yield from render_frames(model, run.chunk, through_camera(model, irradiance, log_exposure), "render", job.frames)
        return
    linear = np.stack(list(render_frames(model, run.chunk, irradiance, "render", job.frames)))
    scale = run.hdr_scale if run.hdr_scale is not None else exposure_scale(linear, run.cfg.render.key)
    hdr = linear * scale
    white = reinhard_white(hdr) if job.tonemap == "reinhard" else None  # at ev 0: only the exposure changes
    gains = np.exp(job.log_offsets) if job.log_offsets is not None else np.ones(len(job.frames))
    for frame, gain in zip(hdr, gains):
        yield display_linear(frame * np.float32(gain), job.tonemap, white)


def default_output(run: Run, settings: RenderSettings, job: RenderJob) -> Path:
    """``RUN/render_<what changed>.mp4``, e.g. ``render_ev+0_to+2_camera.mp4``."""
    parts = ["render"]
    if settings.ev is not None:
        start, end = settings.ev
        parts.append(f"ev{start:+g}" if start == end else f"ev{start:+g}_to{end:+g}")
    elif settings.exposure is not None:
        parts.append(f"exposure{settings.exposure:g}")
    if job.with_blur:
        parts.append("blur")
    parts.append(job.tonemap)
    if len(job.frames) != run.model.frame.n_frames:
        parts.append(f"frames{job.frames.start}-{job.frames[-1]}")
    return run.folder / ("_".join(parts) + ".mp4")


def check_output(output: Path, overwrite: bool, run: Run) -> None:
    """Never replace what the user gave: the run's input always, any other file only with ``overwrite``."""
    if output.suffix.lower() not in VIDEO_SUFFIXES:
        raise VidcamError(f"output {output} must be a video file ({', '.join(VIDEO_SUFFIXES)})")
    if not output.parent.is_dir():
        raise VidcamError(f"output folder does not exist: {output.parent}")
    if output.is_dir():
        raise VidcamError(f"output {output} is a folder")
    if run.input_path is not None and output.exists() and output.resolve() == run.input_path.resolve():
        raise VidcamError(f"output {output} is the run's input video; choose another -o")
    if output.exists() and not overwrite:
        raise VidcamError(f"output {output} already exists; use --overwrite to replace it or choose another -o")


def render(
    run: str | Path | Run,
    output: str | Path | None = None,
    *,
    ev: EvSpec | None = None,
    exposure: float | str | None = None,
    with_blur: bool = False,
    tonemap: str | None = None,
    frames: FramesSpec | None = None,
    overwrite: bool = False,
    device: str | torch.device = "auto",
) -> Path:
    """Re-render a finished or interrupted run folder with its camera changed; returns the MP4 written.

    ``ev``: stops from the clip's mean learned exposure, ``1.5``, or a ramp over the rendered
    frames, ``(0, 2)`` or ``"0:+2"``. ``exposure``: an absolute exposure time in the run's units
    (``report.json`` exposures.learned). ``with_blur``: keep the learned blur (deblur runs).
    ``tonemap``: ``camera`` (the learned response; the default when an exposure or the blur is
    given), ``aces`` or ``reinhard`` (the exposure-normalised linear HDR through that operator);
    otherwise the run's own. ``frames``: ``"A:B"``, a slice or a range. ``output``: default
    ``RUN/render_<what changed>.mp4``; an existing file is replaced only with ``overwrite``.
    The sound track is kept when the whole clip is rendered.
    """
    settings = make_settings(ev, exposure, with_blur, tonemap, frames)
    loaded = run if isinstance(run, Run) else open_run(run, device)
    job = resolve_job(loaded, settings)
    target = Path(output) if output is not None else default_output(loaded, settings, job)
    check_output(target, overwrite, loaded)
    apply_threads(loaded.cfg.threads)
    whole_clip = job.frames == range(loaded.model.frame.n_frames)
    audio = loaded.audio_source if whole_clip else None
    write_sdr_video(target, render_job(loaded, job), loaded.fps, loaded.cfg.render.video_crf(), audio)
    return target
