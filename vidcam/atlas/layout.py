"""Where each layer's atlas picture sits in atlas coordinates, and the file that records it.

``measure_coverage`` maps a stride of every frame's pixels through each layer and keeps the
atlas points the clip shows; ``plan_layout`` puts a box around them at about one texel per
frame pixel. ``atlas.json`` holds the layouts and the display curve: what ``vidcam edit``
needs to take a painted picture back to the atlas.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from vidcam.atlas.display import DisplayCurve
from vidcam.config import AtlasConfig
from vidcam.errors import VidcamError
from vidcam.io.atomic import atomic_write_text
from vidcam.models.model import VidcamModel
from vidcam.progress import progress
from vidcam.run import ATLAS_DIR, Run

LAYOUT_NAME = "atlas.json"
LAYOUT_VERSION = 1


@dataclass
class AtlasLayout:
    """Where a layer's atlas picture sits in atlas coordinates: texel (row i, column j) has its
    centre at u = u0 + (j + 0.5) (u1 - u0) / width, v = v0 + (i + 0.5) (v1 - v0) / height."""

    layer: int
    box: tuple[float, float, float, float]  # u0, v0, u1, v1
    width: int
    height: int
    units_per_pixel: float  # atlas units per frame pixel, from the mapping's Jacobian
    covered_fraction: float  # of the clip's pixels, where this layer is seen

    def grid(self, device: torch.device) -> Tensor:
        """[height*width, 2] uv of every texel centre, raster order."""
        u0, v0, u1, v1 = self.box
        u = u0 + (torch.arange(self.width, device=device) + 0.5) * ((u1 - u0) / self.width)
        v = v0 + (torch.arange(self.height, device=device) + 0.5) * ((v1 - v0) / self.height)
        vv, uu = torch.meshgrid(v, u, indexing="ij")
        return torch.stack([uu.reshape(-1), vv.reshape(-1)], dim=1)

    def normalised(self, uv: Tensor) -> Tensor:
        """uv [B,2] -> grid_sample coordinates (align_corners=False): -1 / +1 at the box's edges."""
        u0, v0, u1, v1 = self.box
        lo, size = uv.new_tensor([u0, v0]), uv.new_tensor([u1 - u0, v1 - v0])
        return 2 * (uv - lo) / size - 1

    def texel(self, uv: np.ndarray) -> np.ndarray:
        """uv [M,2] -> integer (column, row) [M,2] of the texel holding each point (may be outside)."""
        u0, v0, u1, v1 = self.box
        scale = np.array([self.width / (u1 - u0), self.height / (v1 - v0)])
        return np.floor((uv - np.array([u0, v0])) * scale).astype(np.int64)

    @property
    def file(self) -> str:
        return f"layer{self.layer}_atlas.png"


@dataclass
class Coverage:
    """Atlas points the clip shows, per layer, and the local scale of each layer's mapping."""

    uv: list[np.ndarray]  # per layer [M, 2]
    scale: list[np.ndarray]  # per layer [M]: atlas units per frame pixel at those points
    stride: int  # frame pixels between samples
    total: int  # pixels sampled


def _sample_stride(n_frames: int, height: int, width: int, samples: int) -> int:
    return max(1, math.ceil(math.sqrt(n_frames * height * width / samples)))


def _sampled_pixels(model: VidcamModel, stride: int, device: torch.device) -> Tensor:
    frame = model.frame
    xy = frame.pixel_centres(device).view(frame.height, frame.width, 2)
    return xy[stride // 2 :: stride, stride // 2 :: stride].reshape(-1, 2)


def _cover_threshold(layer: int, cfg: AtlasConfig) -> float:
    return cfg.background_cover if layer == 0 else cfg.foreground_cover


@torch.no_grad()
def measure_coverage(model: VidcamModel, cfg: AtlasConfig, chunk: int) -> Coverage:
    """Map a stride of every frame's pixels through each layer; keep the points where it is seen."""
    frame, scene = model.frame, model.scene
    device = model.device
    stride = _sample_stride(frame.n_frames, frame.height, frame.width, cfg.coverage_samples)
    xy_all = _sampled_pixels(model, stride, device)
    step_x = xy_all.new_tensor([frame.pixel_size, 0.0])
    step_y = xy_all.new_tensor([0.0, frame.pixel_size])
    uv: list[list[np.ndarray]] = [[] for _ in range(scene.n_layers)]
    scale: list[list[np.ndarray]] = [[] for _ in range(scene.n_layers)]
    for t in progress(range(frame.n_frames), "coverage", unit="frame", leave=False):
        for start in range(0, xy_all.shape[0], chunk):
            xy = xy_all[start : start + chunk]
            t_index = torch.full((xy.shape[0],), t, device=device, dtype=torch.long)
            centre = scene.uv(xy, t_index)  # [L,B,2]
            along_x, along_y = scene.uv(xy + step_x, t_index) - centre, scene.uv(xy + step_y, t_index) - centre
            area = along_x[..., 0] * along_y[..., 1] - along_x[..., 1] * along_y[..., 0]  # det of the Jacobian
            scale_here = area.abs().sqrt()  # [L,B] atlas units per frame pixel
            weights = scene.layer_weights(xy, t_index)
            for layer in range(scene.n_layers):
                seen = weights[:, layer] > _cover_threshold(layer, cfg)
                uv[layer].append(centre[layer][seen].float().cpu().numpy())
                scale[layer].append(scale_here[layer][seen].float().cpu().numpy())
    total = xy_all.shape[0] * frame.n_frames
    return Coverage([np.concatenate(u) for u in uv], [np.concatenate(s) for s in scale], stride, total)


def plan_layout(coverage: Coverage, layer: int, cfg: AtlasConfig) -> AtlasLayout:
    """The covered uv box (plus a margin) at the frames' pixel density, capped at ``cfg.max_side``."""
    uv, scale = coverage.uv[layer], coverage.scale[layer]
    if uv.shape[0] == 0:  # never seen: show the whole atlas square
        lo, hi, units = np.array([-1.0, -1.0]), np.array([1.0, 1.0]), 2.0 / cfg.max_side
    else:
        lo, hi = uv.min(axis=0), uv.max(axis=0)
        units = float(np.median(scale))
    margin = cfg.box_margin * (hi - lo) + units
    lo, hi = np.clip(lo - margin, -1, 1), np.clip(hi + margin, -1, 1)
    size = (hi - lo) / max(units, 1e-9)
    size = size * min(1.0, cfg.max_side / size.max())
    width, height = (int(np.clip(math.ceil(s), cfg.min_side, cfg.max_side)) for s in size)
    box = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
    return AtlasLayout(layer, box, width, height, units, uv.shape[0] / max(coverage.total, 1))


def coverage_mask(coverage: Coverage, layout: AtlasLayout) -> np.ndarray:
    """[height, width] bool: texels the clip shows, holes between sampled pixels closed."""
    mask = np.zeros((layout.height, layout.width), np.uint8)
    texels = layout.texel(coverage.uv[layout.layer])
    inside = (texels[:, 0] >= 0) & (texels[:, 0] < layout.width) & (texels[:, 1] >= 0) & (texels[:, 1] < layout.height)
    mask[texels[inside, 1], texels[inside, 0]] = 1
    u0, _, u1, _ = layout.box
    texels_per_pixel = layout.width / (u1 - u0) * layout.units_per_pixel
    side = 2 * math.ceil(coverage.stride * texels_per_pixel) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel).astype(bool)


def write_layout(path: Path, layouts: list[AtlasLayout], curve: DisplayCurve, run: Run) -> None:
    frame = run.model.frame
    data = {
        "version": LAYOUT_VERSION,
        "texel_centres": "u = u0 + (column + 0.5) (u1 - u0) / width, v = v0 + (row + 0.5) (v1 - v0) / height",
        "display": curve.to_json(),
        "exr_scale": exr_scale(run),
        "frames": frame.n_frames,
        "frame_size": [frame.width, frame.height],
        "step": run.state.get("step"),
        "layers": [asdict(layout) | {"file": layout.file} for layout in layouts],
    }
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def read_layout(path: Path, run: Run | None = None) -> tuple[list[AtlasLayout], DisplayCurve]:
    """The layouts and display curve (not yet tabulated) in atlas.json; checked against ``run`` if given."""
    try:
        data = json.loads(path.read_text())
        if run is not None:
            _check_layout_matches(data, run, path)
        curve = DisplayCurve(**data["display"])
        fields = ("layer", "width", "height", "units_per_pixel", "covered_fraction")
        layouts = [AtlasLayout(box=tuple(d["box"]), **{k: d[k] for k in fields}) for d in data["layers"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VidcamError(f"cannot read atlas layout {path}: {exc}") from None
    return layouts, curve


def _check_layout_matches(data: dict[str, Any], run: Run, path: Path) -> None:
    frame = run.model.frame
    shape = (frame.n_frames, frame.width, frame.height, run.n_layers)
    if (data["frames"], *data["frame_size"], len(data["layers"])) != shape:
        raise VidcamError(
            f"{path} was exported from another run ({data['frames']} frames of {data['frame_size']}); "
            f"run `vidcam atlas {run.folder}` and edit that export"
        )


def exr_scale(run: Run) -> float:
    """The atlas EXRs are in the units of the run's hdr/ frames when it has them."""
    return run.hdr_scale if run.hdr_scale is not None else 1.0


def find_layout(run: Run, atlas_png: Path) -> Path:
    """atlas.json beside the edited picture, else in RUN/atlas."""
    for candidate in (Path(atlas_png).parent / LAYOUT_NAME, run.folder / ATLAS_DIR / LAYOUT_NAME):
        if candidate.is_file():
            return candidate
    raise VidcamError(
        f"{run.folder} has no exported atlas ({LAYOUT_NAME} neither beside {atlas_png} nor in "
        f"{run.folder / ATLAS_DIR}); run `vidcam atlas {run.folder}` first and edit its layer PNG"
    )
