"""What a run will cost, known from the probe before any frame is decoded or anything written:
is the clip big enough for optical flow and small enough for this machine's memory, and the plan
(frames, sizes, windows, workers) with its estimated memory and time per stage, printed up front."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from vidcam.config import Config
from vidcam.errors import VidcamError
from vidcam.flow.estimate import expected_backend, flow_resolution
from vidcam.io.video import VideoInfo, output_size, probe
from vidcam.windows import Window, split_windows

# OpenCV's DIS flow (the backend without weights, and RAFT's fallback) refuses smaller frames.
MIN_FRAME_SIDE = 12
# A clip may use at most this fraction of the memory available, the rest left to the system.
MEMORY_HEADROOM = 0.9


def planned_size(info: VideoInfo, cfg: Config) -> tuple[int, int, int]:
    """(frames, width, height) the run will decode, from the probe and the io settings."""
    io = cfg.io
    if io.start_frame >= info.n_frames:
        raise VidcamError(f"start frame {io.start_frame} is outside the video ({info.n_frames} frames)")
    available = info.n_frames - io.start_frame
    count = available if io.max_frames is None else min(io.max_frames, available)
    width, height = output_size(info.width, info.height, io.max_side)
    return count, width, height


def check_frame_size(info: VideoInfo, cfg: Config) -> None:
    """Refuse frames too small for optical flow, naming --max-side when the downscale made them so."""
    _, width, height = planned_size(info, cfg)
    if min(width, height) < MIN_FRAME_SIDE:
        if (width, height) != (info.width, info.height):
            raise VidcamError(
                f"--max-side {cfg.io.max_side} shrinks the {info.width}x{info.height} frames to {width}x{height}; "
                f"vidcam needs at least {MIN_FRAME_SIDE} px on each side: raise --max-side or leave it out"
            )
        raise VidcamError(
            f"{info.path} has {width}x{height} frames; vidcam needs at least {MIN_FRAME_SIDE} px on each side"
        )
    flow_height, flow_width = flow_resolution(height, width, cfg.flow.max_side)
    if min(flow_width, flow_height) < MIN_FRAME_SIDE:
        raise VidcamError(
            f"{width}x{height} frames are {flow_width}x{flow_height} at flow.max_side {cfg.flow.max_side}; "
            f"flow needs at least {MIN_FRAME_SIDE} px on each side: raise flow.max_side (--set flow.max_side=N)"
        )


def available_memory() -> int | None:
    """Bytes the system can give without swapping (MemAvailable); None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(count: int) -> str:
    return f"{count / 2**30:.1f} GB"


def check_clip(input_path: Path, cfg: Config, workers: int = 1, threads: int = 1, device: str = "cpu") -> RunForecast:
    """Everything refused from the probe alone (frames too small for flow, a plan too big for
    memory); returns the plan, for printing. ``device``: ``cpu`` or ``cuda``, where the fits run."""
    info = probe(input_path)
    check_frame_size(info, cfg)
    plan = forecast(info, cfg, workers, threads, device)
    check_memory(plan)
    return plan


# ----------------------------------------------------------------------------- the plan up front

# Seconds per unit of work on one CPU core, measured on this project's 2-core x86 machine from
# the stages of a 300-frame 1080p run (tools/bench_scale.py prints the estimate beside what a run
# took). Where a task has more threads, stages run THREAD_SPEEDUP times faster per doubling.
DECODE_S_PER_MPIX = 0.011  # decoding (and area-resizing) one megapixel of the source
RAY_START_S = 10.0  # starting a local Ray and its workers
# One flow field (one direction) at the fit size. RAFT measured 2026-11-25 on 320x180 and 640x360
# frames (2 threads: small 5.4-6.1 s, large 16.7-18.2 s per field-megapixel).
FLOW_S_PER_MPIX = {"dis": 0.47, "raft_small": 9.5, "raft_large": 28.0}
MOTION_S_PER_MPIX = 0.3  # homographies and the foreground mask, per frame at the fit size
SETUP_S = 3.0  # building the model and the data of one fit (the tone pre-fit and bootstrap count in the time budget)
SAMPLES_PER_S = {"hdr": 27_000, "deblur": 14_000}  # training pixels per second, one core
RENDER_S_PER_MPIX = 2.0  # fast render + fidelity guard, per frame at the fit size
OUTPUT_S_PER_MPIX = {"hdr": 0.25, "deblur": 0.10}  # the output pass per output frame: upscaling, tone mapping, encoders
THREAD_SPEEDUP = 1.6
# On CUDA, measured on one H100 (2026-11-24, fast and default presets, 320x180 to 640x363 fits):
# a training step costs about the same whatever its batch (kernel launches and syncs, not
# arithmetic), and RAFT runs on the GPU; DIS flow, the render's guard and the writers stay on the CPU.
CUDA_STEP_S = 0.045  # one training step
CUDA_RAFT_S_PER_MPIX = 0.6  # one RAFT flow field at the fit size
# Memory, fitted to what tools/bench_scale.py measured (PSS of all of a run's processes): a fit
# holds this much per pixel of its frames at the fit size (frames, flow, foreground, training
# tensors) ...
BYTES_PER_FIT_PIXEL = 50
# ... above what each process holds whatever the clip (torch, the model, render tiles);
PROCESS_BYTES = 1 * 2**30
# the output pass holds this much per output pixel: the encoders' look-ahead (x265 at 1080p: about
# 1.4 GB, tools/measure_memory.py), the frames queued for them and the EXR writer. A 300-frame
# 1080p run (two fits of 84 frames at 640x360 at once) peaked at 4.9 GB, an 80-frame 1080p one at 3.1 GB.
OUTPUT_FRAME_BYTES = 1000
RAY_BYTES = 0.5 * 2**30  # a local Ray's own processes
# A process that runs on CUDA holds the CUDA context and libraries in host memory too (peak RSS on
# an H100 machine: 2.1-2.4 GB for 320x180 clips that peak at 1.2-1.4 GB on the CPU).
CUDA_PROCESS_BYTES = 1 * 2**30


@dataclass
class RunForecast:
    """One clip's plan and its estimated cost, before any heavy work."""

    name: str
    frames: int
    output: tuple[int, int]  # (width, height) written
    fit: tuple[int, int]  # (width, height) fitted
    windows: list[Window]
    workers: int  # fits running at once
    threads: int  # torch threads per fit
    memory: int  # bytes at the peak
    seconds: dict[str, float]  # wall seconds per stage
    device: str = "cpu"  # where the fits run: cpu or cuda

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def describe(self) -> str:
        fitted = f", fitted at {self.fit[0]}x{self.fit[1]}" if self.fit != self.output else ""
        if len(self.windows) > 1:
            spans = ", ".join(f"{w.start}-{w.end - 1}" for w in self.windows)
            split = f"{len(self.windows)} windows ({spans}), {self.workers} at a time"
        else:
            split = "one fit"
        stages = ", ".join(f"{stage} {describe_duration(seconds)}" for stage, seconds in self.seconds.items())
        return (
            f"plan for {self.name}: {self.frames} frames of {self.output[0]}x{self.output[1]}{fitted}; {split}; "
            f"about {_gib(self.memory)} of memory; about {describe_duration(self.total_seconds)} on this {'GPU' if self.device == 'cuda' else 'CPU'} ({stages})"
        )


def describe_duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _speedup(threads: int) -> float:
    return THREAD_SPEEDUP ** math.log2(max(threads, 1))


def fit_seconds(frames: int, fit_mpix: float, cfg: Config, mode: str, threads: int, device: str = "cpu") -> dict[str, float]:
    """Wall seconds of one fit's stages (flow, train, render) on ``frames`` frames of ``fit_mpix`` megapixels."""
    speedup = _speedup(threads)
    backend = expected_backend(cfg.flow, hdr=cfg.mode == "hdr")  # mode auto may turn out deblur: the dearer flow
    fields = 2 * sum(max(frames - gap, 0) for gap in cfg.flow.gaps)
    if backend == "raft":
        field_s = CUDA_RAFT_S_PER_MPIX if device == "cuda" else FLOW_S_PER_MPIX[f"raft_{cfg.flow.raft_model}"] / speedup
    else:
        field_s = FLOW_S_PER_MPIX["dis"] / speedup
    flow = fields * fit_mpix * field_s + frames * fit_mpix * MOTION_S_PER_MPIX / speedup
    tc = cfg.train
    if device == "cuda":
        steps_seconds = tc.steps * CUDA_STEP_S
    else:
        steps_seconds = tc.steps * tc.batch_size / (SAMPLES_PER_S[mode] * speedup)
    train = SETUP_S + (min(steps_seconds, tc.time_budget) if tc.time_budget else steps_seconds)
    render = frames * fit_mpix * RENDER_S_PER_MPIX / speedup
    return {"flow": flow, "train": train, "render": render}


def forecast(info: VideoInfo, cfg: Config, workers: int, threads: int, device: str = "cpu") -> RunForecast:
    """The plan of the probed clip under ``cfg`` with ``workers`` fits at once, each with ``threads``
    torch threads on ``device`` (cpu or cuda), and its estimated peak memory and time per stage."""
    frames, width, height = planned_size(info, cfg)
    fit = output_size(width, height, cfg.io.fit_side)
    windows = split_windows(frames, cfg.windows.frames, cfg.windows.overlap)
    workers = max(1, min(workers, len(windows)))
    mode = "deblur" if cfg.mode == "deblur" else "hdr"  # auto: mostly decided by the clip; HDR costs more to write
    fit_mpix, out_mpix, source_mpix = fit[0] * fit[1] / 1e6, width * height / 1e6, info.width * info.height / 1e6
    longest = max(w.n_frames for w in windows)
    per_fit = fit_seconds(longest, fit_mpix, cfg, mode, threads, device)
    rounds = math.ceil(len(windows) / workers)
    upscaled = fit != (width, height)
    seconds = {
        "prepare": frames * source_mpix * DECODE_S_PER_MPIX * (2 if upscaled else 1) + (RAY_START_S if workers > 1 else 0),
        **{stage: rounds * value for stage, value in per_fit.items()},
        "write": frames * out_mpix * OUTPUT_S_PER_MPIX[mode],
    }
    memory = estimate_memory(frames, longest, fit[0] * fit[1], width * height, len(windows) > 1, workers, info.bit_depth)
    memory += workers * CUDA_PROCESS_BYTES if device == "cuda" else 0
    return RunForecast(info.path.name, frames, (width, height), fit, windows, workers, threads, memory, seconds, device)


def estimate_memory(
    frames: int, fit_frames: int, fit_pixels: int, output_pixels: int, windowed: bool, workers: int, bit_depth: int = 8
) -> int:
    """Bytes of host memory at the peak: ``workers`` fits of ``fit_frames`` frames at once (and,
    for a windowed clip, the driver holding the decoded clip for the join), or the output pass."""
    sample = 6 if bit_depth > 8 else 3
    fits = workers * (PROCESS_BYTES + (BYTES_PER_FIT_PIXEL + sample - 3) * fit_frames * fit_pixels)
    driver = PROCESS_BYTES + sample * frames * fit_pixels if windowed else 0
    ray = RAY_BYTES if workers > 1 else 0
    output = PROCESS_BYTES + sample * frames * fit_pixels + OUTPUT_FRAME_BYTES * output_pixels
    return int(max(fits + driver + ray, output))


def check_memory(plan: RunForecast) -> None:
    """Refuse a plan whose memory this machine cannot give, naming a fit size that would fit."""
    available = available_memory()
    if available is None or plan.memory <= available * MEMORY_HEADROOM:
        return
    longest = max(w.n_frames for w in plan.windows)
    fit_pixels = plan.fit[0] * plan.fit[1]
    windowed = len(plan.windows) > 1
    side = max(plan.fit)
    while side > 4 * MIN_FRAME_SIDE:  # the largest fit side (multiple of 16) whose plan fits
        side -= 16
        pixels = fit_pixels * (side / max(plan.fit)) ** 2
        needed = estimate_memory(plan.frames, longest, int(pixels), plan.output[0] * plan.output[1], windowed, plan.workers)
        if needed <= available * MEMORY_HEADROOM:
            break
    smaller = f"--set io.fit_side={side}, " if side > 4 * MIN_FRAME_SIDE else ""
    raise VidcamError(
        f"{plan.name}: {plan.frames} frames fitted at {plan.fit[0]}x{plan.fit[1]}, {plan.workers} fit(s) at a time, "
        f"need about {_gib(plan.memory)} of memory and {_gib(available)} is available: fit smaller or fewer frames "
        f"({smaller}--max-side, --max-frames, --set windows.frames=N) or run fewer at once (--set parallel.num_cpus=1)"
    )
