"""The scene: layered neural atlases giving linear irradiance at any pixel of any frame.

Each layer l maps a pixel (x, y, t) to atlas coordinates (u, v) in [-1, 1]^2 with

    (u, v) = project(B_l[t] (I + D_l[t]) [x, y, 1]) + residual_scale * tanh(MLP_l(x, y, t))

where B_l[t] is a fixed per-frame homography found from the flow (the dominant camera motion
for the background, the foreground region's own motion for layer 1), D_l[t] a learned per-frame
correction and the MLP a learned residual. Both learned parts start at exactly zero, so the
deformation is bootstrapped to the initial mapping. An alpha network splits each pixel
between layers and each layer's atlas network gives log irradiance at (u, v), plus (with
``scene.atlas_dynamics``) a learned change of it in (u, v, t), starting at exactly zero.

The change term is for what a mapping cannot carry: a mapping moves texture but cannot change
it, and rigidity (which keeps the mapping from picking other texels to fake a change) leaves a
turning limb or a flapping shirt to be averaged into a smudge. Taken in atlas coordinates,
the change rides with the layer's motion, so the frames around t still pool what they saw of
each point, and it is seen through each frame's camera (blur, response) like the atlas. It
learns from blurred frames too: learning from the sharp frames alone (the blurred ones taking it
through its time vertices) gained nothing on real clips. Through a blur it can also explain part
of the blur itself, which costs rigid scenes (README, Performance).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor, nn

from vidcam.config import NetConfig, SceneConfig
from vidcam.models.encodings import EncodedMLP


class Frame:
    """Pixel <-> model coordinates for an H x W clip of N frames (see docs/ARCHITECTURE.md)."""

    def __init__(self, n_frames: int, height: int, width: int):
        self.n_frames, self.height, self.width = n_frames, height, width
        self.pixel_size = 2.0 / max(height, width)

    def to_model(self, xy_px: Tensor) -> Tensor:
        centre = xy_px.new_tensor([self.width / 2, self.height / 2])
        return (xy_px - centre) * self.pixel_size

    def time(self, t_index: Tensor) -> Tensor:
        return t_index.float() * (2.0 / max(self.n_frames - 1, 1)) - 1.0

    def pixel_centres(self, device: torch.device | str = "cpu") -> Tensor:
        """[H*W, 2] model coordinates of every pixel centre, raster order."""
        y, x = torch.meshgrid(torch.arange(self.height), torch.arange(self.width), indexing="ij")
        xy_px = torch.stack([x.reshape(-1), y.reshape(-1)], dim=1).float() + 0.5
        return self.to_model(xy_px).to(device)

    def model_homography(self, h_px: np.ndarray) -> np.ndarray:
        """Express pixel-space homographies [..., 3, 3] in model coordinates."""
        s = self.pixel_size
        to_model = np.array([[s, 0, -s * self.width / 2], [0, s, -s * self.height / 2], [0, 0, 1]])
        return to_model @ h_px @ np.linalg.inv(to_model)


def project_points(h: Tensor, xy: Tensor) -> Tensor:
    """Apply homographies h [B,3,3] to points xy [B,2], or each h to its K points xy [B,K,2]."""
    xyw = torch.cat([xy, torch.ones_like(xy[..., :1])], dim=-1)
    xyw = torch.einsum("bij,bj->bi", h, xyw) if xy.dim() == 2 else torch.einsum("bij,bkj->bki", h, xyw)
    return xyw[..., :2] / xyw[..., 2:].clamp_min(1e-6)


class LayerMapping(nn.Module):
    """(x, y, t) -> (u, v) for one layer."""

    def __init__(self, cfg: SceneConfig, base: np.ndarray, n_frames: int):
        super().__init__()
        self.register_buffer("base", torch.as_tensor(base, dtype=torch.float32))  # [N,3,3]
        self.correction = nn.Parameter(torch.zeros(n_frames, 8)) if cfg.global_motion else None
        self.residual = EncodedMLP(3, 2, cfg.deformation, n_frames=n_frames, zero_last=True)
        self.residual_scale = cfg.residual_scale

    def homography(self, t_index: Tensor) -> Tensor:
        """[B,3,3]: the global part of the mapping for frames t_index [B]."""
        h = self.base[t_index]
        if self.correction is not None:
            d = torch.cat([self.correction[t_index], h.new_zeros(t_index.shape[0], 1)], dim=1)
            h = h @ (torch.eye(3, device=h.device) + d.view(-1, 3, 3))
        return h

    def residual_part(self, xyt: Tensor) -> Tensor:
        return self.residual_scale * torch.tanh(self.residual(xyt).float())

    def forward(
        self, xy: Tensor, xyt: Tensor, t_index: Tensor, offsets: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Atlas coordinates [B,2] of the points xy and, with ``offsets`` [B,K,2], [B,K,2] of the
        points shifted by them (else None); ``xyt`` is the network input (``LayeredScene.xyt``).
        The learned residual varies slowly (rigidity), so across a blur kernel it is taken at the
        centre and only the cheap global part is evaluated per sample."""
        residual = self.residual_part(xyt)
        # Absolute coordinates need float32: under bf16 autocast (8-bit mantissa) the projection
        # would be off by up to a pixel at 640 px.
        with torch.autocast(xy.device.type, enabled=False):
            xy = xy.float()
            h = self.homography(t_index)
            centre = project_points(h, xy) + residual
            if offsets is None:
                return centre, None
            return centre, project_points(h, xy[:, None] + offsets.float()) + residual[:, None]


def weights_from_cover(cover: Tensor) -> Tensor:
    """[B, L] layer weights from each front layer's cover [B, L-1] (layers 1..L-1, front-most last):
    a layer takes its cover of what the layers in front of it left; the background takes the rest."""
    remaining = cover.new_ones(cover.shape[0])
    weights = []
    for k in reversed(range(cover.shape[1])):
        weights.append(remaining * cover[:, k])
        remaining = remaining * (1 - cover[:, k])
    weights.append(remaining)
    return torch.stack(weights[::-1], dim=1)


class LayeredScene(nn.Module):
    """L layers (0 = background, 1.. = foreground, front-most last) of mapping, alpha and atlas."""

    def __init__(
        self,
        cfg: SceneConfig,
        frame: Frame,
        motions: list[np.ndarray | None] | None = None,
        atlas_resolutions: list[int] | None = None,
        dynamics: bool = False,
    ):
        """``motions[l]``: per-frame pixel homographies [N,3,3] into a reference frame for layer l
        (the camera's for the background, the object's for a foreground layer); None: identity.
        ``atlas_resolutions``: each atlas grid's finest resolution, as a checkpoint recorded it;
        None derives it from the motions (``scene.atlas_texels_per_pixel``). ``dynamics``: each atlas
        changes over time (``scene.atlas_dynamics``)."""
        super().__init__()
        self.frame = frame
        self.n_layers = cfg.layers
        identity = np.tile(np.eye(3), (frame.n_frames, 1, 1))
        motions = list(motions or []) + [None] * cfg.layers
        self.mappings = nn.ModuleList(
            LayerMapping(cfg, fit_in_atlas(frame, m if m is not None else identity, cfg.atlas_fill), frame.n_frames)
            for m in motions[: cfg.layers]
        )
        self.atlas_resolutions = atlas_resolutions or [
            capped(cfg.atlas, atlas_resolution(m.base, frame, cfg.atlas_texels_per_pixel)).encoding.max_resolution
            for m in self.mappings
        ]
        self.atlases = nn.ModuleList(EncodedMLP(2, 3, capped(cfg.atlas, r)) for r in self.atlas_resolutions)
        time_vertices = math.ceil((frame.n_frames - 1) / cfg.atlas_dynamics_frame_step) + 1
        # Keyed by layer index: the layers whose atlas changes over time.
        first = 0 if cfg.atlas_dynamics_layers == "all" else 1
        changing_layers = range(first, cfg.layers) if dynamics else range(0)
        self.dynamics = nn.ModuleDict(
            {
                str(layer): EncodedMLP(
                    3, 3, capped(cfg.atlas_dynamics_net, self.atlas_resolutions[layer]), n_frames=time_vertices, zero_last=True
                )
                for layer in changing_layers
            }
        )
        self.changing = True  # the trainer holds the atlases static until scene.atlas_dynamics_start
        alpha_cfg = capped(cfg.alpha, max(frame.height, frame.width))
        self.alpha = EncodedMLP(3, cfg.layers - 1, alpha_cfg, n_frames=frame.n_frames) if cfg.layers > 1 else None

    def xyt(self, xy: Tensor, t_index: Tensor) -> Tensor:
        """[B,3] input of the mapping and alpha networks: (x, y, t), clamped to their domain."""
        return torch.cat([xy, self.frame.time(t_index)[:, None]], dim=1).clamp(-1, 1)

    def layer_weights(self, xy: Tensor, t_index: Tensor) -> Tensor:
        """[B, L] non-negative weights summing to 1; front layers cover the ones behind."""
        return self._layer_weights(self.xyt(xy, t_index))

    def _layer_weights(self, xyt: Tensor) -> Tensor:
        if self.alpha is None:
            return xyt.new_ones(xyt.shape[0], 1)
        return weights_from_cover(torch.sigmoid(self.alpha(xyt).float()))

    def uv(self, xy: Tensor, t_index: Tensor) -> Tensor:
        """[L, B, 2] atlas coordinates of every layer."""
        xyt = self.xyt(xy, t_index)
        return torch.stack([m(xy, xyt, t_index)[0] for m in self.mappings])

    def atlas_log_irradiance(self, layer: int, uv: Tensor) -> Tensor:
        return self.atlases[layer](uv.clamp(-1, 1)).float()

    def atlas_change(self, layer: int, uv: Tensor, t_index: Tensor) -> Tensor:
        """[B,(K,)3] the change of layer's log irradiance at atlas points uv [B,(K,)2] of frames t_index [B]."""
        t = self.frame.time(t_index).view(-1, *([1] * (uv.dim() - 2)), 1).expand(*uv.shape[:-1], 1)
        uvt = torch.cat([uv, t], dim=-1).clamp(-1, 1)
        return self.dynamics[str(layer)](uvt.reshape(-1, 3)).float().view(*uv.shape[:-1], 3)

    def forward(self, xy: Tensor, t_index: Tensor, offsets: Tensor | None = None) -> dict[str, Tensor]:
        """Composite linear irradiance [B,3] at model coordinates xy [B,2] of frames t_index [B].

        With ``offsets`` [B,K,2] (model units) the irradiance [B,K,3] at the K shifted points, the
        layer weights taken at xy: a blur kernel's samples share the centre's mapping residual
        and alpha, so each extra sample costs one atlas lookup.
        """
        xyt = self.xyt(xy, t_index)
        weights = self._layer_weights(xyt)
        uv_centre, layer_irradiance, change_sq = [], [], []
        for layer, mapping in enumerate(self.mappings):
            centre, shifted = mapping(xy, xyt, t_index, offsets)
            uv_centre.append(centre)
            uv = centre if shifted is None else shifted
            log_irradiance = self.atlas_log_irradiance(layer, uv.reshape(-1, 2))
            if self.changing and str(layer) in self.dynamics:
                change = self.atlas_change(layer, uv, t_index).reshape(-1, 3)
                change_sq.append(change.square().mean())
                log_irradiance = log_irradiance + change
            layer_irradiance.append(log_irradiance.exp().view(*uv.shape[:-1], 3))
        layer_irr = torch.stack(layer_irradiance, dim=1)  # [B, L, (K,) 3]
        w = weights.view(*weights.shape, *([1] * (layer_irr.dim() - 2)))
        irradiance = (w * layer_irr).sum(dim=1)
        out = {"irradiance": irradiance, "uv": torch.stack(uv_centre), "weights": weights, "layer_irradiance": layer_irr}
        if change_sq:
            out["atlas_change_sq"] = torch.stack(change_sq).mean()
        return out


def capped(cfg: NetConfig, max_resolution: int) -> NetConfig:
    """``cfg`` with its grid no finer than ``max_resolution``: finer cells than the data
    constrains only fit noise between the pixels that are seen."""
    resolution = max(2, min(cfg.encoding.max_resolution, max_resolution))
    encoding = replace(cfg.encoding, max_resolution=resolution, base_resolution=min(cfg.encoding.base_resolution, resolution))
    return replace(cfg, encoding=encoding)


def atlas_resolution(base: Tensor, frame: Frame, texels_per_pixel: float) -> int:
    """Grid vertices across the atlas that give ``texels_per_pixel`` at the frames' scale."""
    linear = base[:, :2, :2].double()
    atlas_units_per_pixel = linear.det().abs().sqrt().median().item() * frame.pixel_size
    return math.ceil(2 * texels_per_pixel / atlas_units_per_pixel)


def fit_in_atlas(frame: Frame, motion_px: np.ndarray, fill: float) -> np.ndarray:
    """Per-frame homographies (model units) taking each frame into the atlas square.

    ``motion_px[t]`` maps frame t's pixels into a common reference frame; a similarity is
    appended so that the union of all frames' footprints spans ``[-fill, fill]``.
    """
    h = frame.model_homography(motion_px)
    half_w = frame.width / 2 * frame.pixel_size
    half_h = frame.height / 2 * frame.pixel_size
    corners = np.array([[-half_w, -half_h, 1], [half_w, -half_h, 1], [half_w, half_h, 1], [-half_w, half_h, 1]])
    warped = np.einsum("nij,kj->nki", h, corners)
    warped = warped[..., :2] / warped[..., 2:]
    lo, hi = warped.reshape(-1, 2).min(0), warped.reshape(-1, 2).max(0)
    scale = 2 * fill / max(hi - lo)
    centre = (lo + hi) / 2
    similarity = np.array([[scale, 0, -scale * centre[0]], [0, scale, -scale * centre[1]], [0, 0, 1]])
    return (similarity @ h).astype(np.float32)
