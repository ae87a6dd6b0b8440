"""Benchmark `vidcam enhance` against the classical baselines, side by side, on clips with ground truth.

    python tools/bench.py CLIP.mp4 [CLIP2.mp4 ...] [--budgets 30,60,120,180] [--preset fast]
        [--out .bench/NAME] [--json results.json] [--no-preset] [--threads N] [--extra-args "..."]
        [--synthetic hdr|blur --seed S --ratio R --frames N --size WxH]
    python tools/bench.py --show results.json     # print the tables of a results file again
    python tools/bench.py --render-speed RUN [--render-frames K]  # fast vs exact render of a finished run

Per clip, one run at a time, each a fresh subprocess (so wall time is end to end and the peak
memory is that run's own: ``ru_maxrss`` from ``os.wait4`` on that child, not RUSAGE_CHILDREN's max):

* the classical baselines: HDR clips -> single-frame gamma 2.2 and the flow-aligned merge
  (given the true exposure times from the sidecar); blur clips -> the blurry input and unsharp mask;
* ``vidcam enhance --time-budget B --set train.steps=1000000`` for each budget B (the budget,
  not the preset's step cap, ends training; it bounds training only, rendering follows);
* ``vidcam enhance`` with the preset as is (its own step count).

Quality is scored against the ground truth regenerated from the clip's JSON sidecar, with
vidcam.testing.scoring's functions (HDR: PSNR-mu and PSNR-L of hdr/*.exr; deblur: PSNR and SSIM of
enhanced.mp4). Clips without a sidecar get times only. ``--synthetic`` first writes a held-back
clip (another seed / exposure ratio than the demos) into the out folder and benchmarks it too.

Prints tables and writes JSON (rewritten after every run, so a killed bench keeps what it
measured). Nothing is asserted about time. On a shared 2-core machine use ``--threads 1``: two
torch processes with 2 OpenMP threads each oversubscribe the cores and steps get many times slower.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidcam.testing.baselines import hdr_scores, sdr_scores
from vidcam.testing.synthetic import (
    make_blur_clip,
    make_hdr_clip,
    sidecar_paths,
    write_clip,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

STAGES = ("decode", "flow", "train", "render", "encode")
UNCAPPED_STEPS = "train.steps=1000000"
CHILD_FLAG = "--baseline-child"  # internal: run one baseline in this (child) process
CUDA_REPORT_KEY = "cuda_max_memory_allocated"  # bytes; report.json has it for runs on CUDA

# Baselines per clip kind: (key used by the child, name in the table). The last one is the
# reference that the time ratio is taken against.
BASELINES: dict[str, tuple[tuple[str, str], ...]] = {
    "hdr": (("single", "single-frame gamma 2.2"), ("merge", "classical merge")),
    "blur": (("input", "blurry input"), ("unsharp", "unsharp mask")),
}
VIDCAM_MODE = {"hdr": "hdr", "blur": "deblur", None: "auto"}
# (column title, quality key, baseline name) for the quality deltas of each kind.
DELTAS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "hdr": (
        ("dPSNR-mu vs merge", "psnr_mu", "classical merge"),
        ("dPSNR-L vs merge", "psnr_l", "classical merge"),
        ("dPSNR-mu vs single", "psnr_mu", "single-frame gamma 2.2"),
    ),
    "blur": (
        ("dPSNR vs input", "psnr", "blurry input"),
        ("dSSIM vs input", "ssim", "blurry input"),
        ("dPSNR vs unsharp", "psnr", "unsharp mask"),
        ("dSSIM vs unsharp", "ssim", "unsharp mask"),
    ),
}
QUALITY_KEYS = {"hdr": ("psnr_mu", "psnr_l"), "blur": ("psnr", "ssim")}


@dataclass
class Row:
    """One measured method on one clip."""

    clip: str
    kind: str | None  # "hdr", "blur", or None without a ground-truth sidecar
    method: str
    budget_s: float | None = None  # vidcam training budget; None: the preset's own steps
    status: str = "ok"
    wall_s: float | None = None  # end to end, the subprocess from start to exit
    stages: dict[str, float] = field(default_factory=dict)  # vidcam: report.json timings
    steps: int | None = None
    samples_per_second: float | None = None
    peak_rss_mib: float | None = None
    cuda_peak_mib: float | None = None
    quality: dict[str, float] = field(default_factory=dict)
    deltas: dict[str, float] = field(default_factory=dict)
    per_frame: dict[str, list[float]] = field(default_factory=dict)  # quality key -> one value per frame
    wall_vs_reference: float | None = None  # wall / the reference baseline's wall
    load_1min: float | None = None  # load average when the run started
    code_hash: str | None = None  # of vidcam/ and configs/ when the run started (others may be editing)
    command: list[str] = field(default_factory=list)
    output: str | None = None


@dataclass
class ChildRun:
    returncode: int
    wall_s: float
    peak_rss_mib: float


# --------------------------------------------------------------------------- subprocesses


def child_env(threads: int | None) -> dict[str, str]:
    """The environment of a run; ``threads`` caps the OpenMP / MKL pools (torch reads them at start)."""
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def run_child(command: list[str], log_path: Path, threads: int | None = None) -> ChildRun:
    """Run ``command`` to completion with its output in ``log_path``; wall time and its own peak RSS."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=child_env(threads))
        # wait4 gives this child's rusage alone (RUSAGE_CHILDREN would be a max over all runs).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(proc.returncode, wall, usage.ru_maxrss / 1024)  # Linux: KiB


def last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").replace("\r", "\n").splitlines()]
    return next((line for line in reversed(lines) if line), "")


def code_hash() -> str:
    """Short hash of the package and presets, so rows run on different code can be told apart."""
    digest = hashlib.sha1()
    for path in sorted([*(REPO_ROOT / "vidcam").rglob("*.py"), *(REPO_ROOT / "configs").glob("*.yaml")]):
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:10]


def git_state() -> dict[str, str]:
    """Commit and uncommitted files (read-only git; no index refresh)."""
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", "--no-optional-locks", *cmd], cwd=REPO_ROOT, capture_output=True, text=True)
        return done.stdout.strip()
    return {"commit": git("rev-parse", "HEAD"), "status": git("status", "--porcelain")}


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- vidcam runs


def vidcam_command(
    clip: Path, run_dir: Path, kind: str | None, budget: float | None, args: argparse.Namespace
) -> list[str]:
    command = [sys.executable, "-m", "vidcam", "enhance", str(clip), "--preset", args.preset,
               "--mode", VIDCAM_MODE[kind], "-o", str(run_dir)]
    if budget is not None:
        command += ["--time-budget", f"{budget:g}", "--set", UNCAPPED_STEPS]
    return command + shlex.split(args.extra_args)


def bench_vidcam(clip: Path, kind: str | None, run_dir: Path, budget: float | None, args: argparse.Namespace) -> Row:
    label = f"budget {budget:g} s" if budget is not None else f"preset {args.preset}"
    row = Row(str(clip), kind, f"vidcam {args.preset}", budget, load_1min=os.getloadavg()[0], code_hash=code_hash())
    row.command = vidcam_command(clip, run_dir, kind, budget, args)
    row.output = str(run_dir)
    progress(f"{clip.name}: vidcam {label} (load {row.load_1min:.2f}) ...")
    log_path = run_dir.with_name(run_dir.name + ".log")
    child = run_child(row.command, log_path, args.threads)
    row.wall_s, row.peak_rss_mib = child.wall_s, child.peak_rss_mib
    if child.returncode != 0:
        row.status = f"failed (exit {child.returncode}): {last_line(log_path)}"
        progress(f"  {row.status}")
        return row
    fill_from_report(row, json.loads((run_dir / "report.json").read_text()))
    if kind is not None:
        from vidcam.testing.scoring import per_frame_scores, run_prediction

        try:
            prediction, gt, scored_kind = run_prediction(run_dir)
            row.quality = hdr_scores(prediction, gt) if scored_kind == "hdr" else sdr_scores(prediction, gt)
            row.per_frame = per_frame_scores(prediction, gt, scored_kind)
        except Exception as exc:  # a broken output is a result to report, not a reason to lose the bench
            row.status = f"scoring failed: {type(exc).__name__}: {exc}"
    progress(f"  done in {row.wall_s:.1f} s, {row.steps} steps, " + quality_text(row.quality))
    return row


def fill_from_report(row: Row, report: dict[str, Any]) -> None:
    row.stages = {name: float(seconds) for name, seconds in report.get("timings", {}).items()}
    row.steps = report.get("steps")
    row.samples_per_second = report.get("samples_per_second")
    if report.get(CUDA_REPORT_KEY) is not None:
        row.cuda_peak_mib = report[CUDA_REPORT_KEY] / 2**20


def quality_text(quality: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.3f}" for k, v in quality.items()) or "(no ground truth)"


# --------------------------------------------------------------------------- baselines


def baseline_prediction(method: str, frames: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    from vidcam.testing.baselines import (
        classical_hdr_merge,
        single_frame_hdr,
        unsharp_mask,
    )

    if method in ("merge", "single"):
        exposures = np.asarray(meta["exposures"], np.float64)
        merge = classical_hdr_merge if method == "merge" else single_frame_hdr
        return merge(frames, exposures)
    if method == "unsharp":
        return unsharp_mask(frames)
    if method == "input":
        return frames
    raise ValueError(f"unknown baseline {method!r}")


def baseline_child(argv: list[str]) -> int:
    """In the child process: decode, run one baseline, save its prediction and timings."""
    from vidcam.io.video import read_video

    method, clip, prediction_path, timings_path = argv
    meta = json.loads(sidecar_paths(clip)[0].read_text())
    start = time.perf_counter()
    frames = read_video(Path(clip)).frames
    decoded = time.perf_counter()
    prediction = baseline_prediction(method, frames, meta)
    done = time.perf_counter()
    np.save(prediction_path, prediction)
    Path(timings_path).write_text(json.dumps({"decode": decoded - start, "compute": done - decoded}))
    return 0


def bench_baseline(clip: Path, kind: str, method: str, name: str, folder: Path, truth: dict[str, Any]) -> Row:
    prediction_path, timings_path = folder / f"{method}.npy", folder / f"{method}_timings.json"
    row = Row(str(clip), kind, name, load_1min=os.getloadavg()[0], output=str(prediction_path))
    row.command = [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, method, str(clip),
                   str(prediction_path), str(timings_path)]
    progress(f"{clip.name}: {name} (load {row.load_1min:.2f}) ...")
    child = run_child(row.command, folder / f"{method}.log")
    row.wall_s, row.peak_rss_mib = child.wall_s, child.peak_rss_mib
    if child.returncode != 0:
        row.status = f"failed (exit {child.returncode}): {last_line(folder / f'{method}.log')}"
        progress(f"  {row.status}")
        return row
    row.stages = json.loads(timings_path.read_text())
    from vidcam.testing.scoring import per_frame_scores

    prediction = np.load(prediction_path)
    gt = truth["hdr" if kind == "hdr" else "sharp"][: len(prediction)]
    row.quality = hdr_scores(prediction, gt) if kind == "hdr" else sdr_scores(prediction, gt)
    row.per_frame = per_frame_scores(prediction, gt, kind)
    progress(f"  done in {row.wall_s:.1f} s, " + quality_text(row.quality))
    return row


# --------------------------------------------------------------------------- comparisons


def add_comparisons(rows: list[Row], kind: str | None) -> None:
    """Quality deltas against each baseline and the wall-time ratio against the reference baseline."""
    if kind is None:
        return
    by_name = {row.method: row for row in rows if row.status == "ok" and row.budget_s is None}
    reference = by_name.get(BASELINES[kind][-1][1])
    for row in rows:
        if row.status != "ok":
            continue
        for title, key, base_name in DELTAS[kind]:
            base = by_name.get(base_name)
            if base is not None and key in row.quality and key in base.quality:
                row.deltas[title] = row.quality[key] - base.quality[key]
        if reference is not None and reference.wall_s:
            row.wall_vs_reference = row.wall_s / reference.wall_s


# --------------------------------------------------------------------------- tables


def fmt(value: float | None, spec: str = ".1f", missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def table(headers: list[str], body: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in body:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def budget_text(row: Row) -> str:
    if row.method.startswith("vidcam"):
        return "preset" if row.budget_s is None else f"{row.budget_s:g} s"
    return "-"


def other_seconds(row: Row) -> float | None:
    """Wall time outside the timed stages: interpreter start, imports, model set-up, plots, scoring I/O."""
    return None if row.wall_s is None or not row.stages else row.wall_s - sum(row.stages.values())


def timing_table(rows: list[Row]) -> str:
    headers = ["method", "budget", "wall s", *STAGES, "compute", "other", "steps", "samples/s",
               "peak RSS MiB", "CUDA peak MiB", "load", "code", "status"]
    body = []
    for r in rows:
        body.append([r.method, budget_text(r), fmt(r.wall_s), *(fmt(r.stages.get(s)) for s in STAGES),
                     fmt(r.stages.get("compute")), fmt(other_seconds(r)), fmt(r.steps, "d"),
                     fmt(r.samples_per_second, ",.0f"), fmt(r.peak_rss_mib, ".0f"),
                     fmt(r.cuda_peak_mib, ".0f", "n/a"), fmt(r.load_1min, ".2f"), (r.code_hash or "-")[:6],
                     short(r.status)])
    return table(headers, body)


def quality_table(rows: list[Row], kind: str) -> str:
    keys = QUALITY_KEYS[kind]
    deltas = [title for title, _, _ in DELTAS[kind]]
    reference = BASELINES[kind][-1][0]
    headers = ["method", "budget", *keys, *deltas, f"wall / {reference}"]
    spec = {"ssim": ".4f"}
    body = []
    for r in rows:
        body.append([r.method, budget_text(r), *(fmt(r.quality.get(k), spec.get(k, ".2f")) for k in keys),
                     *(fmt(r.deltas.get(t), "+.4f" if "SSIM" in t else "+.2f") for t in deltas),
                     fmt(r.wall_vs_reference, ".1f") + ("x" if r.wall_vs_reference is not None else "")])
    return table(headers, body)


def per_frame_table(rows: list[Row], kind: str) -> str:
    """One line per frame, a column per (method, quality key); empty without per-frame scores."""
    scored = [r for r in rows if r.per_frame]
    if not scored:
        return ""
    columns = [(f"{r.method} {'' if r.budget_s is None else f'{r.budget_s:g}s '}{key}", r.per_frame[key])
               for r in scored for key in QUALITY_KEYS[kind] if key in r.per_frame]
    n = max(len(values) for _, values in columns)
    body = [[str(i), *(fmt(values[i], ".2f") if i < len(values) else "-" for _, values in columns)] for i in range(n)]
    return table(["frame", *(title for title, _ in columns)], body)


def clip_report(clip: Path, kind: str | None, rows: list[Row]) -> str:
    title = f"== {clip} ({kind or 'no ground truth'}) =="
    parts = [title, timing_table(rows)]
    if kind is not None:
        parts += ["", quality_table(rows, kind)]
        frames = per_frame_table(rows, kind)
        if frames:
            parts += ["", frames]
    return "\n".join(parts)


# --------------------------------------------------------------------------- clips


def clip_kind(clip: Path) -> str | None:
    sidecar = sidecar_paths(clip)[0]
    return json.loads(sidecar.read_text())["kind"] if sidecar.is_file() else None


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def heldback_path(args: argparse.Namespace, out: Path) -> Path:
    if args.synthetic == "hdr":
        return out / f"heldback_hdr_seed{args.seed}_ratio{args.ratio:g}.mp4"
    return out / f"heldback_blur_seed{args.seed}.mp4"


def make_heldback_clip(args: argparse.Namespace, path: Path) -> None:
    """A synthetic clip with a seed (and exposure ratio) not used by the demos, with its sidecar."""
    width, height = parse_size(args.size)
    common = dict(seed=args.seed, n_frames=args.frames, height=height, width=width)
    if args.synthetic == "hdr":
        result = make_hdr_clip(exposure_ratio=args.ratio, **common)
    else:
        result = make_blur_clip(**common)
    progress(f"writing held-back clip {path}")
    write_clip(result, path)


def parse_budgets(text: str) -> list[float]:
    if text.strip().lower() in ("", "none"):
        return []
    return [float(v) for v in text.split(",") if v.strip()]


def clip_folders(clips: list[Path], out: Path) -> list[Path]:
    """One folder per clip under ``out`` (refusing to reuse one: vidcam will not mix runs)."""
    folders, seen = [], set()
    for clip in clips:
        name, n = clip.stem, 2
        while name in seen:
            name, n = f"{clip.stem}_{n}", n + 1
        seen.add(name)
        folder = out / name
        if folder.exists():
            raise SystemExit(f"bench: {folder} exists already; choose another --out")
        folders.append(folder)
    return folders


# --------------------------------------------------------------------------- main


def loads_text(loads: tuple[float, ...]) -> str:
    return " ".join(f"{x:.2f}" for x in loads)


def bench_clip(clip: Path, folder: Path, args: argparse.Namespace, save: Any) -> list[Row]:
    kind = clip_kind(clip)
    rows: list[Row] = []

    def record(row: Row) -> None:
        rows.append(row)
        add_comparisons(rows, kind)
        save(rows)

    if kind is not None:
        from vidcam.testing.scoring import ground_truth

        truth = ground_truth(clip)
        for method, name in BASELINES[kind]:
            record(bench_baseline(clip, kind, method, name, folder / "baselines", truth))
    budgets: list[float | None] = [*parse_budgets(args.budgets)]
    if not args.no_preset:
        budgets.append(None)
    for budget in budgets:
        run_dir = folder / (f"budget_{budget:g}" if budget is not None else "preset")
        record(bench_vidcam(clip, kind, run_dir, budget, args))
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark vidcam enhance against the classical baselines.")
    p.add_argument("clips", nargs="*", type=Path, help="clips (.mp4, with a make_synthetic.py .json beside for scores)")
    p.add_argument("--budgets", default="30,60,120,180",
                   help="training time budgets in seconds, comma separated, or 'none'")
    p.add_argument("--no-preset", action="store_true", help="skip the row with the preset's own step count")
    p.add_argument("--preset", default="fast", help="vidcam preset (default fast)")
    p.add_argument("--extra-args", default="", help="more vidcam enhance arguments for every run, e.g. '--flow dis'")
    p.add_argument("--threads", type=int, help="OMP/MKL threads of each vidcam run (default: torch's own choice). "
                   "On a shared CPU, 2 threads per process oversubscribe the cores and steps slow down many times")
    p.add_argument("--out", type=Path, help="output folder (default .bench/<date-time>)")
    p.add_argument("--json", type=Path, help="results file (default OUT/results.json)")
    p.add_argument("--synthetic", choices=("hdr", "blur"), help="also generate and benchmark a held-back clip")
    p.add_argument("--seed", type=int, default=11, help="--synthetic: seed")
    p.add_argument("--ratio", type=float, default=8.0, help="--synthetic hdr: long / short exposure ratio")
    p.add_argument("--frames", type=int, default=30, help="--synthetic: frames")
    p.add_argument("--size", default="256x144", help="--synthetic: WxH")
    args = p.parse_args(argv)
    if not args.clips and not args.synthetic:
        p.error("give at least one clip or --synthetic")
    return args


def show_results(json_path: Path) -> int:
    """Print the tables of a results file again (also one a stopped bench left behind)."""
    results = json.loads(json_path.read_text())
    for clip, entry in results["clips"].items():
        rows = [Row(**values) for values in entry["rows"]]
        print(clip_report(Path(clip), entry["kind"], rows) + "\n")
    after = results.get("load_after")
    print(f"load average before {loads_text(results['load_before'])}, after {loads_text(after) if after else '-'}")
    return 0


def render_speed(argv: list[str]) -> int:
    """Fast vs exact render of a finished run: seconds per frame, PSNR of fast vs exact (display-
    referred, per frame), and against the ground truth when the run's input has a sidecar."""
    import itertools

    import torch

    from vidcam.fast_render import (
        FastScene,
        FastSettings,
        camera_frame,
        rendered_frames,
    )
    from vidcam.rendering import srgb_encode, to_uint8, tonemap_aces
    from vidcam.run import open_run
    from vidcam.testing.scoring import ground_truth

    p = argparse.ArgumentParser(prog="bench.py --render-speed")
    p.add_argument("run", type=Path)
    p.add_argument("--render-frames", type=int, default=3, help="frames rendered both ways (the exact render is slow)")
    p.add_argument("--render-size", help="WxH: render the run's model at another frame size (same aspect: the "
                   "same picture, more pixels; no ground truth then)")
    args = p.parse_args(argv)
    run = open_run(args.run, "cpu")
    model, rc = run.model.eval(), run.cfg.render
    if args.render_size:
        from vidcam.models.scene import Frame

        width, height = parse_size(args.render_size)
        model.frame = model.scene.frame = Frame(model.frame.n_frames, height, width)
    camera = run.operator == "camera"
    k = min(args.render_frames, model.frame.n_frames)
    exact_rc = dataclasses.replace(rc, fast=False)
    start = time.perf_counter()
    exact = np.stack(list(itertools.islice(rendered_frames(model, exact_rc, camera), k)))
    exact_s = (time.perf_counter() - start) / k
    model.__dict__.pop("_baked_atlases", None)
    start = time.perf_counter()
    scene = FastScene(model, FastSettings.from_config(rc), rc.chunk)
    bake_s = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        fast = np.stack([camera_frame(scene, t) if camera else scene.frame(t) for t in range(k)])
    fast_s = (time.perf_counter() - start) / k

    def shown(frames: np.ndarray) -> np.ndarray:
        return frames if camera else srgb_encode(tonemap_aces(frames * run.hdr_scale))

    psnrs = [10 * np.log10(1 / max(float(np.mean((a - b) ** 2)), 1e-12)) for a, b in zip(shown(fast), shown(exact))]
    h, w = model.frame.height, model.frame.width
    print(f"run {args.run}: {w}x{h}, {model.frame.n_frames} frames, {torch.get_num_threads()} threads, {k} frames timed")
    print(table(["render", "s/frame", "frames/s", "Mpixel/s"], [
        ["exact", fmt(exact_s, ".3f"), fmt(1 / exact_s, ".3f"), fmt(h * w / exact_s / 1e6, ".3f")],
        [f"fast (+{bake_s:.1f} s bake)", fmt(fast_s, ".3f"), fmt(1 / fast_s, ".2f"), fmt(h * w / fast_s / 1e6, ".2f")],
    ]))
    print(f"PSNR fast vs exact (display-referred) per frame: {' '.join(f'{v:.1f}' for v in psnrs)} dB")
    try:
        truth = ground_truth(Path(run.report.input)) if run.report is not None and not args.render_size else None
    except SystemExit:
        truth = None
    if truth is not None and not camera:
        rows = [[name, quality_text(hdr_scores(f, truth["hdr"][:k]))] for name, f in (("exact", exact), ("fast", fast))]
        print(table(["render", f"vs ground truth ({k} frames)"], rows))
    elif truth is not None:
        rows = [[name, quality_text(sdr_scores(to_uint8(f), truth["sharp"][:k]))] for name, f in (("exact", exact), ("fast", fast))]
        print(table(["render", f"vs ground truth ({k} frames)"], rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--render-speed"]:
        return render_speed(argv[1:])
    if argv[:1] == [CHILD_FLAG]:
        return baseline_child(argv[1:])
    if argv[:1] == ["--show"] and len(argv) == 2:
        return show_results(Path(argv[1]))
    args = parse_args(argv)
    out = args.out or REPO_ROOT / ".bench" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    json_path = args.json or out / "results.json"
    missing = [c for c in args.clips if not c.is_file()]
    if missing:
        raise SystemExit(f"bench: not found: {', '.join(map(str, missing))}")
    clips = [c.resolve() for c in args.clips]
    if args.synthetic:
        clips.append(heldback_path(args, out.resolve()))
    folders = clip_folders(clips, out)
    if args.synthetic:
        make_heldback_clip(args, clips[-1])

    results: dict[str, Any] = {"command": [sys.executable, *sys.argv], "argv": argv, "cpus": os.cpu_count(),
                               "threads": args.threads, "git": git_state(), "load_before": os.getloadavg(), "clips": {}}

    def saver(clip: Path):
        def save(rows: list[Row]) -> None:
            results["clips"][str(clip)] = {"kind": clip_kind(clip), "rows": [dataclasses.asdict(r) for r in rows]}
            json_path.write_text(json.dumps(results, indent=1) + "\n")
        return save

    reports = []
    for clip, folder in zip(clips, folders):
        rows = bench_clip(clip, folder, args, saver(clip))
        reports.append(clip_report(clip, clip_kind(clip), rows))
        print(reports[-1] + "\n", flush=True)
    results["load_after"] = os.getloadavg()
    results["code_hash_after"] = code_hash()
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"load average before {loads_text(results['load_before'])}, after {loads_text(results['load_after'])} "
          f"({os.cpu_count()} CPUs); results in {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
