"""PSNR-mu / PSNR-L of a finished HDR run's guarded output with the highlight fill off and on, same model.

    python tools/highlight_table.py RUN

Re-renders the run from its checkpoint (the atlas render, the fidelity guard, then
vidcam.highlights) and scores both against the truth regenerated from the input's sidecar
(clips from tools/make_real_truth.py or tools/make_synthetic.py). Isolates the fill from the
run-to-run variation of training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from vidcam.fast_render import rendered_frames
from vidcam.fidelity import FidelityGuard
from vidcam.flow.estimate import compute_flows
from vidcam.highlights import HighlightFill
from vidcam.io.video import read_video
from vidcam.metrics import psnr_l, psnr_mu
from vidcam.run import CACHE_DIR
from vidcam.testing.scoring import ground_truth
from vidcam.training.checkpoint import model_from_checkpoint
from vidcam.training.data import ClipData
from vidcam.upscale import fit_max_side


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    model, cfg, _ = model_from_checkpoint(args.run / "checkpoint.pt")
    model.eval()
    report = json.loads((args.run / "report.json").read_text())
    if report["mode"] != "hdr":
        raise SystemExit(f"{args.run} is a {report['mode']} run; the highlight fill is for HDR runs")
    clip = read_video(report["input"], cfg.io.start_frame, cfg.io.max_frames, fit_max_side(cfg.io))
    exposures = np.asarray(report["exposures"]["initial"])
    flows = compute_flows(clip.frames_float(), cfg.flow, model.device, exposures, args.run / CACHE_DIR)
    data = ClipData(clip.frames, flows, model.device)
    atlas = list(rendered_frames(model, cfg.render))
    truth = ground_truth(Path(report["input"]))["hdr"][: clip.n_frames]
    fill = HighlightFill(model, clip.frames, data.flows, cfg.render)
    for name, after_guard in (("fill off", lambda t, image: image), ("fill on", fill)):
        guard = FidelityGuard(model, clip.frames, cfg.render)
        output = np.stack([after_guard(t, guard(t, False, sharp_irradiance=atlas[t])) for t in range(clip.n_frames)])
        print(f"{name}: PSNR-mu {psnr_mu(output, truth):.2f}  PSNR-L {psnr_l(output, truth):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
