"""``vidcam enhance a.mp4 b.mp4 folder/``: every clip, and every window of a long clip, as one task.

A clip of at most ``windows.frames`` frames is one task: the whole-clip fit of vidcam.pipeline,
exactly as a single ``vidcam enhance`` runs it. A longer clip is decoded and planned here, its
windows become tasks (``fit_window``), and once they are done it is joined and written
here. All tasks of all clips go to vidcam.parallel together, so two GPUs fit two windows at once.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcam import run as run_folder
from vidcam.config import Config, save_config
from vidcam.errors import VidcamError
from vidcam.export import (
    FrameUpscaler,
    display_frame,
    measure_display,
    open_writers,
    write_frame,
)
from vidcam.fast_render import rendered_frames
from vidcam.fidelity import FidelityGuard, InverseTone
from vidcam.highlights import HighlightFill, irradiance_ceiling
from vidcam.io.atomic import atomic_path, atomic_write_text
from vidcam.io.encode import write_sdr_video
from vidcam.io.video import Clip, probe, read_video
from vidcam.log import log
from vidcam.parallel import Task, concurrency, run_tasks
from vidcam.pipeline import analyse, build, enhance
from vidcam.progress import progress
from vidcam.report_html import write_report_html
from vidcam.plan import RunPlan, plan_frames, resolve
from vidcam.resources import RunForecast, check_clip, describe_duration
from vidcam.rendering import to_uint8
from vidcam.run import (
    CHECKPOINT_NAME,
    Report,
    StageTimer,
    audio_source,
    default_outdir,
    pick_device,
)
from vidcam.runlock import claim_run_folder, mark_complete
from vidcam.streaming import FrameSinks
from vidcam.threads import apply_threads
from vidcam.training.trainer import Trainer
from vidcam.upscale import OutputFrames, fit_max_side
from vidcam.windows import (
    WINDOW_CONFIDENCE,
    WINDOW_DONE,
    WINDOW_RENDER,
    WINDOW_TONE,
    FlickerMeter,
    Window,
    chained_gains,
    frame_weights,
    joined_frame,
    load_window_render,
    split_windows,
    window_clip,
    window_folder,
    window_plan,
    windows_summary,
)

PREPASS_STEP = 4  # the display pre-pass of a windowed join samples every 4th pixel of every 4th row
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".mts"}


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; a folder stands for the video files directly in it (sorted by name)."""
    inputs: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise VidcamError(f"folder {path} holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
            inputs += found
        elif path.is_file():
            inputs.append(path)
        else:
            raise VidcamError(f"file not found: {path}")
    return inputs


def output_folders(inputs: list[Path], output: Path | None) -> list[Path]:
    """One clip: ``output`` or ``<stem>_vidcam`` beside it; several: ``output/<stem>`` or beside each."""
    if len(inputs) == 1:
        return [output or default_outdir(inputs[0])]
    folders = [output / path.stem if output else default_outdir(path) for path in inputs]
    if len(set(folders)) < len(folders):
        raise VidcamError("two inputs would share an output folder (same file name): give them different names")
    return folders


@dataclass
class ClipJob:
    input_path: Path
    outdir: Path
    cfg: Config
    resume: bool
    windows: list[Window]
    tasks: list[Task]
    clip: Clip | None = None  # windowed clips only: decoded here
    plan: RunPlan | None = None
    timer: StageTimer = field(default_factory=StageTimer)

    @property
    def windowed(self) -> bool:
        return len(self.windows) > 1


def frames_used(input_path: Path, cfg: Config) -> int:
    info = probe(input_path)
    available = max(info.n_frames - cfg.io.start_frame, 0)
    return available if cfg.io.max_frames is None else min(cfg.io.max_frames, available)


def plan_job(
    input_path: Path, outdir: Path, cfg: Config, resume: bool, locks: contextlib.ExitStack, plan: RunForecast
) -> ClipJob:
    """The tasks of one clip: the whole-clip fit (which locks its own folder), or (long clips) one
    per window, the folder locked in ``locks`` until the join is written."""
    windows = split_windows(frames_used(input_path, cfg), cfg.windows.frames, cfg.windows.overlap)
    if len(windows) == 1:
        return ClipJob(input_path, outdir, cfg, resume, windows, [(enhance, (input_path, outdir, cfg, resume))])
    locks.enter_context(claim_run_folder(outdir, resume))
    log(plan.describe())  # once the folder is ours: a refused run says only why
    job = ClipJob(input_path, outdir, cfg, resume, windows, [])
    with job.timer.stage("decode"):
        job.clip = read_video(input_path, cfg.io.start_frame, cfg.io.max_frames, fit_max_side(cfg.io))
    windows = split_windows(job.clip.n_frames, cfg.windows.frames, cfg.windows.overlap)  # decoded count is the truth
    job.windows = windows
    job.plan = resolve(cfg, plan_frames(job.clip.frames))
    log(
        f"{input_path.name}: {job.clip.n_frames} frames of {job.clip.width}x{job.clip.height} in {len(windows)} windows "
        f"({', '.join(f'{w.start}-{w.end - 1}' for w in windows)}), mode {job.plan.mode}"
    )
    if not resume:
        save_config(cfg, outdir / run_folder.CONFIG_NAME)
    cache = outdir / run_folder.CACHE_DIR
    job.tasks = [
        (fit_window, (window_clip(job.clip, w), window_plan(job.plan, w), cfg, window_folder(outdir, w), cache, resume))
        for w in windows
    ]
    return job


def finish_job(job: ClipJob, results: list) -> Report:
    """A whole-clip fit's report as it came; a windowed clip joined, written and reported.

    The join streams like a whole-clip export: each output frame is blended from the windows'
    fit-size renders (memory-mapped), brought to the output size and handed to the writers."""
    if not job.windowed:
        return results[0]
    clip, plan, cfg, rc, timer = job.clip, job.plan, job.cfg, job.cfg.render, job.timer
    windows, camera = job.windows, plan.operator == "camera"
    folders = [window_folder(job.outdir, w) for w in windows]
    renders = [load_window_render(job.outdir, w) for w in windows]
    with timer.stage("join"):
        # Camera output is display-referred: blended as it is, not rescaled.
        gains = chained_gains(renders, windows, aligned=not camera)
        weights, naive_weights = frame_weights(windows), frame_weights(windows, blend=False)
        ones = [1.0] * len(windows)
        stats = None
        if not camera:  # one exposure scale and one tone curve for the whole clip
            samples = (joined_frame(renders, windows, weights, gains, t)[::PREPASS_STEP, ::PREPASS_STEP].reshape(-1, 3) for t in range(clip.n_frames))
            stats = measure_display(samples, rc.key, rc.hdr10_white_nits, rc.hdr10_peak_nits)
    inverses = [InverseTone.from_table(**np.load(folder / WINDOW_TONE)) for folder in folders]
    main_window = weights.argmax(axis=0)  # per frame: the window whose response and confidence it takes
    output = OutputFrames.for_clip(clip, cfg.io)
    upscalers = [FrameUpscaler(output, rc, None if camera else inverse) for inverse in inverses]
    audio = audio_source(job.input_path, clip.info.has_audio, cfg.io.start_frame)
    meters = FlickerMeter(windows), FlickerMeter(windows)  # the blended, aligned join; the naive one

    def display(image: np.ndarray) -> np.ndarray:
        return to_uint8(image) if stats is None else display_frame(image * stats.scale, plan.operator, stats)

    with FrameSinks() as sinks:
        open_writers(sinks, job.outdir, output, rc, plan, stats, audio, unchanged_frames(windows, weights, results))
        for t, full_input in enumerate(progress(output.inputs(), "join", total=clip.n_frames, unit="frame")):
            with timer.stage("join"):
                image = joined_frame(renders, windows, weights, gains, t)
                meters[0].add(display(image))
                meters[1].add(display(joined_frame(renders, windows, naive_weights, ones, t)))
                image = upscalers[main_window[t]](image, full_input)
                hdr = None if stats is None else image * stats.scale
                sdr = display(image)
            with timer.stage("encode"):
                write_frame(sinks, job.outdir, t, full_input, rc, hdr, sdr)
        with timer.stage("encode"):
            sinks.close()
    flicker, naive_flicker = meters[0].result(), meters[1].result()
    log(
        f"{job.input_path.name}: seam flicker (mean |frame-to-frame change|, 0-255) at borders {flicker['border']:.3f}, "
        f"elsewhere {flicker['elsewhere']:.3f}; hard cut without alignment: {naive_flicker['border']:.3f}; "
        f"mean brightness change at borders {flicker['brightness_border']:.3f}, elsewhere {flicker['brightness_elsewhere']:.3f}"
    )
    fidelity = None
    if rc.fidelity == "guard":
        confidences = [np.load(folder / WINDOW_CONFIDENCE, mmap_mode="r") for folder in folders]
        picked = [(confidences[k], t - windows[k].start) for t, k in enumerate(main_window)]
        grey = (np.repeat(c[i][..., None], 3, axis=-1) for c, i in picked)
        write_sdr_video(job.outdir / run_folder.CONFIDENCE_VIDEO, grey, clip.fps, rc.video_crf())
        fidelity = {
            key: [results[k]["fidelity"][key][t - windows[k].start] for t, k in enumerate(main_window)]
            for key in ("rerender_psnr", "confidence", "expected_gain_db")
        }
    highlights = None
    if all(result.get("highlights") for result in results):
        highlights = {"filled": [results[k]["highlights"]["filled"][t - windows[k].start] for t, k in enumerate(main_window)]}
    for result in results:
        for stage, seconds in result["timings"].items():
            timer.seconds[f"windows_{stage}"] = timer.seconds.get(f"windows_{stage}", 0.0) + seconds
    report = Report(
        input=str(job.input_path),
        mode=plan.mode,
        device=results[0]["device"],
        frames=clip.n_frames,
        size=list(output.size),
        fps=str(clip.fps),
        threads=results[0]["threads"],
        audio=str(audio) if audio is not None else None,
        plan=plan.to_dict(),
        exposures={"source": plan.exposure_source, "period": plan.exposure_period, "ratio": plan.exposure_ratio},
        steps=sum(result["steps"] for result in results),
        tonemap=plan.operator,
        hdr_scale=stats.scale if stats is not None else None,
        timings=timer.seconds,
        fidelity=fidelity,
        highlights=highlights,
        windows=windows_summary(windows, gains, flicker, naive_flicker, results),
        config=cfg.to_dict(),
    )
    report.write(job.outdir)
    write_report_html(job.outdir)
    mark_complete(job.outdir)
    return report


def unchanged_frames(windows: list[Window], weights: np.ndarray, results: list[dict]) -> list[int]:
    """The frames of a joined clip that every window showing them took whole from the input as
    sharp already (``FidelityGuard.unchanged_frames``): the join leaves them as they were."""
    kept = [{w.start + t for t in (r.get("fidelity") or {}).get("sharp_frames", [])} for w, r in zip(windows, results)]
    return [
        t for t in range(weights.shape[1])
        if all(t in kept[k] for k in range(len(windows)) if weights[k, t] > 0)
    ]


def fit_window(clip: Clip, plan: RunPlan, cfg: Config, folder: Path, cache_dir: Path, resume: bool) -> dict[str, Any]:
    """Prepare, build, train, render and guard one window (a Ray task or a plain call); returns its summary.

    A window whose summary exists is done and is not touched again; an interrupted one continues
    from its checkpoint. Its output is the guarded render at the fit size (``WINDOW_RENDER``),
    with the guard's confidence and the learned response beside it, for the join.
    """
    folder = Path(folder)
    done = folder / WINDOW_DONE
    if done.is_file():
        return json.loads(done.read_text()) | {"skipped": True}
    folder.mkdir(parents=True, exist_ok=True)
    if not clip.frames.flags.writeable:  # Ray hands task arguments over read-only; torch wants to own them
        clip = Clip(clip.frames.copy(), clip.fps, clip.info, clip.frame_indices)
    device = pick_device(cfg.device)
    threads = apply_threads(cfg.threads)
    timer = StageTimer()
    prepared = analyse(clip, clip.frames_float(), plan, cfg, device, Path(cache_dir), timer)
    model, data = build(cfg, prepared, device)
    trainer = Trainer(cfg, plan, model, data, folder / CHECKPOINT_NAME)
    with timer.stage("train"):
        history = trainer.fit(resume)
    model.eval()
    flows = data.flows
    del data, prepared
    camera = plan.operator == "camera"
    rc = cfg.render
    guard = FidelityGuard(model, clip.frames, rc) if rc.fidelity == "guard" else None
    fill = HighlightFill.for_run(model, clip.frames, flows, rc, plan)
    ceiling = np.finfo(np.float16).max if camera else np.minimum(irradiance_ceiling(model, rc), np.finfo(np.float16).max)
    with timer.stage("render"):
        rendered = np.empty((clip.n_frames, clip.height, clip.width, 3), np.float16)
        frames = rendered_frames(model, rc, camera=camera and guard is None, desc=f"render {folder.name}")
        for t, image in enumerate(frames):
            if guard is not None:
                image = guard(t, camera, sharp_irradiance=image)
            if fill is not None:  # after the guard, whose verdicts rest on the model's own render
                image = fill(t, image)
            rendered[t] = np.minimum(image, ceiling)
    with atomic_path(folder / WINDOW_RENDER) as tmp, open(tmp, "wb") as handle:
        np.save(handle, rendered)
    inverse = InverseTone(model)
    with atomic_path(folder / WINDOW_TONE) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, z=inverse.z, values=inverse.values)
    fidelity = None
    if guard is not None:
        with atomic_path(folder / WINDOW_CONFIDENCE) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.stack(guard.confidence))
        fidelity = guard.summary()
    summary = {
        "steps": trainer.step,
        "threads": threads,
        "device": str(device),
        "timings": timer.seconds,
        "final_losses": history[-1] if history else {},
        "learned_exposures": model.exposures.all().exp().detach().cpu().tolist(),
        "fidelity": fidelity,
        "highlights": fill.summary() if fill is not None else None,
        "cuda_max_memory_allocated": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
    }
    atomic_write_text(done, json.dumps(summary, indent=2))
    return summary | {"skipped": False}


def enhance_all(inputs: list[Path], outdirs: list[Path], cfgs: list[Config], resume: bool = False) -> list[Report]:
    """Enhance every clip (its windows when long) as tasks run here or on Ray; one report per clip.

    Where the tasks run is decided by the first clip's ``parallel`` settings.
    """
    n_tasks = sum(len(split_windows(frames_used(Path(p), c), c.windows.frames, c.windows.overlap)) for p, c in zip(inputs, cfgs))
    workers, threads = concurrency(cfgs[0], n_tasks)
    device = pick_device(cfgs[0].device).type
    plans = [check_clip(Path(path), cfg, workers, threads, device) for path, cfg in zip(inputs, cfgs)]  # refused before any work
    if len(plans) > 1:  # each clip's own plan is printed when its work starts
        seconds = sum(plan.total_seconds * len(plan.windows) / plan.workers for plan in plans) / workers
        machine = "GPU" if device == "cuda" else "CPU"
        log(f"{len(plans)} clips in {n_tasks} tasks, {workers} at a time: about {describe_duration(seconds)} in all on this {machine}")
    with contextlib.ExitStack() as locks:
        jobs = [
            plan_job(Path(path), Path(outdir), cfg, resume, locks, plan)
            for path, outdir, cfg, plan in zip(inputs, outdirs, cfgs, plans)
        ]
        results = run_tasks([task for job in jobs for task in job.tasks], cfgs[0])
        reports, taken = [], 0
        for job in jobs:
            reports.append(finish_job(job, results[taken : taken + len(job.tasks)]))
            taken += len(job.tasks)
    return reports
