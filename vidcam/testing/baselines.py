"""Classical baselines the neural method has to beat, and their scores on synthetic clips.

* ``classical_hdr_merge``: align each frame's neighbours with DIS optical flow, linearise with
  an assumed gamma-2.2 response, and merge with hat weights (the usual multi-exposure merge).
* ``unsharp_mask``: a plain sharpening filter as the deblurring baseline.

CLI: ``python tools/baselines.py assets/demo_hdr.mp4 [assets/demo_blur.mp4 ...]`` reads the
JSON sidecar beside each clip, regenerates the ground truth, and prints the scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidcam.metrics import psnr, psnr_l, psnr_mu, ssim

ASSUMED_GAMMA = 2.2
HAT_EXPONENT = 1.0  # w(z) = 1 - |2z - 1|^p: p = 1 is the triangle (best of 1, 2, 4, 12 on the demo)
HAT_FLOOR = 1e-3  # every pixel keeps some weight, so fully clipped / black pixels still merge
UNSHARP_SIGMA = 1.5
UNSHARP_AMOUNT = 1.0


@dataclass(frozen=True)
class MergeSettings:
    gamma: float = ASSUMED_GAMMA
    hat_exponent: float = HAT_EXPONENT
    hat_floor: float = HAT_FLOOR
    radius: int = 1  # neighbours t - radius .. t + radius (clamped at the clip's ends)


# --------------------------------------------------------------------------- HDR merge


def linearise(frames: np.ndarray, gamma: float = ASSUMED_GAMMA) -> np.ndarray:
    """uint8 -> linear float32 in [0, 1] under an assumed power-law response."""
    return (np.asarray(frames, np.float32) / 255.0) ** gamma


def encode(linear: np.ndarray, gamma: float = ASSUMED_GAMMA) -> np.ndarray:
    """Linear [0, 1] -> uint8 under the same assumed response (clipping first)."""
    return np.round(np.clip(linear, 0.0, 1.0) ** (1.0 / gamma) * 255.0).astype(np.uint8)


def exposure_matched_grey(frame: np.ndarray, exposure: float, target_exposure: float, gamma: float) -> np.ndarray:
    """Grey uint8 image of ``frame`` as if shot at ``target_exposure`` (for flow between exposures)."""
    rescaled = encode(linearise(frame, gamma) * (target_exposure / exposure), gamma)
    return cv2.cvtColor(rescaled, cv2.COLOR_RGB2GRAY)


def dis_flow(reference_grey: np.ndarray, other_grey: np.ndarray) -> np.ndarray:
    """DIS optical flow [H, W, 2]: reference pixel p corresponds to other pixel p + flow[p]."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(reference_grey, other_grey, None)


def warp_to_reference(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp ``image`` onto the reference grid with ``flow`` (from ``dis_flow``)."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def hat_weight(z: np.ndarray, exponent: float = HAT_EXPONENT, floor: float = HAT_FLOOR) -> np.ndarray:
    """Trust of a pixel value z in [0, 1]: 1 at mid-grey, ~0 at black and at clipping."""
    return np.maximum(1.0 - np.abs(2.0 * z - 1.0) ** exponent, floor)


def aligned_neighbours(
    frames: np.ndarray, exposures: np.ndarray, t: int, settings: MergeSettings
) -> list[tuple[np.ndarray, float]]:
    """Frame t and its neighbours warped onto frame t, each with its exposure time."""
    n = len(frames)
    indices = sorted({min(max(t + d, 0), n - 1) for d in range(-settings.radius, settings.radius + 1)})
    reference_grey = cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY)
    out = []
    for s in indices:
        if s == t:
            out.append((frames[t], float(exposures[t])))
            continue
        other_grey = exposure_matched_grey(frames[s], exposures[s], exposures[t], settings.gamma)
        flow = dis_flow(reference_grey, other_grey)
        out.append((warp_to_reference(frames[s], flow), float(exposures[s])))
    return out


def merge_exposures(images: list[tuple[np.ndarray, float]], settings: MergeSettings) -> np.ndarray:
    """Weighted average of per-image radiance estimates (linearised value / exposure time)."""
    numerator = np.zeros(images[0][0].shape, np.float64)
    denominator = np.zeros(images[0][0].shape, np.float64)
    for image, exposure in images:
        z = np.asarray(image, np.float64) / 255.0
        w = hat_weight(z, settings.hat_exponent, settings.hat_floor)
        numerator += w * z**settings.gamma / exposure
        denominator += w
    return (numerator / denominator).astype(np.float32)


def classical_hdr_merge(
    frames: np.ndarray, exposures: np.ndarray, settings: MergeSettings | None = None
) -> np.ndarray:
    """Per-frame HDR [N, H, W, 3] float32 by flow-aligned multi-exposure merging."""
    settings = settings or MergeSettings()
    frames = np.asarray(frames)
    exposures = np.asarray(exposures, np.float64)
    if frames.dtype != np.uint8 or frames.ndim != 4 or len(exposures) != len(frames):
        raise ValueError("expected uint8 frames [N, H, W, 3] and one exposure per frame")
    return np.stack(
        [merge_exposures(aligned_neighbours(frames, exposures, t, settings), settings) for t in range(len(frames))]
    )


def single_frame_hdr(frames: np.ndarray, exposures: np.ndarray, gamma: float = ASSUMED_GAMMA) -> np.ndarray:
    """The naive reference: each frame linearised alone and divided by its exposure time."""
    return linearise(frames, gamma) / np.asarray(exposures, np.float32)[:, None, None, None]


# --------------------------------------------------------------------------- deblurring


def unsharp_mask(frames: np.ndarray, sigma: float = UNSHARP_SIGMA, amount: float = UNSHARP_AMOUNT) -> np.ndarray:
    """Classic unsharp masking ``x + amount (x - gaussian(x))`` per frame, on the coded values."""
    x = np.asarray(frames, np.float32)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in x.reshape(-1, *x.shape[-3:])])
    sharpened = x + amount * (x - blurred.reshape(x.shape))
    return np.clip(np.round(sharpened), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- evaluation


def hdr_scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    return {"psnr_mu": psnr_mu(pred, gt), "psnr_l": psnr_l(pred, gt)}


def sdr_scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    p, g = np.asarray(pred, np.float64) / 255.0, np.asarray(gt, np.float64) / 255.0
    return {"psnr": psnr(p, g), "ssim": ssim(p, g)}


def evaluate_hdr_clip(frames: np.ndarray, meta: dict, truth: dict) -> dict[str, dict[str, float]]:
    exposures = np.asarray(meta["exposures"], np.float64)
    return {
        "single-frame gamma 2.2": hdr_scores(single_frame_hdr(frames, exposures), truth["hdr"]),
        "classical merge (DIS + hat)": hdr_scores(classical_hdr_merge(frames, exposures), truth["hdr"]),
    }


def evaluate_blur_clip(frames: np.ndarray, meta: dict, truth: dict) -> dict[str, dict[str, float]]:
    return {
        "blurry input": sdr_scores(frames, truth["sharp"]),
        f"unsharp mask (sigma {UNSHARP_SIGMA}, amount {UNSHARP_AMOUNT})": sdr_scores(unsharp_mask(frames), truth["sharp"]),
    }


def evaluate_clip(mp4: Path) -> dict[str, dict[str, float]]:
    """Scores of the baselines on a synthetic clip, using the decoded video (as a user would)."""
    from vidcam.io.video import read_video
    from vidcam.testing.scoring import ground_truth  # knows every generator's sidecar
    from vidcam.testing.synthetic import sidecar_paths

    meta = json.loads(sidecar_paths(mp4)[0].read_text())
    truth = ground_truth(mp4)
    frames = read_video(mp4).frames
    evaluate = evaluate_hdr_clip if meta["kind"] == "hdr" else evaluate_blur_clip
    return evaluate(frames, meta, truth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score the classical baselines on synthetic clips.")
    parser.add_argument("clips", nargs="+", type=Path, help="synthetic .mp4 files with their .json beside them")
    args = parser.parse_args(argv)
    for mp4 in args.clips:
        print(mp4)
        for method, scores in evaluate_clip(mp4).items():
            print(f"  {method:45s} " + "  ".join(f"{k} {v:7.3f}" for k, v in scores.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
