"""Checks made from the probe, before any frame is decoded or anything written: is the clip
big enough for optical flow, and small enough for this machine's memory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vidcam.config import Config
from vidcam.errors import VidcamError
from vidcam.flow.estimate import flow_resolution
from vidcam.io.video import VideoInfo, output_size, probe

# OpenCV's DIS flow (the backend without weights, and RAFT's fallback) refuses smaller frames.
MIN_FRAME_SIDE = 12
# Host memory a run holds at its peak per pixel of the clip (frames x height x width): the
# decoded frames (3) and their float copy (12), forward and backward flow with validity masks
# (18, then 10 more as training tensors), the foreground mask, the rendered clip, its scaled
# copy and the tone-mapped frames. tools/measure_memory.py measured 68 per pixel between 10 and
# 40 frames of 640x360 (HDR mode, CPU), and 73 at the foreground stage alone on 1920x1080,
# where flow is upsampled from flow.max_side; rounded up for the allocator's slack.
BYTES_PER_CLIP_PIXEL = 100
# Frames from deeper than 8-bit sources are uint16: 3 bytes more per pixel.
BYTES_PER_CLIP_PIXEL_DEEP = 3
# What a run holds whatever the clip's length: torch itself (1.0 GB), the model and its
# optimiser state, render tiles (0.85 GB more at 640x360).
BASE_BYTES = 2 * 2**30
# A clip may use at most this fraction of the memory available, the rest left to the system.
MEMORY_HEADROOM = 0.9
# Clips whose estimate exceeds this are announced with their estimate.
ANNOUNCE_BYTES = 4 * 2**30


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


def estimate_memory(frames: int, width: int, height: int, bit_depth: int = 8) -> int:
    """Bytes of host memory a run on a clip of this size is expected to hold at its peak."""
    per_pixel = BYTES_PER_CLIP_PIXEL + (BYTES_PER_CLIP_PIXEL_DEEP if bit_depth > 8 else 0)
    return BASE_BYTES + per_pixel * frames * width * height


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


def check_memory(info: VideoInfo, cfg: Config) -> None:
    """Refuse a clip whose run would not fit in the available memory, suggesting a --max-side
    that fits; announce the estimate of a large clip that does."""
    frames, width, height = planned_size(info, cfg)
    needed = estimate_memory(frames, width, height, info.bit_depth)
    available = available_memory()
    if available is None:
        return
    budget = available * MEMORY_HEADROOM
    clip = f"{frames} frames of {width}x{height}"
    if needed > budget:
        per_frame_pixel = (needed - BASE_BYTES) / (frames * width * height)
        room = max(budget - BASE_BYTES, 0) / (per_frame_pixel * frames)  # pixels per frame that fit
        side = int(max(width, height) * (room / (width * height)) ** 0.5) // 16 * 16
        smaller = f"--max-side {side} or " if side >= 4 * MIN_FRAME_SIDE else ""
        raise VidcamError(
            f"{clip} need about {_gib(needed)} of memory and {_gib(available)} is available: "
            f"use smaller or fewer frames ({smaller}--max-frames)"
        )
    if needed > ANNOUNCE_BYTES:
        print(f"vidcam: {clip}: about {_gib(needed)} of memory ({_gib(available)} available)", file=sys.stderr)


def check_clip(input_path: Path, cfg: Config) -> None:
    """Everything refused from the probe alone: frames too small for flow, a clip too big for memory."""
    info = probe(input_path)
    check_frame_size(info, cfg)
    check_memory(info, cfg)
