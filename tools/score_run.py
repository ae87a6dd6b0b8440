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
from vidcam.metrics import align_scale, mu_law, psnr  # noqa: E402


def ground_truth(input_mp4: Path) -> dict:
    sidecar = sidecar_paths(input_mp4)[0]
    if not sidecar.is_file():
        raise SystemExit(f"{input_mp4} has no ground-truth sidecar {sidecar}")
    if json.loads(sidecar.read_text()).get("generator") == "make_real_truth":
        from make_real_truth import regenerate as regenerate_real

        return regenerate_real(sidecar)
    return regenerate(sidecar)


def run_prediction(run_dir: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(prediction, matching ground truth, "hdr" | "blur") of a finished run."""
    report = json.loads((run_dir / "report.json").read_text())
    truth = ground_truth(Path(report["input"]))
    if report["mode"] == "hdr":
        frames = sorted((run_dir / "hdr").glob("*.exr"))
        pred = np.stack([read_exr(f) for f in frames])
        return pred, truth["hdr"][: len(pred)], "hdr"
    pred = read_video(run_dir / "enhanced.mp4").frames
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
        return {"psnr_mu": [psnr(mu_law(p[i]), mu_law(g[i])) for i in range(len(g))],
                "psnr_l": [psnr(p[i], g[i]) for i in range(len(g))]}
    p, g = np.asarray(pred, np.float64) / 255.0, np.asarray(gt, np.float64) / 255.0
    return {"psnr": [psnr(p[i], g[i]) for i in range(len(g))]}


def main() -> None:
    for run in sys.argv[1:]:
        scores = score_run(Path(run))
        print(run, " ".join(f"{k} {v:.3f}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
