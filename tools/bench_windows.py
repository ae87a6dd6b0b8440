"""Benchmark temporal windows and Ray workers: seam flicker, per-window times, wall time against workers.

    python tools/bench_windows.py [--frames 20] [--size 96x54] [--window 12] [--overlap 4] [--steps 150]
        [--workers 0,1,2] [--out .bench/windows] [--json results.json]

Writes two synthetic HDR clips (seeds 11 and 12) into the out folder, then runs
``vidcam enhance clipA clipB`` once per worker count as a fresh subprocess: 0 is the in-process run
(``parallel.backend=local``), N >= 1 a local Ray with N CPUs (one torch thread per task). Prints wall
time per run, every window's own time (flow + train + render, from report.windows), the seam
flicker of each clip (mean |frame-to-frame change| of enhanced.mp4, 0-255, at window borders and
elsewhere, and for a naive hard cut without exposure alignment), and the scaling model

    T(N workers) ~ T_driver + ceil(W / N) * t_window,

with W windows in all, t_window their mean time and T_driver the rest (decode, planning, Ray
start, joining, encoding), fitted from the 1-worker run. Nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_clips(out: Path, frames: int, size: tuple[int, int]) -> list[Path]:
    from vidcam.testing.synthetic import make_hdr_clip, write_clip

    paths = []
    for seed in (11, 12):
        path = out / f"clip{seed}.mp4"
        if not path.is_file():
            write_clip(make_hdr_clip(seed=seed, n_frames=frames, height=size[1], width=size[0]), path)
        paths.append(path)
    return paths


def run(clips: list[Path], out: Path, workers: int, args: argparse.Namespace) -> dict:
    parallel = ["--set", "parallel.backend=local"] if workers == 0 else [
        "--set", "parallel.backend=ray", "--set", f"parallel.num_cpus={workers}"]
    command = [
        sys.executable, "-m", "vidcam", "enhance", *map(str, clips), "-o", str(out), "--preset", "fast",
        "--steps", str(args.steps), "--set", "train.time_budget=null", "--device", "cpu", "--flow", "dis", "-q", "--set", "threads=1",
        "--set", f"windows.frames={args.window}", "--set", f"windows.overlap={args.overlap}", *parallel,
    ]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    load = os.getloadavg()[0]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=REPO_ROOT)
    wall = time.perf_counter() - started
    reports = [json.loads((out / clip.stem / "report.json").read_text()) for clip in clips]
    window_seconds = [
        sum(task["timings"].values()) for report in reports for task in (report["windows"] or {}).get("tasks", [])
    ]
    return {
        "workers": workers,
        "wall_s": wall,
        "load_before": load,
        "window_s": window_seconds,
        "flicker": {clip.stem: r["windows"]["flicker"] for clip, r in zip(clips, reports) if r["windows"]},
        "flicker_naive": {clip.stem: r["windows"]["flicker_naive"] for clip, r in zip(clips, reports) if r["windows"]},
        "border_gains": {clip.stem: r["windows"]["border_gains"] for clip, r in zip(clips, reports) if r["windows"]},
        "command": " ".join(command),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=20, help="frames per synthetic clip")
    p.add_argument("--size", default="96x54", help="WxH of the synthetic clips")
    p.add_argument("--window", type=int, default=12, help="windows.frames")
    p.add_argument("--overlap", type=int, default=4, help="windows.overlap")
    p.add_argument("--steps", type=int, default=150, help="training steps per window")
    p.add_argument("--workers", default="0,1,2", help="worker counts; 0 is the in-process run")
    p.add_argument("--out", type=Path, default=REPO_ROOT / ".bench" / "windows")
    p.add_argument("--json", type=Path, help="write the results here (default OUT/results.json)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split("x"))
    clips = make_clips(args.out, args.frames, (width, height))
    results = []
    for workers in (int(w) for w in args.workers.split(",")):
        folder = args.out / f"workers{workers}_{time.strftime('%H%M%S')}"
        results.append(run(clips, folder, workers, args))
        r = results[-1]
        print(f"workers {workers}: wall {r['wall_s']:.1f} s (load {r['load_before']:.1f}); windows "
              + ", ".join(f"{s:.1f}" for s in r["window_s"]) + " s", flush=True)
        for clip, f in r["flicker"].items():
            naive = r["flicker_naive"][clip]
            print(f"  {clip}: seam flicker border {f['border']:.3f} elsewhere {f['elsewhere']:.3f} "
                  f"(naive hard cut: border {naive['border']:.3f}); mean brightness change border "
                  f"{f['brightness_border']:.3f} elsewhere {f['brightness_elsewhere']:.3f}"
                  f" (naive {naive['brightness_border']:.3f}); border gains "
                  + ", ".join(f"{g:.3f}" for g in r["border_gains"][clip]))
    one = next((r for r in results if r["workers"] == 1), results[0])
    n_windows = len(one["window_s"])
    t_window = sum(one["window_s"]) / max(n_windows, 1)
    t_driver = one["wall_s"] - n_windows * t_window
    print(f"scaling model: T(N) ~ {t_driver:.1f} s + ceil({n_windows} / N) x {t_window:.1f} s")
    for n in (1, 2, 4, 8):
        print(f"  N={n}: {t_driver + math.ceil(n_windows / n) * t_window:.1f} s predicted", end="")
        measured = [r["wall_s"] for r in results if r["workers"] == n]
        print(f", measured {measured[0]:.1f} s" if measured else "")
    (args.json or args.out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
