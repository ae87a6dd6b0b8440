"""The run folder: where a ``vidcam enhance`` run writes what, its report, and loading it back.

Every module that reads or writes a run folder takes the names from here, so the layout is
spelled once. ``open_run`` is the one loader of a saved run (its model, settings, plan and
report), used by ``atlas``, ``edit`` and anything else that works on a finished or
interrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcam.config import Config, load_config
from vidcam.errors import VidcamError
from vidcam.io.atomic import atomic_write_text
from vidcam.models.model import VidcamModel
from vidcam.plan import RunPlan
from vidcam.runlock import LOCK_NAME
from vidcam.training.checkpoint import model_from_checkpoint

CONFIG_NAME = "config.yaml"
CHECKPOINT_NAME = "checkpoint.pt"
REPORT_NAME = "report.json"
CACHE_DIR = "cache"  # optical flow, keyed by content
HDR_DIR = "hdr"  # linear EXR frames
FRAMES_DIR = "frames"  # PNG frames (--save-frames)
ATLAS_DIR = "atlas"  # vidcam atlas
SDR_VIDEO = "enhanced.mp4"
HDR10_VIDEO = "enhanced_hdr10.mp4"
COMPARE_VIDEO = "compare.mp4"
CONFIDENCE_VIDEO = "confidence.mp4"  # where the output trusts the model (white) or keeps the input (black)
CRF_PLOT = "crf.png"
LOSS_PLOT = "loss.png"
PSF_PLOT = "psf.png"
DEFAULT_FPS = Fraction(24)  # for runs interrupted before their report was written

def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; ``cuda`` without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VidcamError("--device cuda: no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise VidcamError(f"unknown device '{name}' (auto, cpu or cuda)")
    return torch.device(name)


def default_outdir(input_path: Path) -> Path:
    return input_path.with_name(f"{input_path.stem}_vidcam")


def forget_unstarted_run(outdir: Path, remove_folder: bool) -> None:
    """After a fresh run failed before its first checkpoint, remove what it wrote (its settings,
    flow cache, and the folder if it made it and nothing else is left), so the folder takes a
    fresh run again; the folder was empty or missing when the run began, so all of it is the run's own."""
    if (outdir / CHECKPOINT_NAME).exists():
        return  # trained: --resume continues from there
    (outdir / CONFIG_NAME).unlink(missing_ok=True)
    shutil.rmtree(outdir / CACHE_DIR, ignore_errors=True)
    (outdir / LOCK_NAME).unlink(missing_ok=True)  # the run's own; its lock goes with the file's inode
    if remove_folder:
        with contextlib.suppress(OSError):
            outdir.rmdir()  # only when nothing else is left


def find_checkpoint(run_dir: Path) -> Path:
    """The checkpoint of a finished or interrupted run folder, or a clear error."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if not Path(run_dir).is_dir():
        raise VidcamError(f"run folder not found: {run_dir}")
    if not path.is_file():
        raise VidcamError(f"{run_dir} holds no vidcam run (no {CHECKPOINT_NAME})")
    return path


def audio_source(input_path: str | Path | None, has_audio: bool, start_frame: int) -> Path | None:
    """The file whose sound track goes into the outputs, or None.

    The source's audio starts at its first frame, so only a clip used from frame 0 keeps it in sync.
    """
    if input_path is None or not has_audio or start_frame != 0:
        return None
    path = Path(input_path)
    return path if path.is_file() else None


@dataclass
class StageTimer:
    """Wall seconds per named stage, accumulated (the report's ``timings``)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


@dataclass
class Report:
    """``report.json``: what a run did. Written by the pipeline and the export, read back by
    ``open_run`` (atlas, edit) and the benchmarks."""

    input: str  # the input video's path as given
    mode: str  # hdr | deblur, as resolved by the plan
    device: str
    frames: int
    size: list[int]  # width, height of the frames the model was fitted to
    fps: str  # a rational, e.g. "30000/1001"
    threads: int | None = None  # torch CPU threads the run used
    audio: str | None = None  # the file whose sound track the outputs carry (see audio_source)
    plan: dict[str, Any] = field(default_factory=dict)  # RunPlan.to_dict()
    flow: dict[str, Any] = field(default_factory=dict)  # backend, why it was chosen, gaps
    exposures: dict[str, Any] = field(default_factory=dict)  # source, pattern, initial and learned values
    steps: int = 0
    samples_per_second: float = 0.0
    final_losses: dict[str, float] = field(default_factory=dict)
    cuda_max_memory_allocated: int | None = None  # bytes, runs on CUDA only
    tonemap: str | None = None  # the SDR operator of enhanced.mp4: camera | aces | reinhard
    hdr_scale: float | None = None  # linear scale applied before the operator (HDR frames' units)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per stage
    windows: dict[str, Any] | None = None  # windowed runs: the windows, per-border gains, seam flicker
    crf: dict[str, list[float]] = field(default_factory=dict)  # learned response samples
    config: dict[str, Any] = field(default_factory=dict)  # the run's settings
    fidelity: dict[str, Any] = field(default_factory=dict)  # per frame: re-render PSNR, confidence, frames kept from the input
    highlights: dict[str, Any] | None = None  # HDR: per frame, the fraction of values filled from the neighbours (vidcam.highlights)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def write(self, folder: Path) -> None:
        atomic_write_text(folder / REPORT_NAME, json.dumps(self.to_dict(), indent=2, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, Fraction)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def read_report(folder: Path) -> Report | None:
    """The run's report, None when the run never got that far (interrupted before export)."""
    path = Path(folder) / REPORT_NAME
    if not path.is_file():
        return None
    try:
        return Report.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise VidcamError(f"cannot parse {path}: {exc}") from None


@dataclass
class Run:
    """A trained run folder: its model, settings, plan, and how it displayed its output."""

    folder: Path
    model: VidcamModel
    cfg: Config
    plan: RunPlan
    state: dict[str, Any]  # the checkpoint: step, z_range, ...
    report: Report | None  # None for a run interrupted before its export
    hdr_scale: float | None  # linear scale before the SDR operator (None for the camera operator)
    fps: Fraction

    @property
    def chunk(self) -> int:
        return self.cfg.render.chunk

    @property
    def n_layers(self) -> int:
        return self.model.scene.n_layers

    @property
    def operator(self) -> str:
        return self.plan.operator

    @property
    def input_path(self) -> Path | None:
        return Path(self.report.input) if self.report is not None else None

    @property
    def audio_source(self) -> Path | None:
        """The sound track the run's outputs carry, if that file is still there."""
        audio = self.report.audio if self.report is not None else None
        return Path(audio) if audio and Path(audio).is_file() else None


def open_run(run_dir: str | Path, device: str | torch.device = "auto") -> Run:
    """Load a run folder's model, settings, plan and report, or raise a clear VidcamError."""
    from vidcam.rendering import exposure_scale, render_clip

    folder = Path(run_dir)
    model, cfg, state = model_from_checkpoint(find_checkpoint(folder), pick_device(str(device)))
    report = read_report(folder)
    plan = RunPlan.from_checkpoint(state, cfg)
    hdr_scale = None
    if plan.operator != "camera":
        hdr_scale = report.hdr_scale if report is not None else None
        if hdr_scale is None:  # an interrupted run: measure it the way the export does
            hdr_scale = exposure_scale(render_clip(model, cfg.render.chunk, desc="measure"), cfg.render.key)
    fps = Fraction(report.fps) if report is not None else DEFAULT_FPS
    return Run(folder, model, cfg, plan, state, report, hdr_scale, fps)


# Settings a resume may change: how long to train, how to checkpoint and log, and how the
# outputs are rendered and written. Anything else shaped what was trained (the frames, the
# mode, the exposures, the model, the losses), so a resume refuses a different value.
RESUME_MAY_CHANGE = ("train.steps", "train.time_budget", "train.checkpoint_", "train.log_every", "train.compile",
                     "render.", "atlas.", "parallel.", "device", "threads")


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_run_config(outdir: Path, overrides: dict) -> Config:
    """The saved config of a run being resumed with the user's overrides on top; an override
    that would change what was trained is refused (see RESUME_MAY_CHANGE)."""
    saved = load_config(preset="", config_file=outdir / CONFIG_NAME)
    merged = load_config(preset="", config_file=outdir / CONFIG_NAME, overrides=overrides)
    before, after = _flatten(saved.to_dict()), _flatten(merged.to_dict())
    for key, value in after.items():
        if value != before.get(key) and not key.startswith(RESUME_MAY_CHANGE):
            raise VidcamError(
                f"--resume cannot change {key} (the run was trained with {before.get(key)!r}, given {value!r}); "
                f"drop the flag or start a new run in another folder"
            )
    return merged
