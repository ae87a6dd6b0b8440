"""Pictures of optical flow: the Middlebury colour coding and per-gap PNG sequences and videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vidcam.errors import VidcamError
from vidcam.flow.types import FlowPair
from vidcam.io.atomic import atomic_path

VIS_PERCENTILE = 99.0  # flow magnitude that maps to full colour saturation in visualisations


def _colour_wheel() -> np.ndarray:
    """The Middlebury colour wheel (Baker et al. 2011): [55, 3] RGB in [0, 1]."""
    segments = ((15, (1, 0, 0), (1, 1, 0)), (6, (1, 1, 0), (0, 1, 0)), (4, (0, 1, 0), (0, 1, 1)),
                (11, (0, 1, 1), (0, 0, 1)), (13, (0, 0, 1), (1, 0, 1)), (6, (1, 0, 1), (1, 0, 0)))  # fmt: skip
    parts = []
    for length, start, end in segments:
        ramp = np.arange(length)[:, None] / length
        parts.append((1 - ramp) * np.array(start) + ramp * np.array(end))
    return np.concatenate(parts)


_WHEEL = _colour_wheel()


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """uint8 RGB [..., H, W, 3]: hue = direction, saturation = magnitude / max_magnitude."""
    flow = np.nan_to_num(np.asarray(flow, np.float32))
    u, v = flow[..., 0], flow[..., 1]
    if max_magnitude is None:
        max_magnitude = float(np.hypot(u, v).max(initial=0.0))
    scale = max(max_magnitude, np.finfo(np.float32).eps)
    radius = np.hypot(u, v) / scale
    position = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (len(_WHEEL) - 1)
    low = np.floor(position).astype(int)
    high = (low + 1) % len(_WHEEL)
    frac = (position - low)[..., None]
    colour = (1 - frac) * _WHEEL[low] + frac * _WHEEL[high]
    inside = (radius <= 1)[..., None]
    colour = np.where(inside, 1 - radius[..., None] * (1 - colour), colour * 0.75)  # 0.75: out of range
    return np.clip(colour * 255 + 0.5, 0, 255).astype(np.uint8)


def visualisation_paths(out_dir: Path, gap: int) -> tuple[Path, Path]:
    """Where ``export_flow_visualisation`` writes gap ``gap``: the PNG folder and the video."""
    return Path(out_dir) / f"flow_k{gap}", Path(out_dir) / f"flow_k{gap}.mp4"


def export_flow_visualisation(flows: dict[int, FlowPair], out_dir: Path, fps: float) -> None:
    """PNGs ``flow_k{gap}/00000.png ...`` and a video ``flow_k{gap}.mp4`` of the forward flows.

    One colour scale per gap (a high percentile of the magnitudes) so colours compare across
    frames; pixels failing the consistency check are shown at half brightness.
    """
    from vidcam.io.encode import (
        write_sdr_video,  # imported late: video I/O pulls in PyAV
    )

    out_dir = Path(out_dir)
    for gap, pair in sorted(flows.items()):
        if len(pair.forward) == 0:
            continue
        images = _flow_images(pair)
        folder, video = visualisation_paths(out_dir, gap)
        folder.mkdir(parents=True, exist_ok=True)
        for t, image in enumerate(images):
            with atomic_path(folder / f"{t:05d}.png") as tmp:
                if not cv2.imwrite(str(tmp), image[..., ::-1]):
                    raise VidcamError(f"cannot write {folder / f'{t:05d}.png'}")
        write_sdr_video(video, images, fps)


def _flow_images(pair: FlowPair) -> np.ndarray:
    magnitude = np.linalg.norm(pair.forward, axis=-1)
    scale = float(np.percentile(magnitude[pair.valid_forward], VIS_PERCENTILE)) if pair.valid_forward.any() else None
    images = flow_to_color(pair.forward, scale)
    images[~pair.valid_forward] //= 2
    return images
