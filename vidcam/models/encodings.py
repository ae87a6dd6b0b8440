"""Input encodings and small MLPs.

Plain PyTorch (no CUDA extensions): the same code runs on CPU and GPU and under
``torch.autocast(bfloat16)``. Grid encodings always work in float32 internally, because
bf16 coordinates (8-bit mantissa) cannot address a 1024-cell grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidcam.config import EncodingConfig, NetConfig

# Spatial-hash primes of Müller et al. 2022 (Instant NGP), one per input dimension.
HASH_PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)
GRID_INIT_SCALE = 1e-4  # features start uniform(-scale, scale)


class PositionalEncoding(nn.Module):
    """NeRF-style encoding ``[x, sin(2^k π x), cos(2^k π x)]`` for k < ``frequencies``.

    Output layout: the ``in_dim`` inputs, then all sines, then all cosines; within each
    block the frequency varies fastest (``[x0 f0, x0 f1, ..., x1 f0, ...]``).
    """

    def __init__(self, in_dim: int, frequencies: int):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = in_dim * (1 + 2 * frequencies)
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(frequencies, dtype=torch.float32), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        xb = (x.float()[..., None] * self.freqs).flatten(-2)
        return torch.cat([x.float(), torch.sin(xb), torch.cos(xb)], dim=-1)


def level_resolutions(levels: int, base_resolution: int, max_resolution: int) -> list[int]:
    """Grid resolutions growing geometrically from ``base_resolution`` to ``max_resolution``."""
    if levels == 1:
        return [base_resolution]
    growth = (max_resolution / base_resolution) ** (1.0 / (levels - 1))
    return [round(base_resolution * growth**level) for level in range(levels)]


class HashGrid(nn.Module):
    """Multiresolution hash encoding (Müller et al. 2022) of points in ``[-1, 1]^in_dim``.

    A level of resolution ``r`` has ``r`` vertices per axis spanning [-1, 1] (vertex ``i`` at
    ``-1 + 2 i/(r-1)``, like ``align_corners=True``), so capping the time axis at the number of
    frames puts one vertex on every frame. Levels whose ``prod(r)`` vertices fit in the table are
    indexed densely (no collisions); finer levels use the spatial hash. All levels share one flat
    table ``[features, total]`` addressed through per-level offsets, and the 2^in_dim corners of
    all levels are fetched with a single ``index_select``. The features-first table is the faster
    layout on CPU: the gradient's ``index_add_`` along dim 1 beat dim 0 (or ``F.embedding``) ~2-4x.
    """

    def __init__(
        self,
        in_dim: int,
        levels: int,
        features: int,
        log2_table_size: int,
        base_resolution: int,
        max_resolution: int,
        axis_max_resolution: list[int | None] | None = None,
    ):
        super().__init__()
        if in_dim > len(HASH_PRIMES):
            raise ValueError(f"HashGrid supports at most {len(HASH_PRIMES)} input dimensions")
        caps = axis_max_resolution or [None] * in_dim
        if len(caps) != in_dim:
            raise ValueError("axis_max_resolution needs one entry per input dimension")
        table_size = 2**log2_table_size
        res = [
            [max(2, r if cap is None else min(r, cap)) for cap in caps]
            for r in level_resolutions(levels, base_resolution, max_resolution)
        ]
        dense = [math.prod(r) <= table_size for r in res]
        sizes = [math.prod(r) if d else table_size for r, d in zip(res, dense)]
        self.in_dim, self.levels, self.features = in_dim, levels, features
        self.out_dim = levels * features
        self.table_size = table_size
        self.level_resolution = res  # [L][D] vertices per axis
        self.level_offsets = [sum(sizes[:level]) for level in range(levels)]  # first table column per level
        # Resolutions never decrease with the level, so the dense levels come first.
        self.n_dense = sum(dense)
        res_t = torch.tensor(res, dtype=torch.long).t()  # [D, L]
        strides = torch.cat([torch.ones(1, levels, dtype=torch.long), res_t[:-1].cumprod(0)])
        offsets = torch.tensor([0, *sizes[:-1]], dtype=torch.long).cumsum(0)
        # Shaped to broadcast against [D, L, 2, B] corner coordinates / [L, C, B] indices.
        self.register_buffer("resolution", res_t[:, :, None], persistent=False)  # [D, L, 1]
        self.register_buffer("strides", strides[:, :, None, None], persistent=False)
        self.register_buffer("primes", torch.tensor(HASH_PRIMES[:in_dim]).view(-1, 1, 1, 1), persistent=False)
        self.register_buffer("offsets", offsets.view(-1, 1, 1), persistent=False)
        self.table = nn.Parameter(torch.empty(features, sum(sizes)).uniform_(-GRID_INIT_SCALE, GRID_INIT_SCALE))

    def corner_indices(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Table columns ``[L, C, B]`` of the ``C = 2^D`` cell corners around each point, and their weights.

        Level-major order keeps each level's gathers and gradient scatters within its own part of
        the table (cache-friendly on CPU). int64 indices: int32 made ``index_select``/``index_add_``
        several times slower on CPU.
        """
        pos = (x.float().clamp(-1, 1).t()[:, None, :] + 1) * 0.5 * (self.resolution - 1)  # [D, L, B]
        cell = torch.minimum(pos.detach().floor().long(), self.resolution - 2).clamp_(min=0)
        frac = pos - cell
        # Per axis the two candidate vertices (cell, cell + 1) give an index term and a weight;
        # the 2^D corners are their outer combination over axes (sum for dense, xor for hash).
        corner = torch.stack([cell, cell + 1], dim=2)  # [D, L, 2, B]
        axis_w = torch.stack([1 - frac, frac], dim=2)
        nd = self.n_dense
        dense_part = corner[:, :nd] * self.strides[:, :nd]
        hash_part = corner[:, nd:] * self.primes
        weight, idx_dense, idx_hash = axis_w[0], dense_part[0], hash_part[0]
        for d in range(1, self.in_dim):
            new_axis = (slice(None),) + (None,) * d  # [L, 2, B] -> [L, 1 (d times), 2, B]
            weight = weight.unsqueeze(-2) * axis_w[d][new_axis]
            idx_dense = idx_dense.unsqueeze(-2) + dense_part[d][new_axis]
            idx_hash = torch.bitwise_xor(idx_hash.unsqueeze(-2), hash_part[d][new_axis])
        idx_hash = torch.bitwise_and(idx_hash, self.table_size - 1)
        idx = torch.cat([idx_dense, idx_hash]).flatten(1, self.in_dim) + self.offsets
        return idx, weight.flatten(1, self.in_dim)

    def forward(self, x: Tensor) -> Tensor:
        idx, weight = self.corner_indices(x)
        feats = self.table.index_select(1, idx.flatten()).view(self.features, *idx.shape)  # [F, L, C, B]
        return (feats * weight).sum(2).permute(2, 1, 0).flatten(1)  # [B, L*F], level-major


class DenseGrid2D(nn.Module):
    """Multiresolution dense 2-D feature grids for ``(u, v)`` in ``[-1, 1]^2``.

    Level ``l`` is a ``[features, r_l, r_l]`` image sampled bilinearly with ``F.grid_sample``
    (``align_corners=True``, border padding); levels are concatenated.
    """

    def __init__(self, levels: int, features: int, base_resolution: int, max_resolution: int):
        super().__init__()
        self.levels, self.features = levels, features
        self.out_dim = levels * features
        self.grids = nn.ParameterList(
            nn.Parameter(torch.empty(1, features, r, r).uniform_(-GRID_INIT_SCALE, GRID_INIT_SCALE))
            for r in level_resolutions(levels, base_resolution, max_resolution)
        )

    def forward(self, uv: Tensor) -> Tensor:
        grid = uv.float().reshape(1, -1, 1, 2)
        out = [
            F.grid_sample(g, grid, mode="bilinear", padding_mode="border", align_corners=True)[0, :, :, 0]
            for g in self.grids
        ]
        return torch.cat(out, dim=0).t()


def make_encoding(cfg: EncodingConfig, in_dim: int, n_frames: int | None = None) -> nn.Module:
    """The encoding named by ``cfg.kind``; for a 3-D (x, y, t) hash grid the time axis is capped at ``n_frames``."""
    if cfg.kind == "pe":
        return PositionalEncoding(in_dim, cfg.frequencies)
    if cfg.kind == "hashgrid":
        caps: list[int | None] | None = None
        if in_dim == 3 and n_frames is not None:
            caps = [None, None, n_frames]
        return HashGrid(
            in_dim, cfg.levels, cfg.features, cfg.log2_table_size, cfg.base_resolution, cfg.max_resolution, caps
        )
    if cfg.kind == "densegrid":
        if in_dim != 2:
            raise ValueError(f"densegrid encodes 2-D inputs only, got in_dim={in_dim}")
        return DenseGrid2D(cfg.levels, cfg.features, cfg.base_resolution, cfg.max_resolution)
    raise ValueError(f"unknown encoding kind '{cfg.kind}' (pe | hashgrid | densegrid)")


class MLP(nn.Module):
    """``layers`` hidden ReLU layers of width ``hidden``, then a linear output layer."""

    def __init__(self, in_dim: int, hidden: int, layers: int, out_dim: int, zero_last: bool = False):
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            body += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        self.last = nn.Linear(dims[-1], out_dim)
        if zero_last:  # a residual branch then starts at exactly zero
            nn.init.zeros_(self.last.weight)
            nn.init.zeros_(self.last.bias)
        self.net = nn.Sequential(*body, self.last)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.net[:-1](x)
        # The output layer runs in float32 even under bf16 autocast: outputs are log irradiance
        # and coordinate offsets, where bf16's 8-bit mantissa would cost ~0.5 % (measured 60x
        # the float32 layer's error on a log-irradiance atlas).
        with torch.autocast(hidden.device.type, enabled=False):
            return self.last(hidden.float())


class EncodedMLP(nn.Module):
    """``make_encoding(cfg.encoding)`` followed by an ``MLP``: ``[B, in_dim] -> [B, out_dim]``."""

    def __init__(
        self, in_dim: int, out_dim: int, cfg: NetConfig, n_frames: int | None = None, zero_last: bool = False
    ):
        super().__init__()
        self.encoding = make_encoding(cfg.encoding, in_dim, n_frames)
        self.mlp = MLP(self.encoding.out_dim, cfg.hidden, cfg.layers, out_dim, zero_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(self.encoding(x))


def encoding_parameters(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split ``module``'s parameters into (grid tables, everything else) for per-group learning rates."""
    grid_ids = {
        id(p) for m in module.modules() if isinstance(m, (HashGrid, DenseGrid2D)) for p in m.parameters()
    }
    params = list(module.parameters())  # deduplicated by nn.Module
    return [p for p in params if id(p) in grid_ids], [p for p in params if id(p) not in grid_ids]
