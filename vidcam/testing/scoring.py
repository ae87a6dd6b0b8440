"""A finished ``vidcam enhance`` run of a synthetic clip, scored against its ground truth.

The clip's JSON sidecar (written by :mod:`vidcam.testing.synthetic`) regenerates the truth.
HDR runs are scored on ``hdr/*.exr`` (PSNR-mu, PSNR-L), deblur runs on ``enhanced.mp4``
(PSNR, SSIM).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidcam.io.images import read_exr
from vidcam.io.video import read_video
from vidcam.run import HDR_DIR, SDR_VIDEO, read_report
from vidcam.testing.baselines import hdr_scores, sdr_scores
from vidcam.testing.synthetic import regenerate, sidecar_paths


def ground_truth(input_mp4: Path) -> dict[str, Any]:
    """The regenerated truth of a synthetic clip; SystemExit when it has no sidecar."""
    sidecar = sidecar_paths(input_mp4)[0]
    if not sidecar.is_file():
        raise SystemExit(f"{input_mp4} has no ground-truth sidecar {sidecar}")
    return regenerate(sidecar)


def score_run(run_dir: Path) -> dict[str, float]:
    report = read_report(run_dir)
    truth = ground_truth(Path(report.input))
    if report.mode == "hdr":
        frames = sorted((run_dir / HDR_DIR).glob("*.exr"))
        pred = np.stack([read_exr(f) for f in frames])
        return hdr_scores(pred, truth["hdr"][: len(pred)])
    pred = read_video(run_dir / SDR_VIDEO).frames
    return sdr_scores(pred, truth["sharp"][: len(pred)])
