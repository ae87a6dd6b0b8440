"""Whole-frame rendering at the speed of a texture lookup: the exact render's pictures, made cheap.

The exact render (``vidcam.rendering.render_frame``) evaluates every network at every pixel. Here
each part is evaluated where it carries information:

- each layer's atlas is baked once into a log-irradiance texture (the atlas network on a regular
  uv grid, ``atlas_factor`` x its grid's finest resolution) and sampled bilinearly; its change
  over time (``scene.atlas_dynamics``) differs from frame to frame and is evaluated at every pixel;
- each mapping's learned residual is smooth in (x, y): it is evaluated every ``mapping_stride``
  pixels and upsampled bilinearly, while the global homography is applied exactly per pixel;
- the alpha network is evaluated every ``alpha_stride`` pixels and upsampled as logits; cells
  whose corners are not all saturated the same way (edges, soft mattes) are evaluated at every pixel;
- through the camera, the learned tone curve is tabulated over the frame's range and interpolated.

``FastScene`` renders a whole frame (or a strided subset of its pixels, for pre-passes); an
``AtlasOverride`` replaces part of one layer's atlas by an edited texture (``vidcam edit``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidcam.config import RenderConfig
from vidcam.models.model import LOG_FLOOR, VidcamModel
from vidcam.models.scene import project_points, weights_from_cover
from vidcam.progress import progress
from vidcam.rendering import Evaluate, in_chunks, render_frame, render_frames, through_camera

# A cell of the coarse alpha grid whose corners all have a cover below this (or above 1 - this)
# is interpolated ...
ALPHA_SATURATED = 1e-3
# ... or whose corners' logits all lie within this of each other (no edge crosses the cell: the
# cover varies by at most 6 % there, and by a small fraction of itself where it is near 0 or 1);
# any other cell (an edge) is evaluated at every pixel.
ALPHA_SMOOTH = 0.25
TONE_TABLE_SIZE = 4096  # samples of the tone curve over a frame's range (linear interpolation between them)


@dataclass(frozen=True)
class FastSettings:
    """How coarsely each part is evaluated (see ``RenderConfig``'s ``fast_*`` fields)."""

    atlas_factor: float = 2.0
    atlas_max: int = 4096
    mapping_stride: int = 8
    alpha_stride: int = 4

    @classmethod
    def from_config(cls, rc: RenderConfig) -> FastSettings:
        return cls(rc.fast_atlas_factor, rc.fast_atlas_max, rc.fast_mapping_stride, rc.fast_alpha_stride)


@dataclass
class AtlasOverride:
    """An edited texture over part of ``layer``'s atlas: ``texture`` [1,4,h,w] holds (m x irradiance, m),
    sampled at ``to_grid(uv)`` (grid_sample coordinates, align_corners=False, zeros outside)."""

    layer: int
    to_grid: Callable[[Tensor], Tensor]
    texture: Tensor


@torch.no_grad()
def bake_atlas(model: VidcamModel, layer: int, resolution: int, chunk: int) -> Tensor:
    """[1,3,R,R] log irradiance of the layer's atlas at R x R vertices spanning [-1, 1]^2 (align_corners=True)."""
    axis = torch.linspace(-1, 1, resolution, device=model.device)
    v, u = torch.meshgrid(axis, axis, indexing="ij")
    uv = torch.stack([u.reshape(-1), v.reshape(-1)], dim=1)
    values = in_chunks(lambda part: model.scene.atlas_log_irradiance(layer, part), uv, chunk).to(model.device)
    return values.t().reshape(1, 3, resolution, resolution).contiguous()


def baked_resolution(model: VidcamModel, layer: int, settings: FastSettings) -> int:
    return int(min(settings.atlas_max, math.ceil(settings.atlas_factor * model.scene.atlas_resolutions[layer])))


def _atlas_version(model: VidcamModel, layer: int) -> tuple[int, ...]:
    return tuple(p._version for p in model.scene.atlases[layer].parameters())


def baked_atlases(model: VidcamModel, settings: FastSettings, chunk: int) -> list[Tensor]:
    """Every layer's baked texture, cached on the model until its atlas parameters change."""
    cache: dict = model.__dict__.setdefault("_baked_atlases", {})
    textures = []
    for layer in range(model.scene.n_layers):
        resolution = baked_resolution(model, layer, settings)
        key = (layer, resolution, _atlas_version(model, layer))
        if key not in cache:
            for stale in [k for k in cache if k[0] == layer]:
                del cache[stale]
            cache[key] = bake_atlas(model, layer, resolution, chunk)
        textures.append(cache[key])
    return textures


def _sample(texture: Tensor, grid: Tensor, padding: str, align_corners: bool) -> Tensor:
    """texture [1,C,h,w] at grid [P,2] -> [P,C]."""
    out = F.grid_sample(texture, grid.view(1, 1, -1, 2), mode="bilinear", padding_mode=padding, align_corners=align_corners)
    return out.view(texture.shape[1], -1).t()


def _upsample(values: Tensor, rows: int, cols: int, stride: int) -> Tensor:
    """Values [r,c,C] at every ``stride``-th pixel (node k at pixel k*stride) -> [rows*cols, C] at every pixel."""
    if stride == 1:
        return values.reshape(rows * cols, -1)
    r, c = values.shape[:2]
    y = torch.arange(rows, device=values.device, dtype=torch.float32) / stride
    x = torch.arange(cols, device=values.device, dtype=torch.float32) / stride
    y0 = y.floor().long().clamp(max=r - 2)
    x0 = x.floor().long().clamp(max=c - 2)
    fy, fx = (y - y0)[:, None, None], (x - x0)[None, :, None]
    top = values[y0][:, x0] * (1 - fx) + values[y0][:, x0 + 1] * fx
    bottom = values[y0 + 1][:, x0] * (1 - fx) + values[y0 + 1][:, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy).reshape(rows * cols, -1)


def mapping_stride(model: VidcamModel, most: int, step: int = 1) -> int:
    """Grid points between mapping-residual evaluations: at most ``most``, and at least two
    evaluations per cell of the residual network's finest grid level (its detail stays resolved)."""
    finest = max(max(level) for m in model.scene.mappings for level in _grid_levels(m.residual.encoding))
    cell_px = 2.0 / max(finest - 1, 1) / model.frame.pixel_size / step
    return int(max(1, min(most, cell_px // 2)))


def _grid_levels(encoding: torch.nn.Module) -> list[list[int]]:
    """Per level, the vertices per spatial axis of a grid encoding; for a positional encoding the
    grid that puts two vertices in a period of its highest frequency."""
    if hasattr(encoding, "level_resolution"):
        return [level[:2] for level in encoding.level_resolution]
    if hasattr(encoding, "freqs") and encoding.freqs.numel():
        return [[int(2 * float(encoding.freqs.max()) / math.pi) + 1]]
    return [[2]]


class PixelGrid:
    """Pixel centres (0.5 + step * i) of a frame, every ``step``-th row and column, in model coordinates."""

    def __init__(self, model: VidcamModel, step: int = 1):
        frame = model.frame
        self.step = step
        self.rows, self.cols = math.ceil(frame.height / step), math.ceil(frame.width / step)
        self.xy = self.nodes(model, 1)

    def nodes(self, model: VidcamModel, stride: int) -> Tensor:
        """[r*c, 2] model coordinates of every ``stride``-th point of this grid, the last row/column included."""
        r, c = self.node_shape(stride)
        y = (torch.arange(r, device=model.device) * stride).clamp(max=self.rows - 1) * self.step + 0.5
        x = (torch.arange(c, device=model.device) * stride).clamp(max=self.cols - 1) * self.step + 0.5
        yy, xx = torch.meshgrid(y.float(), x.float(), indexing="ij")
        return model.frame.to_model(torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1))

    def node_shape(self, stride: int) -> tuple[int, int]:
        if stride == 1:
            return self.rows, self.cols
        # Nodes every ``stride`` points up to the first one at or past the last point, so that
        # upsampling interpolates everywhere (the overshooting node is clamped onto the edge).
        return math.ceil((self.rows - 1) / stride) + 1, math.ceil((self.cols - 1) / stride) + 1


class FastScene:
    """Whole frames of the model's scene: irradiance, layer weights and atlas coordinates."""

    def __init__(
        self,
        model: VidcamModel,
        settings: FastSettings,
        chunk: int,
        step: int = 1,
        override: AtlasOverride | None = None,
    ):
        self.model, self.settings, self.chunk = model, settings, chunk
        self.grid = PixelGrid(model, step)
        self.textures = baked_atlases(model, settings, chunk)
        self.override = override
        self.mapping_stride = mapping_stride(model, settings.mapping_stride, step)
        self._mapping_nodes = self.grid.nodes(model, self.mapping_stride)
        # On a strided grid (a pre-pass) the alpha stride counts frame pixels, not grid points.
        self.alpha_stride = max(1, settings.alpha_stride // step)
        self._alpha_nodes = self.grid.nodes(model, self.alpha_stride)

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.rows, self.grid.cols

    def _at_nodes(self, function: Callable[[Tensor], Tensor], nodes: Tensor, stride: int, t: int) -> Tensor:
        """``function(xyt)`` at the grid's ``stride``-th points of frame t, upsampled to every point: [P, C]."""
        scene = self.model.scene
        t_index = torch.full((nodes.shape[0],), t, device=nodes.device, dtype=torch.long)
        xyt = scene.xyt(nodes, t_index)
        values = in_chunks(function, xyt, self.chunk).to(nodes.device)
        r, c = self.grid.node_shape(stride)
        return _upsample(values.view(r, c, -1), self.grid.rows, self.grid.cols, stride)

    def cover_logits(self, t: int) -> Tensor:
        """[P, L-1] alpha logits: every ``alpha_stride`` points, upsampled, then evaluated exactly at
        every point of the cells whose corners are not all saturated the same way (the edges)."""
        alpha = self.model.scene.alpha
        stride = self.alpha_stride
        r, c = self.grid.node_shape(stride)
        nodes = self._alpha_nodes
        t_index = torch.full((nodes.shape[0],), t, device=nodes.device, dtype=torch.long)
        coarse = in_chunks(lambda xyt: alpha(xyt).float(), self.model.scene.xyt(nodes, t_index), self.chunk)
        coarse = coarse.to(nodes.device).view(r, c, -1)
        logits = _upsample(coarse, self.grid.rows, self.grid.cols, stride)
        if stride == 1:
            return logits
        bound = math.log((1 - ALPHA_SATURATED) / ALPHA_SATURATED)
        corners = [coarse[:-1, :-1], coarse[1:, :-1], coarse[:-1, 1:], coarse[1:, 1:]]
        low = torch.stack([k < -bound for k in corners]).all(0)
        high = torch.stack([k > bound for k in corners]).all(0)
        stacked = torch.stack(corners)
        smooth = (stacked.amax(0) - stacked.amin(0)) < ALPHA_SMOOTH
        settled = (low | high | smooth).all(-1)  # [r-1, c-1]
        cell_y = (torch.arange(self.grid.rows, device=nodes.device) // stride).clamp(max=max(r - 2, 0))
        cell_x = (torch.arange(self.grid.cols, device=nodes.device) // stride).clamp(max=max(c - 2, 0))
        refine = (~settled[cell_y][:, cell_x]).reshape(-1).nonzero()[:, 0]
        if refine.numel():
            xy = self.grid.xy[refine]
            t_refine = torch.full((xy.shape[0],), t, device=xy.device, dtype=torch.long)
            exact = in_chunks(lambda xyt: alpha(xyt).float(), self.model.scene.xyt(xy, t_refine), self.chunk)
            logits[refine] = exact.to(logits.device)
        self.refined_fraction = refine.numel() / max(logits.shape[0], 1)
        return logits

    def weights(self, t: int) -> Tensor:
        """[P, L] layer weights at every point of the grid (as ``LayeredScene._layer_weights``)."""
        n = self.grid.xy.shape[0]
        if self.model.scene.alpha is None:
            return self.grid.xy.new_ones(n, 1)
        return weights_from_cover(torch.sigmoid(self.cover_logits(t)))

    def uv(self, t: int) -> Tensor:
        """[L, P, 2] atlas coordinates of every layer: the homography exactly, the residual upsampled."""
        xy = self.grid.xy
        stride = self.mapping_stride
        out = []
        for mapping in self.model.scene.mappings:
            residual = self._at_nodes(mapping.residual_part, self._mapping_nodes, stride, t)
            h = mapping.homography(torch.tensor([t], device=xy.device))
            out.append(project_points(h, xy[None])[0] + residual)
        return torch.stack(out)

    def layer_irradiance(self, layer: int, uv: Tensor, t: int) -> Tensor:
        """[P,3] linear irradiance of one layer at atlas coordinates uv [P,2] of frame t, edits applied."""
        log_irradiance = _sample(self.textures[layer], uv.clamp(-1, 1), "border", True)
        scene = self.model.scene
        if scene.changing and str(layer) in scene.dynamics:
            t_index = torch.full((self.chunk,), t, device=uv.device, dtype=torch.long)
            change = in_chunks(lambda part: scene.atlas_change(layer, part, t_index[: len(part)]), uv, self.chunk)
            log_irradiance = log_irradiance + change.to(uv.device)
        irradiance = log_irradiance.exp()
        edit = self.override
        if edit is not None and edit.layer == layer:
            sampled = _sample(edit.texture, edit.to_grid(uv), "zeros", False)
            irradiance = sampled[:, :3] + (1 - sampled[:, 3:]) * irradiance
        return irradiance

    def irradiance(self, t: int) -> Tensor:
        """[P,3] composite sharp irradiance of frame t."""
        weights, uv = self.weights(t), self.uv(t)
        total = torch.zeros(uv.shape[1], 3, device=uv.device)
        for layer in range(uv.shape[0]):
            total += weights[:, layer : layer + 1] * self.layer_irradiance(layer, uv[layer], t)
        return total

    def frame(self, t: int) -> np.ndarray:
        """float32 [rows, cols, 3] sharp irradiance."""
        with torch.no_grad():
            return self.irradiance(t).view(*self.shape, 3).float().cpu().numpy()


@torch.no_grad()
def tone_tabulated(model: VidcamModel, irradiance: Tensor, log_exposure: float) -> Tensor:
    """``model.tone(log irradiance, exposure)`` [P,3] through a table of the curve over the values' range."""
    z = irradiance.clamp_min(LOG_FLOOR).log() + log_exposure
    lo, hi = float(z.min()), float(z.max())
    if hi - lo < 1e-6:
        return model.tone.curve(z.new_tensor([lo]))[0].expand_as(z).clone()
    samples = torch.linspace(lo, hi, TONE_TABLE_SIZE, device=z.device)
    table = model.tone.curve(samples)  # [n, 3]
    position = (z - lo) * ((TONE_TABLE_SIZE - 1) / (hi - lo))
    index = position.floor().long().clamp(0, TONE_TABLE_SIZE - 2)
    frac = position - index
    below = table.gather(0, index)
    above = table.gather(0, index + 1)
    return below + frac * (above - below)


@torch.no_grad()
def camera_frame(scene: FastScene, t: int, log_exposure: float | None = None) -> np.ndarray:
    """float32 [rows, cols, 3] in [0, 1]: frame t's sharp irradiance through the learned camera
    (``log_exposure`` None: the frame's own learned exposure)."""
    model = scene.model
    if log_exposure is None:
        log_exposure = float(model.exposures(torch.tensor([t], device=model.device))[0])
    return tone_tabulated(model, scene.irradiance(t), log_exposure).view(*scene.shape, 3).float().cpu().numpy()


def fast_frames(
    model: VidcamModel,
    rc: RenderConfig,
    camera: bool = False,
    override: AtlasOverride | None = None,
    desc: str = "render",
) -> Iterator[np.ndarray]:
    """Every frame, fast: sharp irradiance [H,W,3], or with ``camera`` through the learned camera."""
    scene = FastScene(model, FastSettings.from_config(rc), rc.chunk, override=override)
    for t in progress(range(model.frame.n_frames), desc, unit="frame", leave=False):
        yield camera_frame(scene, t) if camera else scene.frame(t)


def frame_renderer(model: VidcamModel, rc: RenderConfig) -> Callable[[int], np.ndarray]:
    """One frame's sharp irradiance, float32 [H,W,3], by ``rc``'s renderer, for frames wanted out of
    order: the same picture ``rendered_frames`` yields for that frame."""
    if rc.fast:
        return FastScene(model, FastSettings.from_config(rc), rc.chunk).frame  # the baked atlases are shared
    return lambda t: render_frame(model, t, rc.chunk)


def rendered_frames(
    model: VidcamModel,
    rc: RenderConfig,
    camera: bool = False,
    override: AtlasOverride | None = None,
    exact_irradiance: Evaluate | None = None,
    desc: str = "render",
) -> Iterator[np.ndarray]:
    """Every frame as float32 [H,W,3]: sharp irradiance, or with ``camera`` what a blur-free camera
    records. ``rc.fast`` picks this module's renderer (with ``override``), else the exact per-pixel
    render (with ``exact_irradiance``, the same edit as an ``Evaluate``)."""
    if rc.fast:
        return fast_frames(model, rc, camera, override, desc)
    evaluate = through_camera(model, exact_irradiance) if camera else exact_irradiance
    return render_frames(model, rc.chunk, evaluate, desc)


PREPASS_PIXELS = 4096  # pixels per frame the display pre-pass samples, at least (a regular stride)


def prepass_step(model: VidcamModel) -> int:
    frame = model.frame
    return max(1, int(math.sqrt(frame.height * frame.width / PREPASS_PIXELS)))


@torch.no_grad()
def sampled_irradiance(
    model: VidcamModel, rc: RenderConfig, override: AtlasOverride | None = None, exact_irradiance: Evaluate | None = None
) -> Iterator[np.ndarray]:
    """Per frame, sharp irradiance [M,3] at every ``prepass_step``-th pixel of every row and column:
    what clip-wide display statistics (exposure scale, white point, light levels) are measured on."""
    step = prepass_step(model)
    if rc.fast:
        scene = FastScene(model, FastSettings.from_config(rc), rc.chunk, step, override)
        for t in progress(range(model.frame.n_frames), "measure", unit="frame", leave=False):
            yield scene.irradiance(t).float().cpu().numpy()
        return
    evaluate = exact_irradiance or model.irradiance
    xy = PixelGrid(model, step).xy
    for t in progress(range(model.frame.n_frames), "measure", unit="frame", leave=False):
        t_index = torch.full((xy.shape[0],), t, device=xy.device, dtype=torch.long)
        yield in_chunks(lambda part_t: evaluate(part_t[:, :2], part_t[:, 2].long()), torch.cat([xy, t_index[:, None].float()], 1), rc.chunk).numpy()
