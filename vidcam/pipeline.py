"""``vidcam enhance``: decode -> exposures -> flow -> train -> render -> export."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from vidcam.config import Config, load_config, save_config
from vidcam.errors import VidcamError
from vidcam.export import write_run_outputs
from vidcam.exposure import estimate_exposures, parse_exposures
from vidcam.flow import (
    compute_flows,
    dominant_motion,
    foreground_from_motion,
    region_motion,
    resolve_backend,
)
from vidcam.io.images import read_png
from vidcam.io.video import Clip, read_video
from vidcam.models.model import ClipShape, VidcamModel
from vidcam.models.scene import chain_to_reference
from vidcam.resources import check_clip
from vidcam.sharpness import frame_sharpness, sharp_frame_weights
from vidcam.training.checkpoint import CHECKPOINT_NAME
from vidcam.training.data import ClipData
from vidcam.training.trainer import Trainer

CONFIG_NAME = "config.yaml"


def log(message: str) -> None:
    print(f"vidcam: {message}", file=sys.stderr, flush=True)


@dataclass
class Timer:
    """Wall seconds per named stage, accumulated."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def default_outdir(input_path: Path) -> Path:
    return input_path.with_name(f"{input_path.stem}_vidcam")


def prepare_outdir(outdir: Path, resume: bool) -> None:
    """Refuse to mix runs or overwrite anything the user gave (a new run needs an empty or
    missing folder, so an input inside it is safe too); create the folder."""
    if resume:
        if not (outdir / CONFIG_NAME).is_file():
            raise VidcamError(f"--resume: {outdir} holds no vidcam run to continue")
        return
    if outdir.exists() and not outdir.is_dir():
        raise VidcamError(f"output path {outdir} exists and is not a folder")
    if outdir.is_dir() and any(outdir.iterdir()):
        what = "another vidcam run" if (outdir / CONFIG_NAME).exists() else "other files"
        raise VidcamError(f"output folder {outdir} already holds {what}; use --resume or choose another -o")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe_file = outdir / ".vidcam_write_test"
        probe_file.write_bytes(b"")
        probe_file.unlink()
    except OSError as exc:
        raise VidcamError(f"cannot write to output folder {outdir}: {exc.strerror or exc}") from None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VidcamError("--device cuda: no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise VidcamError(f"unknown device '{name}' (auto, cpu or cuda)")
    return torch.device(name)


def resolve_exposures(cfg: Config, frames: np.ndarray) -> tuple[str, np.ndarray, dict[str, Any]]:
    """The mode to run and each frame's initial log exposure."""
    n = frames.shape[0]
    if cfg.exposures is not None:
        log_exposure = parse_exposures(cfg.exposures, n, cfg.ev)
        alternating = bool(np.ptp(log_exposure) > 1e-6)
        info = {"source": "user", "values": cfg.exposures}
    else:
        estimate = estimate_exposures(frames)
        log_exposure, alternating = estimate.log_exposure, estimate.period > 1
        info = {"source": "estimated", "period": estimate.period, "ratio": estimate.ratio}
    mode = cfg.mode if cfg.mode != "auto" else ("hdr" if alternating else "deblur")
    if mode == "hdr" and not alternating:
        log("HDR mode on a clip whose brightness does not alternate: expect little dynamic range gained")
    return mode, log_exposure, info


def load_masks(folder: Path, clip: Clip) -> np.ndarray:
    """User foreground masks (PNG/JPG, one per source frame, sorted by name) as float [N,H,W]."""
    if not folder.is_dir():
        raise VidcamError(f"mask folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(files) <= int(clip.frame_indices.max()):
        raise VidcamError(f"{folder} holds {len(files)} masks; the clip needs one per source frame")
    masks = []
    for index in clip.frame_indices:
        mask = read_png(files[index])
        peak = float(np.iinfo(mask.dtype).max) if mask.dtype.kind in "ui" else 1.0
        mask = (mask.max(-1) if mask.ndim == 3 else mask).astype(np.float32) / peak
        masks.append(cv2.resize(mask, (clip.width, clip.height), interpolation=cv2.INTER_AREA))
    return np.clip(np.stack(masks), 0, 1)


def initial_motions(cfg: Config, flows: dict, foreground: np.ndarray | None) -> list[np.ndarray | None] | None:
    """Each layer's motion into the middle frame, chained from gap-1 flow: the camera's
    (dominant homography) for the background, the foreground region's for layer 1."""
    if not cfg.scene.global_motion or 1 not in flows:
        return None
    camera, _ = dominant_motion(flows[1])
    reference = (camera.shape[0] + 1) // 2
    motions = [chain_to_reference(camera, reference)]
    if foreground is not None and cfg.scene.layers > 1:
        motions.append(chain_to_reference(region_motion(flows[1], foreground > 0.5), reference))
    return motions


def enhance(input_path: Path, outdir: Path | None, cfg: Config, resume: bool = False) -> dict[str, Any]:
    """Fit the model to the clip and write every output into ``outdir``; returns the report."""
    input_path = Path(input_path)
    outdir = Path(outdir) if outdir else default_outdir(input_path)
    check_clip(input_path, cfg)  # too small for flow or too big for memory: refused before any work
    prepare_outdir(outdir, resume)
    timer = Timer()
    device = pick_device(cfg.device)

    with timer.stage("decode"):
        clip = read_video(input_path, cfg.io.start_frame, cfg.io.max_frames, cfg.io.max_side)
    if clip.n_frames < 2:
        raise VidcamError(f"{input_path} has {clip.n_frames} frame(s); vidcam needs at least 2")
    log(f"{clip.n_frames} frames of {clip.width}x{clip.height} at {float(clip.fps):.3g} fps on {device}")
    frames_float = clip.frames_float()

    mode, log_exposure, exposure_info = resolve_exposures(cfg, frames_float)
    cfg.mode = mode
    blur = cfg.camera.blur if cfg.camera.blur is not None else mode == "deblur"
    if cfg.camera.learn_exposure is None:
        cfg.camera.learn_exposure = exposure_info["source"] == "estimated"
    log(f"mode: {mode} ({'exposure ' + _describe_exposures(log_exposure) if mode == 'hdr' else 'single exposure'})")
    if not resume:
        save_config(cfg, outdir / CONFIG_NAME)

    backend = resolve_backend(cfg.flow)
    with timer.stage("flow"):
        flows = compute_flows(
            frames_float,
            cfg.flow,
            device,
            np.exp(log_exposure) if mode == "hdr" else None,
            outdir / "cache",
            backend=backend,
        )
    foreground = None
    if cfg.scene.layers > 1:
        foreground = load_masks(Path(cfg.masks), clip) if cfg.masks else foreground_from_motion(flows)

    torch.manual_seed(cfg.train.seed)  # network initialisation: a run is repeatable
    shape = ClipShape(clip.n_frames, clip.height, clip.width, blur)
    model = VidcamModel(cfg, shape, log_exposure, initial_motions(cfg, flows, foreground)).to(device)
    frame_weights = None
    if blur and cfg.train.sharp_first > 0:
        frame_weights = sharp_frame_weights(frame_sharpness(frames_float), cfg.train.sharp_window, cfg.train.sharp_power)
    data = ClipData(clip.frames, flows, device, foreground, cfg.train.seed, frame_weights)
    trainer = Trainer(cfg, model, data, outdir / CHECKPOINT_NAME)
    with timer.stage("train"):
        history = trainer.fit(resume)
    model.eval()

    report: dict[str, Any] = {
        "input": str(input_path),
        "mode": mode,
        "device": str(device),
        "frames": clip.n_frames,
        "size": [clip.width, clip.height],
        "fps": str(clip.fps),
        "flow": {"backend": backend.name, "reason": backend.reason, "gaps": cfg.flow.gaps},
        "exposures": {
            **exposure_info,
            "initial": np.exp(log_exposure).tolist(),
            "learned": model.exposures.all().exp().detach().cpu().tolist(),
        },
        "steps": trainer.step,
        "samples_per_second": trainer.step * cfg.train.batch_size / max(trainer.elapsed, 1e-9),
        "final_losses": history[-1] if history else {},
    }
    if device.type == "cuda":
        report["cuda_max_memory_allocated"] = torch.cuda.max_memory_allocated(device)
    # the source's audio starts at its first frame: only an untrimmed start keeps it in sync
    audio = input_path if clip.info.has_audio and cfg.io.start_frame == 0 else None
    write_run_outputs(outdir, model, clip, cfg, history, trainer.z_range, report, timer, audio)
    return report


def _describe_exposures(log_exposure: np.ndarray) -> str:
    relative = np.exp(log_exposure - log_exposure.min())
    pattern = relative[: min(4, relative.size)]
    return "pattern " + ", ".join(f"{v:.2g}" for v in pattern) + ("..." if relative.size > 4 else "")


def load_run_config(outdir: Path, overrides: dict[str, Any]) -> Config:
    """The saved config of a run being resumed, with the user's explicit overrides on top."""
    return load_config(preset="", config_file=outdir / CONFIG_NAME, overrides=overrides)
