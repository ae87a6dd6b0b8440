"""Score a finished `vidcam enhance` run of a synthetic clip against its ground truth.

    python tools/score_run.py RUN_DIR [RUN_DIR ...]

The clip's JSON sidecar (written by make_synthetic.py) regenerates the ground truth.
HDR runs are scored on hdr/*.exr (PSNR-mu, PSNR-L), deblur runs on enhanced.mp4 (PSNR, SSIM).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tools"))

from baselines import hdr_scores, sdr_scores  # noqa: E402
from make_synthetic import regenerate, sidecar_paths  # noqa: E402

from vidcam.io.images import read_exr  # noqa: E402
from vidcam.io.video import read_video  # noqa: E402


def ground_truth(input_mp4: Path) -> dict:
    sidecar = sidecar_paths(input_mp4)[0]
    if not sidecar.is_file():
        raise SystemExit(f"{input_mp4} has no ground-truth sidecar {sidecar}")
    return regenerate(sidecar)


def score_run(run_dir: Path) -> dict[str, float]:
    report = json.loads((run_dir / "report.json").read_text())
    truth = ground_truth(Path(report["input"]))
    if report["mode"] == "hdr":
        frames = sorted((run_dir / "hdr").glob("*.exr"))
        pred = np.stack([read_exr(f) for f in frames])
        return hdr_scores(pred, truth["hdr"][: len(pred)])
    pred = read_video(run_dir / "enhanced.mp4").frames
    return sdr_scores(pred, truth["sharp"][: len(pred)])


def main() -> None:
    for run in sys.argv[1:]:
        scores = score_run(Path(run))
        print(run, " ".join(f"{k} {v:.3f}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
