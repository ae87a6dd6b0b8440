"""``vidcam enhance``: prepare (decode, plan, flow) -> build (model, data) -> train -> write."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidcam import run as run_folder
from vidcam.config import Config, save_config
from vidcam.errors import VidcamError
from vidcam.export import write_run_outputs
from vidcam.flow.estimate import FlowBackend, compute_flows, resolve_backend
from vidcam.flow.types import FlowPair
from vidcam.io.video import Clip, read_video
from vidcam.log import frame_ranges, log
from vidcam.models.model import ClipShape, VidcamModel
from vidcam.motion import foreground_from_motion, initial_motions, load_masks
from vidcam.plan import RunPlan, plan_frames, resolve
from vidcam.report_html import write_report_html
from vidcam.resources import check_clip
from vidcam.run import (
    Report,
    StageTimer,
    audio_source,
    default_outdir,
    forget_unstarted_run,
    pick_device,
)
from vidcam.runlock import claim_run_folder, mark_complete
from vidcam.sharpness import frame_sharpness, sharp_frame_weights, still_frames
from vidcam.threads import apply_threads, planned_threads
from vidcam.training.data import ClipData
from vidcam.training.trainer import Trainer
from vidcam.upscale import OutputFrames, fit_max_side


@dataclass
class Prepared:
    """Everything known about the clip before a model exists."""

    clip: Clip
    frames: np.ndarray | None  # float32 [N,H,W,3] in [0, 1]; None once ``build`` has used it
    plan: RunPlan
    backend: FlowBackend
    flows: dict[int, FlowPair]
    foreground: np.ndarray | None  # float [N,H,W] in [0, 1]: the foreground layer's initial alpha


def prepare(
    input_path: Path, outdir: Path, cfg: Config, device: torch.device, resume: bool, timer: StageTimer
) -> Prepared:
    """Decode the clip, resolve the plan, save the settings, compute flow and the foreground mask."""
    with timer.stage("decode"):
        clip = read_video(input_path, cfg.io.start_frame, cfg.io.max_frames, fit_max_side(cfg.io))
    if clip.n_frames < 2:
        raise VidcamError(f"{input_path} has {clip.n_frames} frame(s); vidcam needs at least 2")
    output = OutputFrames.for_clip(clip, cfg.io)
    fitted = f", fitted at {clip.width}x{clip.height}" if output.upscaled else ""
    log(f"{clip.n_frames} frames of {output.size[0]}x{output.size[1]}{fitted} at {float(clip.fps):.3g} fps on {device}")
    frames = clip.frames_float()
    plan = resolve(cfg, plan_frames(clip.frames))
    log(f"mode: {plan.mode} ({'exposure ' + plan.describe_exposures() if plan.mode == 'hdr' else 'single exposure'})")
    save_config(cfg, outdir / run_folder.CONFIG_NAME)  # on resume: the saved one with the allowed changes
    return analyse(clip, frames, plan, cfg, device, outdir / run_folder.CACHE_DIR, timer)


def analyse(
    clip: Clip, frames: np.ndarray, plan: RunPlan, cfg: Config, device: torch.device, cache_dir: Path, timer: StageTimer
) -> Prepared:
    """Flow and the foreground mask of decoded frames (a whole clip, or one temporal window of it)."""
    backend = resolve_backend(cfg.flow, hdr=plan.mode == "hdr")
    with timer.stage("flow"):
        exposures = np.exp(plan.initial_log_exposure) if plan.mode == "hdr" else None
        flows = compute_flows(frames, cfg.flow, device, exposures, cache_dir, backend=backend)
    foreground = None
    if cfg.scene.layers > 1:
        foreground = load_masks(Path(cfg.masks), clip) if cfg.masks else foreground_from_motion(flows, cfg.motion)
    return Prepared(clip, frames, plan, backend, flows, foreground)


def build(cfg: Config, prepared: Prepared, device: torch.device) -> tuple[VidcamModel, ClipData]:
    """The model, initialised from the plan and the motion, and the clip as training data."""
    clip, plan = prepared.clip, prepared.plan
    torch.manual_seed(cfg.train.seed)  # network initialisation: a run is repeatable
    sharpness = frame_sharpness(prepared.frames) if plan.blur else None
    still = None
    if plan.blur and cfg.camera.still_window > 0:
        still = still_frames(sharpness, cfg.camera.still_window, cfg.camera.still_margin)
        if still:
            log(f"frames {frame_ranges(still)} are sharp in the input: their PSF stays a point")
    shape = ClipShape(
        clip.n_frames, clip.height, clip.width, plan.blur, plan.learn_exposure, still_frames=still,
        atlas_dynamics=cfg.scene.atlas_dynamics,
    )
    motions = initial_motions(cfg, prepared.flows, prepared.foreground)
    model = VidcamModel(cfg, shape, plan.initial_log_exposure, motions).to(device)
    frame_weights = None
    if plan.blur and cfg.train.sharp_first > 0:
        frame_weights = sharp_frame_weights(sharpness, cfg.train.sharp_window, cfg.train.sharp_power)
    data = ClipData(clip.frames, prepared.flows, device, prepared.foreground, cfg.train.seed, frame_weights)
    # The float frames and float32 flows now live on in the model and the data (flows as float16):
    # let them go before training, a third of a fit's peak memory.
    prepared.frames, prepared.flows, prepared.foreground = None, {}, None
    return model, data


def new_report(input_path: Path, prepared: Prepared, device: torch.device, cfg: Config) -> Report:
    clip, plan = prepared.clip, prepared.plan
    exposures = {"source": plan.exposure_source, "period": plan.exposure_period, "ratio": plan.exposure_ratio}
    if plan.exposure_source == "user":
        exposures["values"] = cfg.exposures
    return Report(
        input=str(input_path.resolve()),  # report.html and atlas find it from anywhere
        mode=plan.mode,
        device=str(device),
        frames=clip.n_frames,
        size=list(OutputFrames.for_clip(clip, cfg.io).size),
        fps=str(clip.fps),
        plan=plan.to_dict(),
        flow={"backend": prepared.backend.name, "reason": prepared.backend.reason, "gaps": cfg.flow.gaps},
        exposures=exposures | {"initial": np.exp(plan.initial_log_exposure).tolist()},
    )


def enhance(input_path: Path, outdir: Path | None, cfg: Config, resume: bool = False) -> Report:
    """Fit the model to the clip and write every output into ``outdir``; returns the report.

    The folder is locked for the run's life (vidcam.runlock); its ``complete`` marker is the last write.
    """
    input_path = Path(input_path)
    outdir = Path(outdir) if outdir else default_outdir(input_path)
    plan = check_clip(input_path, cfg, threads=planned_threads(cfg.threads), device=pick_device(cfg.device).type)  # too small for flow or too big for memory: refused before any work
    existed = outdir.exists()
    with claim_run_folder(outdir, resume):
        log(plan.describe())  # once the folder is ours: a refused run says only why
        try:
            report = _enhance_locked(input_path, outdir, cfg, resume)
        except BaseException:
            if not resume:  # a fresh run that never trained leaves a folder that takes a fresh run
                forget_unstarted_run(outdir, remove_folder=not existed)
            raise
        if cfg.render.export_atlas:
            from vidcam.atlas import export_atlas

            export_atlas(outdir, outdir / run_folder.ATLAS_DIR, cfg.device, overwrite=True)  # the run's own folder
            write_report_html(outdir)  # again, now with the atlases
        mark_complete(outdir)
    return report


def _enhance_locked(input_path: Path, outdir: Path, cfg: Config, resume: bool) -> Report:
    timer = StageTimer()
    device = pick_device(cfg.device)
    threads = apply_threads(cfg.threads)

    prepared = prepare(input_path, outdir, cfg, device, resume, timer)
    model, data = build(cfg, prepared, device)
    trainer = Trainer(cfg, prepared.plan, model, data, outdir / run_folder.CHECKPOINT_NAME)
    with timer.stage("train"):
        history = trainer.fit(resume)
    model.eval()

    report = new_report(input_path, prepared, device, cfg)
    report.exposures["learned"] = model.exposures.all().exp().detach().cpu().tolist()
    report.steps = trainer.step
    report.samples_per_second = trainer.step * cfg.train.batch_size / max(trainer.elapsed, 1e-9)
    report.final_losses = history[-1] if history else {}
    report.threads = threads
    if device.type == "cuda":
        report.cuda_max_memory_allocated = torch.cuda.max_memory_allocated(device)
    audio = audio_source(input_path, prepared.clip.info.has_audio, cfg.io.start_frame)
    report.audio = str(audio) if audio is not None else None
    write_run_outputs(outdir, model, prepared.clip, cfg, prepared.plan, history, trainer.z_range, report, timer, audio,
        OutputFrames.for_clip(prepared.clip, cfg.io), data.flows,
    )
    return report
