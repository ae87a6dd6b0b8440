"""The clip as training data on the device, and random batches drawn from it.

Frames stay uint8 (or uint16) on the device and flows float16, so a step costs no host copies.
Every random draw goes through one ``torch.Generator`` whose state is checkpointed, which
makes a resumed run continue bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vidcam.flow.types import FlowPair
from vidcam.models.scene import Frame


@dataclass
class PixelBatch:
    t: Tensor  # long [B] frame index
    xy: Tensor  # [B,2] model coordinates of pixel centres
    rgb: Tensor  # [B,3] observed value in [0,1]
    mask: Tensor | None  # [B] foreground initialisation in [0,1]


@dataclass
class FlowBatch:
    t: Tensor  # long [B] frame of the source pixel
    xy: Tensor  # [B,2] source pixel centre, model coordinates
    t_target: Tensor  # long [B]
    xy_target: Tensor  # [B,2] where the flow lands, model coordinates
    valid: Tensor  # [B] float, 1 where forward-backward consistent


class ClipData:
    def __init__(
        self,
        frames: np.ndarray,
        flows: dict[int, FlowPair],
        device: torch.device,
        foreground: np.ndarray | None = None,
        seed: int = 0,
        frame_weights: np.ndarray | None = None,
    ):
        """``frame_weights`` [N]: how strongly ``pixels`` may favour each frame (see ``favour``)."""
        self.device = device
        self.frame = Frame(*frames.shape[:3])
        self.scale = float(np.iinfo(frames.dtype).max) if frames.dtype != np.float32 else 1.0
        self.frames = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
        self.foreground = torch.from_numpy(foreground.astype(np.float16)).to(device) if foreground is not None else None
        self.flows = [self._flow_tensors(pair) for pair in flows.values()]
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.frame_weights = torch.as_tensor(frame_weights, dtype=torch.float32, device=device) if frame_weights is not None else None
        self.frame_probabilities: Tensor | None = None  # None: every frame equally likely

    def favour(self, strength: float) -> None:
        """Draw frames with probability ``(1 - strength) / N + strength * w_t / sum(w)``."""
        if self.frame_weights is None or strength <= 0:
            self.frame_probabilities = None
            return
        uniform = torch.full_like(self.frame_weights, 1.0 / len(self.frame_weights))
        self.frame_probabilities = (1 - strength) * uniform + strength * self.frame_weights / self.frame_weights.sum()

    def _flow_tensors(self, pair: FlowPair) -> dict[str, object]:
        def put(array: np.ndarray, dtype: torch.dtype) -> Tensor:
            return torch.from_numpy(np.ascontiguousarray(array)).to(self.device, dtype)

        return {
            "gap": pair.gap,
            "flow": torch.stack([put(pair.forward, torch.float16), put(pair.backward, torch.float16)]),
            "valid": torch.stack([put(pair.valid_forward, torch.bool), put(pair.valid_backward, torch.bool)]),
        }

    @property
    def n_pixels(self) -> int:
        return self.frames.shape[0] * self.frames.shape[1] * self.frames.shape[2]

    def _randint(self, high: int, size: int) -> Tensor:
        return torch.randint(high, (size,), generator=self.generator, device=self.device)

    def _centres(self, x: Tensor, y: Tensor) -> Tensor:
        return self.frame.to_model(torch.stack([x, y], dim=1).float() + 0.5)

    def pixels(self, size: int) -> PixelBatch:
        n, h, w = self.frames.shape[:3]
        if self.frame_probabilities is None:
            t = self._randint(n, size)
        else:
            t = torch.multinomial(self.frame_probabilities, size, replacement=True, generator=self.generator)
        y, x = self._randint(h, size), self._randint(w, size)
        rgb = self.frames[t, y, x].float() / self.scale
        mask = self.foreground[t, y, x].float() if self.foreground is not None else None
        return PixelBatch(t, self._centres(x, y), rgb, mask)

    def flow_links(self, size: int) -> FlowBatch | None:
        """Random pixels with the pixel the flow links them to, in either direction, any gap."""
        if not self.flows:
            return None
        which = self._randint(len(self.flows), 1).item()
        pair = self.flows[which]
        _, pairs, h, w = pair["valid"].shape
        direction, t0 = self._randint(2, size), self._randint(pairs, size)
        y, x = self._randint(h, size), self._randint(w, size)
        flow = pair["flow"][direction, t0, y, x].float()
        valid = pair["valid"][direction, t0, y, x].float()
        forward = direction == 0
        gap = pair["gap"]
        t_src = torch.where(forward, t0, t0 + gap)
        t_dst = torch.where(forward, t0 + gap, t0)
        target_px = torch.stack([x, y], dim=1).float() + 0.5 + flow
        return FlowBatch(t_src, self._centres(x, y), t_dst, self.frame.to_model(target_px), valid)
