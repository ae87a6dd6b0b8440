"""A deblur clip with ground truth from real frames (real non-rigid motion, synthetic camera shake).

    python tools/make_real_truth.py FRAMES_DIR OUT.mp4 [--frames 24] [--width 320] [--height 180] [--seed 0]

Each recorded frame is the mean, in linear light, of the real frame warped along a short random
camera-shake path (``--subframes`` sub-frame homographies: translation along a curved path plus a
small rotation); the path passes through the identity at mid-exposure, so the unwarped frame is
the truth. Blur lengths vary per frame (some frames stay nearly sharp), then shot/read noise and
8-bit quantisation. Writes OUT.mp4 and OUT_gt.npz (``sharp`` uint8 [N,H,W,3], ``blur_px`` [N]).
Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from vidcam.io.atomic import atomic_path  # noqa: E402
from vidcam.io.video import write_sdr_video  # noqa: E402

GAMMA = 2.2


def shake_homographies(rng: np.random.Generator, length_px: float, subframes: int, hw: tuple[int, int]) -> list[np.ndarray]:
    """Sub-frame homographies along a curved path of about ``length_px``; the middle one is the identity."""
    h, w = hw
    tau = np.linspace(-0.5, 0.5, subframes)
    direction = rng.uniform(0, 2 * np.pi)
    bend = rng.uniform(-0.6, 0.6)  # curvature of the path, relative to its length
    roll = np.deg2rad(rng.uniform(-0.6, 0.6)) * length_px / 8.0  # rotation over the exposure
    mats = []
    for s in tau:
        along = length_px * s
        across = bend * length_px * (4 * s * s - 1.0 / 3.0) * (abs(s) > 0)  # zero at the middle
        dx = along * np.cos(direction) - across * np.sin(direction)
        dy = along * np.sin(direction) + across * np.cos(direction)
        angle = roll * s
        c, n = np.cos(angle), np.sin(angle)
        cx, cy = (w - 1) / 2, (h - 1) / 2
        mat = np.array([[c, -n, cx - c * cx + n * cy + dx], [n, c, cy - n * cx - c * cy + dy], [0, 0, 1]])
        mats.append(mat)
    return mats


def make_clip(frames_dir: Path, n_frames: int, width: int, height: int, seed: int, subframes: int, max_blur_px: float) -> dict:
    files = sorted(frames_dir.glob("*.jpg")) + sorted(frames_dir.glob("*.png"))
    if len(files) < n_frames:
        raise SystemExit(f"{frames_dir} has {len(files)} frames, need {n_frames}")
    rng = np.random.default_rng(seed)
    # Some frames nearly sharp, most blurred: real hand-held footage alternates like that.
    lengths = np.where(rng.random(n_frames) < 0.25, rng.uniform(0.0, 1.0, n_frames), rng.uniform(2.0, max_blur_px, n_frames))
    recorded = np.empty((n_frames, height, width, 3), np.uint8)
    sharp = np.empty_like(recorded)
    for i, path in enumerate(files[:n_frames]):
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        sharp[i] = rgb
        linear = (rgb.astype(np.float64) / 255.0) ** GAMMA
        acc = np.zeros_like(linear)
        for mat in shake_homographies(rng, lengths[i], subframes, (height, width)):
            acc += cv2.warpPerspective(linear, mat, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        blurred = acc / subframes
        blurred = blurred + rng.normal(0, 1, blurred.shape) * np.sqrt(0.0004 * blurred + 0.002**2)
        recorded[i] = np.clip(np.round(np.clip(blurred, 0, 1) ** (1 / GAMMA) * 255), 0, 255).astype(np.uint8)
    return {"frames": recorded, "sharp": sharp, "blur_px": lengths}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("frames_dir", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=180)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subframes", type=int, default=9)
    p.add_argument("--max-blur", type=float, default=7.0, help="longest camera sweep in pixels")
    p.add_argument("--video-crf", type=int, default=14)
    args = p.parse_args(argv)
    clip = make_clip(args.frames_dir, args.frames, args.width, args.height, args.seed, args.subframes, args.max_blur)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_sdr_video(args.out, clip["frames"], Fraction(24), crf=args.video_crf)
    with atomic_path(args.out.with_name(args.out.stem + "_gt.npz")) as tmp:
        np.savez_compressed(tmp, sharp=clip["sharp"], blur_px=clip["blur_px"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
