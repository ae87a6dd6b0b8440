"""How sharp each frame of a clip is, so that training can learn the atlas from the sharp ones first.

In a hand-held clip the shake varies from frame to frame: some frames are nearly sharp, others
smeared over several pixels. All of them see much the same scene, so the energy of the image's
second derivatives, compared between nearby frames, ranks them by blur.
"""

from __future__ import annotations

import cv2
import numpy as np

NOISE_SIGMA_PX = 0.7  # pre-blur that keeps sensor noise and compression from counting as detail


def frame_sharpness(frames: np.ndarray) -> np.ndarray:
    """float64 [N]: variance of the Laplacian of each frame's grey image ([N,H,W,3] floats in [0, 1])."""
    scores = np.empty(len(frames))
    for t, frame in enumerate(frames):
        grey = cv2.GaussianBlur(frame.mean(-1).astype(np.float32), (0, 0), NOISE_SIGMA_PX)
        scores[t] = cv2.Laplacian(grey, cv2.CV_32F).var()
    return scores


def sharp_frame_weights(sharpness: np.ndarray, window: int, power: float) -> np.ndarray:
    """float64 [N] in (0, 1]: each frame's sharpness relative to the sharpest within ``window``
    frames either side, raised to ``power`` (1 for the locally sharpest frames)."""
    n = len(sharpness)
    local_max = np.array([sharpness[max(0, t - window) : t + window + 1].max() for t in range(n)])
    relative = sharpness / np.maximum(local_max, 1e-12)
    return np.clip(relative, 1e-6, 1.0) ** power


def still_frames(sharpness: np.ndarray, window: int, margin: float) -> list[int]:
    """The frames within ``margin`` (a fraction) of the sharpest within ``window`` frames either side.

    On two real hand-held clips and a synthetic one (shake up to 7 px) every frame blurred by 1 px
    or more scored at most 0.66 of the sharpest within 8 frames, the sharp ones (under 0.5 px)
    0.73-1.0: a margin of 0.2 left a few sharp frames out and no blurred one in. A window that long
    matters: a run of blurred frames holds its least blurred one as the sharpest of a shorter window
    (within 5 frames, the synthetic clip's least blurred ones, 3.4 and 4.0 px, scored 1.0).
    """
    relative = sharp_frame_weights(sharpness, window, 1.0)
    return [int(t) for t in np.flatnonzero(relative >= 1.0 - margin)]
