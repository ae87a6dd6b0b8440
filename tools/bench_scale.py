"""End-to-end scale benchmark: one `vidcam enhance` run, its plan's estimate beside what it took.

    python tools/bench_scale.py CLIP.mp4 [--out DIR] [--preset fast] [--extra-args "..."] [--json FILE]

Runs ``vidcam enhance CLIP -o OUT --preset P`` as a subprocess (Ray workers included, as a user
runs it) and, every half second, sums the memory of every process of the run: PSS (shared pages
counted once, the memory the run really takes) and RSS (shared libraries counted in every
process, an upper bound). Then prints, per stage, the time the plan printed up front estimated
against the time measured (report.json), the whole run's estimate against its wall time, the
output pass in frames per second, and the peak memory against the plan's. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

PLAN_LINE = re.compile(r"plan for .*?about ([\d.]+) GB of memory; about ([\d.]+) (min|s) on this CPU \((.*)\)")
SAMPLE_SECONDS = 0.5


def _seconds(value: str, unit: str) -> float:
    return float(value) * (60 if unit == "min" else 1)


def parse_plan(stderr: str) -> dict | None:
    """The plan line's estimate: memory (GB), total and per-stage seconds."""
    match = PLAN_LINE.search(stderr)
    if match is None:
        return None
    stages = {}
    for part in match.group(4).split(", "):
        name, value, unit = part.split(" ")
        stages[name] = _seconds(value, unit)
    return {"memory_gb": float(match.group(1)), "seconds": _seconds(match.group(2), match.group(3)), "stages": stages}


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _memory(pid: int) -> tuple[int, int]:
    """(PSS, RSS) bytes of one process; zeros once it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = dict(re.findall(r"^(Pss|Rss):\s+(\d+) kB", text, re.M))
    return int(values.get("Pss", 0)) * 1024, int(values.get("Rss", 0)) * 1024


class TreeMemory(threading.Thread):
    """Samples the summed PSS and RSS of a process and all its descendants (Ray's processes are
    the run's own: started by it, stopped with it), keeping the peaks."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.peak_pss, self.peak_rss, self.done = root, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            pss = rss = 0
            for pid in _descendants(self.root):
                p, r = _memory(pid)
                pss, rss = pss + p, rss + r
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            self.done.wait(SAMPLE_SECONDS)


def measured_stages(report: dict) -> dict[str, float]:
    """Report timings as the plan's stages. Windows' fit stages are summed over the windows
    (task seconds: with several workers their wall share is smaller); join and encode are the
    output pass."""
    timings = report["timings"]
    stages = {
        "prepare": timings.get("decode", 0.0),
        "flow": timings.get("flow", 0.0) + timings.get("windows_flow", 0.0),
        "train": timings.get("train", 0.0) + timings.get("windows_train", 0.0),
        "render": timings.get("windows_render", 0.0),
        "write": timings.get("join", 0.0) + timings.get("encode", 0.0),
    }
    if "windows" not in report or not report["windows"]:
        stages["render"], stages["write"] = 0.0, timings.get("render", 0.0) + timings.get("encode", 0.0)
    return stages


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clip", type=Path)
    p.add_argument("--out", type=Path, help="run folder (default .bench/scale_<clip stem>); must not exist")
    p.add_argument("--preset", default="fast")
    p.add_argument("--extra-args", default="", help="more vidcam enhance arguments")
    p.add_argument("--json", type=Path, help="results file (default OUT.json)")
    args = p.parse_args()
    out = args.out or Path(".bench") / f"scale_{args.clip.stem}"
    command = [sys.executable, "-m", "vidcam", "enhance", str(args.clip), "-o", str(out), "--preset", args.preset]
    command += shlex.split(args.extra_args)
    print("$", shlex.join(command), flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    meter = TreeMemory(process.pid)
    meter.start()
    lines = []
    for line in process.stderr:  # passed through, and kept for the plan line
        sys.stderr.write(line)
        lines.append(line)
    process.wait()
    wall = time.perf_counter() - started
    meter.done.set()
    meter.join()
    if process.returncode != 0:
        raise SystemExit(f"vidcam exited with {process.returncode}")
    plan = parse_plan("".join(lines))
    report = json.loads((out / "report.json").read_text())
    measured = measured_stages(report)
    frames = report["frames"]
    output_pass = measured["write"]
    result = {
        "clip": str(args.clip), "command": command, "frames": frames, "size": report["size"], "wall_s": wall,
        "plan": plan, "measured_stages": measured, "peak_pss_gb": meter.peak_pss / 2**30,
        "peak_rss_gb": meter.peak_rss / 2**30, "output_fps": frames / max(output_pass, 1e-9),
        "windows": report.get("windows"), "steps": report.get("steps"),
    }
    (args.json or out.with_suffix(".json")).write_text(json.dumps(result, indent=2))
    print(f"\n{args.clip.name}: {frames} frames of {report['size'][0]}x{report['size'][1]}, {report.get('steps')} steps")
    print(f"{'stage':8} {'estimated':>10} {'measured':>10}   (fit stages of windows: summed over windows)")
    for stage, seconds in measured.items():
        estimate = plan["stages"].get(stage, float("nan")) if plan else float("nan")
        print(f"{stage:8} {estimate:>9.0f}s {seconds:>9.0f}s")
    if plan:
        error = (plan["seconds"] - wall) / wall
        print(f"{'total':8} {plan['seconds']:>9.0f}s {wall:>9.0f}s   wall, estimate off by {100 * error:+.0f} %")
    print(f"output pass (render/join + encode at {report['size'][0]}x{report['size'][1]}): {result['output_fps']:.2f} frames/s")
    planned = f" (plan: {plan['memory_gb']:.1f} GB)" if plan else ""
    print(f"peak memory of the run's processes: PSS {result['peak_pss_gb']:.2f} GB, RSS {result['peak_rss_gb']:.2f} GB{planned}")
    flicker = (report.get("windows") or {}).get("flicker")
    if flicker:
        print(
            "seam flicker (mean |frame-to-frame change|, 0-255): borders {border:.3f}, elsewhere {elsewhere:.3f}; "
            "mean brightness change: borders {brightness_border:.3f}, elsewhere {brightness_elsewhere:.3f}".format(**flicker)
        )


if __name__ == "__main__":
    main()
