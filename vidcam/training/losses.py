"""Loss terms. Each returns a scalar; weights and schedules are applied by the trainer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vidcam.models.scene import LayeredScene
from vidcam.training.data import FlowBatch


def color_loss(predicted: Tensor, observed: Tensor) -> Tensor:
    """MSE over all pixels, clipped ones included: the tone mapper models clipping."""
    return F.mse_loss(predicted.float(), observed)


def flow_loss(scene: LayeredScene, batch: FlowBatch) -> Tensor:
    """Flow-linked pixels should land on the same atlas point, in the layer they belong to."""
    uv_src = scene.uv(batch.xy, batch.t)
    uv_dst = scene.uv(batch.xy_target, batch.t_target)
    weights = scene.layer_weights(batch.xy, batch.t).detach().T  # [L, B]
    distance = (uv_src - uv_dst).square().sum(-1)  # [L, B]
    return (weights * distance * batch.valid).sum(0).sum() / batch.valid.sum().clamp_min(1)


def rigidity_loss(scene: LayeredScene, xy: Tensor, t: Tensor, step: float) -> Tensor:
    """Penalise the spatial gradient of each mapping's learned residual.

    The per-frame homographies carry the global motion, so a residual that varies little
    across a frame keeps the mapping close to a rigid (projective) one. Finite differences
    over ``step`` model units, in float32 even under bf16 autocast: bf16 rounding in the hidden
    layers, divided by a 2 px step, made the term ~20 % noise.
    """
    xyt = scene.xyt(xy, t)
    total = xy.new_zeros(())
    with torch.autocast(xy.device.type, enabled=False):
        for mapping in scene.mappings:
            centre = mapping.residual_part(xyt)
            for axis in range(2):
                shifted = xyt.clone()
                shifted[:, axis] += step
                total = total + ((mapping.residual_part(shifted.clamp(-1, 1)) - centre) / step).square().sum(-1).mean()
    return total


def alpha_init_loss(weights: Tensor, foreground: Tensor) -> Tensor:
    """Keep the foreground coverage (1 - background weight) near its initialisation."""
    coverage = (1 - weights[:, 0]).clamp(1e-4, 1 - 1e-4)
    return F.binary_cross_entropy(coverage, foreground.clamp(0, 1))


def alpha_binary_loss(weights: Tensor) -> Tensor:
    """Layer weights should be close to 0 or 1: layers are opaque."""
    return (weights * (1 - weights)).mean()


def atlas_bounds_loss(uv: Tensor) -> Tensor:
    """Atlas coordinates must stay inside [-1, 1]^2, where the atlas is defined."""
    return F.relu(uv.abs() - 1).square().sum(-1).mean()
