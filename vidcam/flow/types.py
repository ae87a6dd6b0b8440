"""``FlowPair``: the optical flow between frames t and t+k of a clip, both directions.

Its own module so that the layers that only consume flow (motion analysis, training data)
do not import the estimators (RAFT, DIS) that produce it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FlowPair:
    """Flow for one gap k, all frames stacked (see the module docstring for conventions)."""

    gap: int
    forward: np.ndarray  # float32 [N-k, H, W, 2]: frame t pixel p <-> frame t+k pixel p + forward[t, p]
    backward: np.ndarray  # float32 [N-k, H, W, 2]: frame t+k pixel p <-> frame t pixel p + backward[t, p]
    valid_forward: np.ndarray  # bool [N-k, H, W]: forward-backward consistent and inside the frame
    valid_backward: np.ndarray  # bool [N-k, H, W]

    def reversed(self) -> FlowPair:
        """The same correspondences seen from frame t+k (backward becomes forward)."""
        return FlowPair(self.gap, self.backward, self.forward, self.valid_backward, self.valid_forward)
