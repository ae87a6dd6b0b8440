"""A finished ``vidcam enhance`` run of a clip with ground truth, scored against that truth.

The clip's JSON sidecar regenerates the truth: :mod:`vidcam.testing.synthetic` clips and
:mod:`vidcam.testing.real_footage` clips (its sidecars name their generator). HDR runs are
scored on ``hdr/*.exr`` (PSNR-mu, PSNR-L), deblur runs on ``enhanced.mp4`` (PSNR, SSIM), as a
whole and per frame.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vidcam.io.images import read_exr
from vidcam.io.video import read_video
from vidcam.metrics import align_scale, mu_law, psnr
from vidcam.run import HDR_DIR, SDR_VIDEO, read_report
from vidcam.testing import real_footage, synthetic
from vidcam.testing.baselines import hdr_scores, sdr_scores


def ground_truth(input_mp4: Path) -> dict[str, Any]:
    """The regenerated truth of a clip; SystemExit when it has no sidecar."""
    sidecar = synthetic.sidecar_paths(input_mp4)[0]
    if not sidecar.is_file():
        raise SystemExit(f"{input_mp4} has no ground-truth sidecar {sidecar}")
    if json.loads(sidecar.read_text()).get("generator") == real_footage.GENERATOR:
        return real_footage.regenerate(sidecar)
    return synthetic.regenerate(sidecar)


def run_prediction(run_dir: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(prediction, matching ground truth, "hdr" | "blur") of a finished run."""
    report = read_report(run_dir)
    if report is None:
        raise SystemExit(f"{run_dir} has no report: the run did not finish")
    truth = ground_truth(Path(report.input))
    if report.mode == "hdr":
        frames = sorted((run_dir / HDR_DIR).glob("*.exr"))
        pred = np.stack([read_exr(f) for f in frames])
        return pred, truth["hdr"][: len(pred)], "hdr"
    pred = read_video(run_dir / SDR_VIDEO).frames
    return pred, truth["sharp"][: len(pred)], "blur"


def score_run(run_dir: Path) -> dict[str, float]:
    pred, gt, kind = run_prediction(run_dir)
    return hdr_scores(pred, gt) if kind == "hdr" else sdr_scores(pred, gt)


def per_frame_scores(pred: np.ndarray, gt: np.ndarray, kind: str) -> dict[str, list[float]]:
    """Per-frame PSNR (blur, on [0, 1] coded values) or PSNR-mu / PSNR-L (hdr). HDR frames share
    the clip's scale alignment and peak, as in the clip-level scores, so frames compare."""
    if kind == "hdr":
        p, g = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
        peak = g.max()
        p = np.clip(p * align_scale(p, g) / peak, 0.0, 1.0)
        g = np.clip(g / peak, 0.0, 1.0)
        return {
            "psnr_mu": [psnr(mu_law(p[i]), mu_law(g[i])) for i in range(len(g))],
            "psnr_l": [psnr(p[i], g[i]) for i in range(len(g))],
        }
    p, g = np.asarray(pred, np.float64) / 255.0, np.asarray(gt, np.float64) / 255.0
    return {"psnr": [psnr(p[i], g[i]) for i in range(len(g))]}
