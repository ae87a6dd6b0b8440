"""Per-frame PSNR of a deblur run's model-only and guarded renders, from its checkpoint, against truth.

    python tools/fidelity_table.py RUN_DIR TRUTH.npz [--set render.fidelity_gain=4 ...] [--picture OUT.png]

TRUTH.npz holds ``sharp`` uint8 [N,H,W,3] (tools/make_real_truth.py writes one). Both renders come
from the same trained model (the input is read from the run's report), so the table isolates the
guard. ``--picture`` saves input | model-only | guarded | truth of the worst guarded frame.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from vidcam.config import parse_value, set_path
from vidcam.fidelity import FidelityGuard
from vidcam.io.images import write_png
from vidcam.io.video import read_video
from vidcam.metrics import psnr
from vidcam.rendering import render_frame, through_camera, to_uint8
from vidcam.training.checkpoint import model_from_checkpoint
from vidcam.upscale import fit_max_side


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("truth", type=Path)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--picture", type=Path)
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    model, cfg, _ = model_from_checkpoint(args.run / "checkpoint.pt")
    for item in args.set:
        key, value = item.split("=", 1)
        set_path(cfg, key, parse_value(value))
    report = json.loads((args.run / "report.json").read_text())
    clip = read_video(report["input"], cfg.io.start_frame, cfg.io.max_frames, fit_max_side(cfg.io))
    truth = np.load(args.truth)["sharp"][: clip.n_frames]
    guard = FidelityGuard(model, clip.frames, cfg.render)
    rows, images = [], []
    seconds = [0.0, 0.0]
    for t in range(clip.n_frames):
        start = time.perf_counter()
        model_only = to_uint8(render_frame(model, t, cfg.render.chunk, through_camera(model)))
        seconds[0] += time.perf_counter() - start
        start = time.perf_counter()
        guarded = to_uint8(guard(t, camera=True))
        seconds[1] += time.perf_counter() - start
        scores = [psnr(x.astype(np.float32) / 255, truth[t].astype(np.float32) / 255) for x in (clip.frames[t], model_only, guarded)]
        rows.append(scores)
        images.append((clip.frames[t], model_only, guarded, truth[t]))
    summary = guard.summary()
    print("frame  input  model  guarded  guarded-input  rerender  confidence  expected  guarded-frame")
    for t, (i, m, g) in enumerate(rows):
        print(f"{t:5d}  {i:5.2f}  {m:5.2f}  {g:7.2f}  {g - i:+13.2f}  {summary['rerender_psnr'][t]:8.2f}"
              f"  {summary['confidence'][t]:10.3f}  {summary['expected_gain_db'][t]:+8.2f}  {'yes' if t in summary['guarded_frames'] else ''}")
    arr = np.array(rows)
    mean = [psnr(np.stack([im[k] for im in images]).astype(np.float32) / 255, truth.astype(np.float32) / 255) for k in range(3)]
    print(f"clip   {mean[0]:5.2f}  {mean[1]:5.2f}  {mean[2]:7.2f}  {mean[2] - mean[0]:+13.2f}   (PSNR over all frames)")
    print(f"worst guarded-input {np.min(arr[:, 2] - arr[:, 0]):+.2f} dB at frame {int(np.argmin(arr[:, 2] - arr[:, 0]))};"
          f" best {np.max(arr[:, 2] - arr[:, 0]):+.2f} dB")
    print(f"render seconds: model-only {seconds[0]:.1f}, guarded {seconds[1]:.1f}")
    if args.picture:
        worst = int(np.argmin(arr[:, 2] - arr[:, 0]))
        write_png(args.picture, np.concatenate(images[worst], axis=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
