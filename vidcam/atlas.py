"""Atlas export and editing: look at what each layer learned, paint on it, re-render the clip.

``export_atlas`` writes, for every layer k (0 = background, front-most last):

* ``layer{k}_atlas.png``: the layer's atlas over the region the clip covers, at about the
  frames' pixel density; ``layer{k}_atlas.exr`` the same in linear light (float32);
  ``layer{k}_atlas_preview.png`` with the covered region outlined and the rest dimmed;
* ``layer{k}_alpha.mp4``: the layer's weight in every frame, grey;
* ``layer{k}_mapping.mp4``: a UV-coloured checkerboard painted in atlas space and carried
  back onto the frames through the mapping, blended by the layer's weight;

plus ``contact_sheet.png`` (input frames, per-layer alpha and colour, the atlases) and
``atlas.json``: each layer's uv box and picture size and the display transform, which is
what ``edit_run`` needs to take a painted picture back to the atlas.

Display transform: an atlas picture is shown the way the run showed its output, so what
is painted is what appears in the edited video. Runs whose output went through the learned
camera (``tonemap: camera``, the deblur default) show the atlas through the learned tone
curve at the clip's mean exposure; the others (ACES for HDR, or Reinhard) show it as
sRGB(ACES(hdr_scale x irradiance)), the HDR default's own transform. Both are per-channel
monotone curves of log irradiance, tabulated once (``DisplayCurve``) and inverted by
interpolation. Texels the user left untouched keep the learned atlas exactly (8-bit
pictures clip highlights; the learned atlas does not), so an unedited picture reproduces
the run's own render.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidcam.config import Config
from vidcam.errors import VidcamError
from vidcam.io.atomic import atomic_write_text
from vidcam.io.images import read_png, write_exr, write_png
from vidcam.io.video import read_video, write_hdr10_video, write_sdr_video
from vidcam.models.model import LOG_FLOOR, VidcamModel
from vidcam.plots import image_grid
from vidcam.progress import progress
from vidcam.rendering import (
    display_clip,
    display_sdr,
    exposure_scale,
    recorded_by_camera,
    render_frame,
    sdr_operator,
    srgb_encode,
    to_uint8,
    tonemap_aces,
)
from vidcam.training.checkpoint import find_checkpoint, model_from_checkpoint

ATLAS_DIR = "atlas"
LAYOUT_NAME = "atlas.json"
LAYOUT_VERSION = 1
REPORT_NAME = "report.json"
DEFAULT_FPS = Fraction(24)  # for runs interrupted before their report.json was written

# Coverage: which atlas texels the clip shows.
FOREGROUND_COVER = 0.5  # a foreground layer covers a pixel where its weight exceeds this
BACKGROUND_COVER = 0.02  # the background is seen wherever its weight exceeds this
COVERAGE_SAMPLES = 2_000_000  # pixels sampled over the whole clip (a pixel stride keeps to this)
BOX_MARGIN = 0.03  # of the covered box's side, added on every side
ATLAS_MAX_SIDE = 2048
ATLAS_MIN_SIDE = 16

# Display curve tables.
CURVE_SAMPLES = 8192
CURVE_MARGIN = 4.0  # log units beyond the training range of the learned tone curve
DEFAULT_Z_RANGE = (-6.0, 6.0)  # the trainer's starting range, for checkpoints without one
ACES_RANGE = (-12.0, 6.0)  # log(hdr_scale x irradiance) from black to well past ACES white
STRICT_STEP = 1e-9  # makes a flat stretch of a curve strictly increasing so it can be inverted
HALF_CODE = 0.5 / 255  # an edited value this close to the exported one counts as untouched

# Pictures.
CHECKER_SQUARES = 12  # across the longer side of a layer's covered box
CHECKER_DARK = 0.45  # brightness of the dark squares relative to the light ones
OUTSIDE_BOX_GREY = 0.5
OUTLINE_COLOUR = (255, 0, 255)
PREVIEW_DIM = 0.5  # texels outside the covered region are dimmed this much in the preview
CONTACT_FRAMES = 4
CONTACT_TILE_WIDTH = 320

Evaluate = Callable[[Tensor, Tensor], Tensor]  # (model xy [B,2], frame index [B]) -> [B, C]


# ----------------------------------------------------------------------------- the run


@dataclass
class Run:
    """A trained run folder: its model and how it displayed its output."""

    folder: Path
    model: VidcamModel
    cfg: Config
    state: dict[str, Any]
    report: dict[str, Any]
    operator: str  # camera | aces | reinhard: the SDR transform of enhanced.mp4
    hdr_scale: float | None  # linear scale before the operator (None for camera)
    fps: Fraction

    @property
    def chunk(self) -> int:
        return self.cfg.render.chunk

    @property
    def n_layers(self) -> int:
        return self.model.scene.n_layers


def open_run(run_dir: str | Path, device: str | torch.device = "auto") -> Run:
    """Load a run folder's model, settings and report, or raise a clear VidcamError."""
    folder = Path(run_dir)
    model, cfg, state = model_from_checkpoint(find_checkpoint(folder), _device(device))
    report = _read_report(folder)
    operator = report.get("tonemap") or sdr_operator(cfg.render.tonemap, cfg.mode)
    hdr_scale = None
    if operator != "camera":
        hdr_scale = report.get("hdr_scale")
        if hdr_scale is None:  # an interrupted run: measure it the way the export does
            hdr_scale = exposure_scale(_render_all(model, cfg.render.chunk, None, "measure"), cfg.render.key)
    fps = Fraction(report["fps"]) if "fps" in report else DEFAULT_FPS
    return Run(folder, model, cfg, state, report, operator, hdr_scale, fps)


def _device(device: str | torch.device) -> torch.device:
    from vidcam.pipeline import pick_device

    return pick_device(str(device))


def _read_report(folder: Path) -> dict[str, Any]:
    path = folder / REPORT_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise VidcamError(f"cannot parse {path}: {exc}") from None


def _check_layer(run: Run, layer: int) -> None:
    if not 0 <= layer < run.n_layers:
        raise VidcamError(f"layer {layer} is out of range: the run has layers 0..{run.n_layers - 1}")


def _model_device(model: VidcamModel) -> torch.device:
    return next(model.parameters()).device


def _progress(n: int, desc: str) -> Iterator[int]:
    return iter(progress(range(n), desc, unit="frame", leave=False))


def _render_all(model: VidcamModel, chunk: int, evaluate: Evaluate | None, desc: str) -> np.ndarray:
    """[N,H,W,C] float32 of ``evaluate`` (default: sharp irradiance) over every frame."""
    return np.stack([render_frame(model, t, chunk, evaluate) for t in _progress(model.frame.n_frames, desc)])


# ----------------------------------------------------------------------------- display curve


@dataclass
class DisplayCurve:
    """Per-channel monotone map between log irradiance z and an atlas picture's values in [0, 1].

    value_c = T_c(z + offset), with T_c tabulated on ``CURVE_SAMPLES`` points of
    ``[s_min, s_max]``: for ``kind`` "camera" the learned tone curve and offset the mean log
    exposure; for "aces" sRGB(ACES(exp(s))) and offset log(hdr_scale).
    """

    kind: str
    offset: float
    s_min: float
    s_max: float
    values: np.ndarray | None = field(default=None, repr=False)  # [K, 3], from tabulate()

    @property
    def s(self) -> np.ndarray:
        return np.linspace(self.s_min, self.s_max, CURVE_SAMPLES)

    def tabulate(self, model: VidcamModel) -> DisplayCurve:
        if self.kind == "camera":
            with torch.no_grad():
                s = torch.as_tensor(self.s, dtype=torch.float32, device=_model_device(model))
                self.values = model.tone.curve(s).cpu().numpy().astype(np.float64)
        elif self.kind == "aces":
            self.values = np.repeat(srgb_encode(tonemap_aces(np.exp(self.s)))[:, None], 3, axis=1)
        else:
            raise VidcamError(f"unknown atlas display '{self.kind}' in {LAYOUT_NAME}")
        return self

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Display values [..., 3] in [0, 1] of log irradiance z [..., 3]."""
        s, table = z + self.offset, self._table()
        return np.stack([np.interp(s[..., c], self.s, table[:, c]) for c in range(3)], axis=-1)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Log irradiance [..., 3] displayed as ``values`` [..., 3] (clamped to the table's ends)."""
        increasing = np.maximum.accumulate(self._table(), axis=0) + (np.arange(CURVE_SAMPLES) * STRICT_STEP)[:, None]
        channels = [np.interp(values[..., c], increasing[:, c], self.s) for c in range(3)]
        return np.stack(channels, axis=-1) - self.offset

    def _table(self) -> np.ndarray:
        if self.values is None:
            raise RuntimeError("DisplayCurve.tabulate(model) must run first")
        return self.values

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "offset": self.offset, "s_min": self.s_min, "s_max": self.s_max}


def display_curve(run: Run) -> DisplayCurve:
    """The atlas display matching the run's output (see the module docstring)."""
    if run.operator == "camera":
        mean_exposure = float(run.model.exposures.all().mean().detach())
        lo, hi = run.state.get("z_range", DEFAULT_Z_RANGE)
        curve = DisplayCurve("camera", mean_exposure, lo - CURVE_MARGIN, hi + CURVE_MARGIN)
    else:
        curve = DisplayCurve("aces", math.log(run.hdr_scale), *ACES_RANGE)
    return curve.tabulate(run.model)


# ----------------------------------------------------------------------------- coverage and layout


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


def _sample_stride(n_frames: int, height: int, width: int) -> int:
    return max(1, math.ceil(math.sqrt(n_frames * height * width / COVERAGE_SAMPLES)))


def _sampled_pixels(model: VidcamModel, stride: int, device: torch.device) -> Tensor:
    frame = model.frame
    xy = frame.pixel_centres(device).view(frame.height, frame.width, 2)
    return xy[stride // 2 :: stride, stride // 2 :: stride].reshape(-1, 2)


def _cover_threshold(layer: int) -> float:
    return BACKGROUND_COVER if layer == 0 else FOREGROUND_COVER


@torch.no_grad()
def measure_coverage(model: VidcamModel, chunk: int) -> Coverage:
    """Map a stride of every frame's pixels through each layer; keep the points where it is seen."""
    frame, scene = model.frame, model.scene
    device = _model_device(model)
    stride = _sample_stride(frame.n_frames, frame.height, frame.width)
    xy_all = _sampled_pixels(model, stride, device)
    step_x = xy_all.new_tensor([frame.pixel_size, 0.0])
    step_y = xy_all.new_tensor([0.0, frame.pixel_size])
    uv: list[list[np.ndarray]] = [[] for _ in range(scene.n_layers)]
    scale: list[list[np.ndarray]] = [[] for _ in range(scene.n_layers)]
    for t in _progress(frame.n_frames, "coverage"):
        for start in range(0, xy_all.shape[0], chunk):
            xy = xy_all[start : start + chunk]
            t_index = torch.full((xy.shape[0],), t, device=device, dtype=torch.long)
            centre = scene.uv(xy, t_index)  # [L,B,2]
            along_x, along_y = scene.uv(xy + step_x, t_index) - centre, scene.uv(xy + step_y, t_index) - centre
            area = along_x[..., 0] * along_y[..., 1] - along_x[..., 1] * along_y[..., 0]  # det of the Jacobian
            scale_here = area.abs().sqrt()  # [L,B] atlas units per frame pixel
            weights = scene.layer_weights(xy, t_index)
            for layer in range(scene.n_layers):
                seen = weights[:, layer] > _cover_threshold(layer)
                uv[layer].append(centre[layer][seen].float().cpu().numpy())
                scale[layer].append(scale_here[layer][seen].float().cpu().numpy())
    total = xy_all.shape[0] * frame.n_frames
    return Coverage([np.concatenate(u) for u in uv], [np.concatenate(s) for s in scale], stride, total)


def plan_layout(coverage: Coverage, layer: int) -> AtlasLayout:
    """The covered uv box (plus a margin) at the frames' pixel density, capped at ATLAS_MAX_SIDE."""
    uv, scale = coverage.uv[layer], coverage.scale[layer]
    if uv.shape[0] == 0:  # never seen: show the whole atlas square
        lo, hi, units = np.array([-1.0, -1.0]), np.array([1.0, 1.0]), 2.0 / ATLAS_MAX_SIDE
    else:
        lo, hi = uv.min(axis=0), uv.max(axis=0)
        units = float(np.median(scale))
    margin = BOX_MARGIN * (hi - lo) + units
    lo, hi = np.clip(lo - margin, -1, 1), np.clip(hi + margin, -1, 1)
    size = (hi - lo) / max(units, 1e-9)
    size = size * min(1.0, ATLAS_MAX_SIDE / size.max())
    width, height = (int(np.clip(math.ceil(s), ATLAS_MIN_SIDE, ATLAS_MAX_SIDE)) for s in size)
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


# ----------------------------------------------------------------------------- atlas pictures


@torch.no_grad()
def atlas_log_irradiance(model: VidcamModel, layout: AtlasLayout, chunk: int) -> np.ndarray:
    """[height, width, 3] log irradiance of the layer's atlas at every texel centre."""
    uv = layout.grid(_model_device(model))
    parts = [
        model.scene.atlas_log_irradiance(layout.layer, uv[start : start + chunk]).cpu()
        for start in range(0, uv.shape[0], chunk)
    ]
    return torch.cat(parts).view(layout.height, layout.width, 3).numpy()


def atlas_picture(model: VidcamModel, layout: AtlasLayout, curve: DisplayCurve, chunk: int) -> np.ndarray:
    """The uint8 RGB picture of a layer's atlas, as exported (and as edits are compared to)."""
    return to_uint8(curve.forward(atlas_log_irradiance(model, layout, chunk)))


def outlined(picture: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The picture, dimmed outside ``mask`` and with the mask's outline drawn."""
    preview = np.where(mask[..., None], picture, (picture * PREVIEW_DIM).astype(np.uint8))
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    thickness = max(1, max(mask.shape) // 512)
    return cv2.drawContours(np.ascontiguousarray(preview), contours, -1, OUTLINE_COLOUR, thickness)


def write_layout(path: Path, layouts: list[AtlasLayout], curve: DisplayCurve, run: Run) -> None:
    frame = run.model.frame
    data = {
        "version": LAYOUT_VERSION,
        "texel_centres": "u = u0 + (column + 0.5) (u1 - u0) / width, v = v0 + (row + 0.5) (v1 - v0) / height",
        "display": curve.to_json(),
        "exr_scale": _exr_scale(run),
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


def _exr_scale(run: Run) -> float:
    """The atlas EXRs are in the units of the run's hdr/ frames when it has them."""
    return run.hdr_scale if run.hdr_scale is not None else 1.0


# ----------------------------------------------------------------------------- per-frame pictures


def clip_frames(run: Run) -> np.ndarray:
    """uint8 [N,H,W,3]: the input frames if the input is still at hand, else the learned camera's render."""
    frame = run.model.frame
    source = run.report.get("input")
    if source and Path(source).is_file():
        io = run.cfg.io
        try:
            clip = read_video(Path(source), io.start_frame, io.max_frames, io.max_side)
        except VidcamError:
            clip = None
        if clip is not None and clip.frames.shape[:3] == (frame.n_frames, frame.height, frame.width):
            return clip.frames if clip.frames.dtype == np.uint8 else to_uint8(clip.frames_float())
    return to_uint8(_render_all(run.model, run.chunk, recorded_by_camera(run.model), "frames"))


def alpha_frames(run: Run, layer: int) -> Iterator[np.ndarray]:
    """The layer's weight in each frame as grey uint8 [H,W,3]."""
    scene = run.model.scene
    for t in _progress(run.model.frame.n_frames, f"layer {layer} alpha"):
        weight = render_frame(run.model, t, run.chunk, lambda xy, ti: scene.layer_weights(xy, ti)[:, layer : layer + 1])
        yield np.repeat(to_uint8(weight), 3, axis=2)


def checkerboard(uv: np.ndarray, layout: AtlasLayout) -> np.ndarray:
    """Float RGB [..., 3]: UV colours (red = u, green = v) checkered in atlas space; grey off the box."""
    u0, v0, u1, v1 = layout.box
    rel = (uv - np.array([u0, v0])) / np.array([u1 - u0, v1 - v0])  # [0, 1] inside the box
    square = max(u1 - u0, v1 - v0) / CHECKER_SQUARES
    cells = np.floor((uv - np.array([u0, v0])) / square).astype(np.int64)
    light = ((cells[..., 0] + cells[..., 1]) % 2 == 0)[..., None]
    colour = np.stack([rel[..., 0], rel[..., 1], 1 - rel[..., 0]], axis=-1).clip(0, 1)
    pattern = colour * np.where(light, 1.0, CHECKER_DARK)
    inside = np.all((rel >= 0) & (rel <= 1), axis=-1, keepdims=True)
    return np.where(inside, pattern, OUTSIDE_BOX_GREY)


def mapping_frames(run: Run, layout: AtlasLayout, frames: np.ndarray) -> Iterator[np.ndarray]:
    """The checkerboard carried onto each frame through the layer's mapping, blended by its weight."""
    scene, layer = run.model.scene, layout.layer

    def evaluate(xy: Tensor, t: Tensor) -> Tensor:
        return torch.cat([scene.uv(xy, t)[layer], scene.layer_weights(xy, t)[:, layer : layer + 1]], dim=1)

    for t in _progress(run.model.frame.n_frames, f"layer {layer} mapping"):
        out = render_frame(run.model, t, run.chunk, evaluate)
        weight = out[..., 2:3]
        yield to_uint8(weight * checkerboard(out[..., :2], layout) + (1 - weight) * frames[t] / 255.0)


@torch.no_grad()
def tone_image(model: VidcamModel, irradiance: np.ndarray, t: int, chunk: int) -> np.ndarray:
    """Linear irradiance [H,W,3] through the learned camera at frame t's exposure, uint8."""
    device = _model_device(model)
    flat = torch.as_tensor(irradiance.reshape(-1, 3), device=device)
    parts = []
    for start in range(0, flat.shape[0], chunk):
        part = flat[start : start + chunk]
        exposure = model.exposures(torch.full((part.shape[0],), t, device=device, dtype=torch.long))
        parts.append(model.tone(part.clamp_min(LOG_FLOOR).log(), exposure).cpu())
    return to_uint8(torch.cat(parts).view(irradiance.shape).numpy())


def display_frame(run: Run, irradiance: np.ndarray, t: int) -> np.ndarray:
    """Sharp linear irradiance [H,W,3] of frame t displayed the way the run's enhanced.mp4 was."""
    if run.operator == "camera":
        return tone_image(run.model, irradiance, t, run.chunk)
    return display_sdr(irradiance * run.hdr_scale, run.operator)


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


def _fit_tile(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to fit a width x height tile, centred on white."""
    scale = min(width / image.shape[1], height / image.shape[0])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tile = np.full((height, width, 3), 255, np.uint8)
    y, x = (height - size[1]) // 2, (width - size[0]) // 2
    tile[y : y + size[1], x : x + size[0]] = resized
    return tile


Tile = tuple[np.ndarray, str]  # a picture and its caption


def _layer_rows(run: Run, times: list[int]) -> list[list[Tile]]:
    """Per layer, a row of its alpha and a row of its colour contribution (weight x atlas) at ``times``."""
    model, n_layers = run.model, run.n_layers

    def evaluate(xy: Tensor, t: Tensor) -> Tensor:
        out = model.scene(xy, t)
        contribution = out["weights"][..., None] * out["layer_irradiance"]  # [B,L,3]
        return torch.cat([out["weights"], contribution.flatten(1)], dim=1)

    rows: list[list[Tile]] = [[] for _ in range(2 * n_layers)]
    for t in times:
        out = render_frame(model, t, run.chunk, evaluate)
        for layer in range(n_layers):
            colour = out[..., n_layers + 3 * layer : n_layers + 3 * layer + 3]
            rows[2 * layer].append((to_uint8(out[..., layer]), f"layer {layer} alpha t={t}"))
            rows[2 * layer + 1].append((display_frame(run, colour, t), f"layer {layer} colour t={t}"))
    return rows


def contact_sheet(run: Run, frames: np.ndarray, pictures: list[np.ndarray]) -> np.ndarray:
    """Rows: input frames; per layer its alpha and its colour contribution; then the atlases."""
    frame = run.model.frame
    times = sorted({round(t) for t in np.linspace(0, frame.n_frames - 1, CONTACT_FRAMES)})
    columns = len(times)
    atlases = [(picture, f"layer {k} atlas") for k, picture in enumerate(pictures)]
    rows = [[(frames[t], f"input t={t}") for t in times], *_layer_rows(run, times)]
    rows += [atlases[i : i + columns] for i in range(0, len(atlases), columns)]
    tile_height = max(1, round(CONTACT_TILE_WIDTH * frame.height / frame.width))
    blank: Tile = (np.full((1, 1, 3), 255, np.uint8), "")
    tiles = [row[column] if column < len(row) else blank for row in rows for column in range(columns)]
    images = [_fit_tile(_rgb(image), CONTACT_TILE_WIDTH, tile_height) for image, _ in tiles]
    return image_grid(images, columns, [label for _, label in tiles])


# ----------------------------------------------------------------------------- export


def export_atlas(run_dir: str | Path, out_dir: str | Path | None = None, device: str | torch.device = "auto") -> Path:
    """Write every layer's atlas pictures, alpha and mapping videos, a contact sheet and atlas.json."""
    run = open_run(run_dir, device)
    out = Path(out_dir) if out_dir is not None else run.folder / ATLAS_DIR
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VidcamError(f"cannot create {out}: {exc.strerror or exc}") from None
    curve = display_curve(run)
    coverage = measure_coverage(run.model, run.chunk)
    layouts = [plan_layout(coverage, layer) for layer in range(run.n_layers)]
    pictures = [_export_atlas_files(run, layout, curve, coverage, out) for layout in layouts]
    write_layout(out / LAYOUT_NAME, layouts, curve, run)
    frames = clip_frames(run)
    crf = run.cfg.render.crf
    for layout in layouts:
        write_sdr_video(out / f"layer{layout.layer}_alpha.mp4", alpha_frames(run, layout.layer), run.fps, crf)
        write_sdr_video(out / f"layer{layout.layer}_mapping.mp4", mapping_frames(run, layout, frames), run.fps, crf)
    write_png(out / "contact_sheet.png", contact_sheet(run, frames, pictures))
    return out


def _export_atlas_files(
    run: Run, layout: AtlasLayout, curve: DisplayCurve, coverage: Coverage, out: Path
) -> np.ndarray:
    """The layer's atlas PNG, EXR and preview; returns the picture."""
    log_irradiance = atlas_log_irradiance(run.model, layout, run.chunk)
    picture = to_uint8(curve.forward(log_irradiance))
    stem = f"layer{layout.layer}_atlas"
    write_png(out / layout.file, picture)
    write_exr(out / f"{stem}.exr", np.exp(log_irradiance) * _exr_scale(run), half=False)
    write_png(out / f"{stem}_preview.png", outlined(picture, coverage_mask(coverage, layout)))
    return picture


# ----------------------------------------------------------------------------- editing


@dataclass
class EditResult:
    sdr: np.ndarray  # uint8 [N,H,W,3], displayed like the run's enhanced.mp4
    hdr: np.ndarray | None  # float32 [N,H,W,3] linear, exposure-normalised (runs with an hdr_scale)


def find_layout(run: Run, atlas_png: Path) -> Path:
    """atlas.json beside the edited picture, else in RUN/atlas."""
    for candidate in (Path(atlas_png).parent / LAYOUT_NAME, run.folder / ATLAS_DIR / LAYOUT_NAME):
        if candidate.is_file():
            return candidate
    raise VidcamError(
        f"{run.folder} has no exported atlas ({LAYOUT_NAME} neither beside {atlas_png} nor in "
        f"{run.folder / ATLAS_DIR}); run `vidcam atlas {run.folder}` first and edit its layer PNG"
    )


def read_edit(path: Path, layout: AtlasLayout) -> tuple[np.ndarray, np.ndarray]:
    """The edited picture as float RGB [h,w,3] and alpha [h,w,1] in [0, 1]; it must match the export's size."""
    image = read_png(path)
    if image.shape[:2] != (layout.height, layout.width):
        raise VidcamError(
            f"{path} is {image.shape[1]}x{image.shape[0]} but layer {layout.layer}'s atlas is "
            f"{layout.width}x{layout.height}: edit the exported {layout.file} without resizing it"
        )
    peak = float(np.iinfo(image.dtype).max)
    image = image.astype(np.float64) / peak
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] in (1, 2):  # grey, grey + alpha
        image = np.concatenate([image[..., :1].repeat(3, axis=2), image[..., 1:]], axis=2)
    alpha = image[..., 3:4] if image.shape[2] == 4 else np.ones_like(image[..., :1])
    return image[..., :3], alpha


def edit_texture(rgb: np.ndarray, alpha: np.ndarray, original: np.ndarray, curve: DisplayCurve) -> np.ndarray:
    """[4,h,w] float32 for grid_sample: (m x edited irradiance, m), m = 1 where the picture was changed.

    The edit is composited over the exported picture in display space (as an image editor
    would), then taken back to linear irradiance through the inverse display curve.
    """
    before = original.astype(np.float64) / 255
    composite = alpha * rgb + (1 - alpha) * before
    changed = (np.abs(composite - before) > HALF_CODE).any(axis=-1, keepdims=True).astype(np.float64)
    irradiance = np.exp(curve.inverse(composite))
    return np.concatenate([changed * irradiance, changed], axis=-1).transpose(2, 0, 1).astype(np.float32)


def edited_irradiance(model: VidcamModel, layout: AtlasLayout, texture: Tensor) -> Evaluate:
    """evaluate(xy, t) -> [B,3] sharp irradiance with layer ``layout.layer``'s atlas replaced where edited."""
    scene, layer = model.scene, layout.layer

    def evaluate(xy: Tensor, t: Tensor) -> Tensor:
        out = scene(xy, t)
        grid = layout.normalised(out["uv"][layer]).view(1, 1, -1, 2)
        sampled = F.grid_sample(texture, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        sampled = sampled.view(4, -1).t()  # [B,4]: premultiplied irradiance, coverage of the edit
        layers = out["layer_irradiance"].clone()
        layers[:, layer] = sampled[:, :3] + (1 - sampled[:, 3:]) * layers[:, layer]
        return (out["weights"][..., None] * layers).sum(dim=1)

    return evaluate


def through_camera(model: VidcamModel, irradiance: Evaluate) -> Evaluate:
    """Like vidcam.rendering.recorded_by_camera, for any irradiance function."""

    def evaluate(xy: Tensor, t: Tensor) -> Tensor:
        return model.tone(irradiance(xy, t).clamp_min(LOG_FLOOR).log(), model.exposures(t))

    return evaluate


def load_edit(run: Run, layer: int, atlas_png: Path) -> tuple[AtlasLayout, Tensor]:
    """The layout of the edited layer and its edit texture [1,4,h,w] on the model's device."""
    _check_layer(run, layer)
    layouts, curve = read_layout(find_layout(run, atlas_png), run)
    layout = layouts[layer]
    curve.tabulate(run.model)
    rgb, alpha = read_edit(atlas_png, layout)
    original = atlas_picture(run.model, layout, curve, run.chunk)
    texture = edit_texture(rgb, alpha, original, curve)
    return layout, torch.as_tensor(texture, device=_model_device(run.model))[None]


def render_edited(run: Run, layer: int, atlas_png: str | Path) -> EditResult:
    """Every frame of the run re-rendered with ``atlas_png`` as layer ``layer``'s atlas (no files written)."""
    layout, texture = load_edit(run, layer, Path(atlas_png))
    irradiance = edited_irradiance(run.model, layout, texture)
    if run.operator == "camera":
        recorded = _render_all(run.model, run.chunk, through_camera(run.model, irradiance), "edit")
        return EditResult(to_uint8(recorded), None)
    hdr = _render_all(run.model, run.chunk, irradiance, "edit") * run.hdr_scale
    return EditResult(display_clip(hdr, run.operator), hdr)


def edit_run(
    run_dir: str | Path,
    layer: int,
    atlas_png: str | Path,
    output: str | Path | None = None,
    device: str | torch.device = "auto",
) -> Path:
    """Re-render the run with an edited atlas picture; writes an SDR MP4 (and HDR10 in HDR mode)."""
    run = open_run(run_dir, device)
    output = Path(output) if output is not None else run.folder / f"edit_layer{layer}.mp4"
    result = render_edited(run, layer, atlas_png)
    rc = run.cfg.render
    audio = _audio_source(run)
    write_sdr_video(output, result.sdr, run.fps, rc.crf, audio)
    if run.cfg.mode == "hdr" and result.hdr is not None:
        hdr10 = output.with_name(f"{output.stem}_hdr10{output.suffix}")
        write_hdr10_video(hdr10, result.hdr, run.fps, rc.hdr10_white_nits, rc.hdr10_peak_nits, rc.crf, audio)
    return output


def _audio_source(run: Run) -> Path | None:
    """The input's sound track, when the run used the clip from its first frame."""
    source = run.report.get("input")
    if source and Path(source).is_file() and run.cfg.io.start_frame == 0:
        return Path(source)
    return None
