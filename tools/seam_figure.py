"""Seam flicker along a windowed run, as a picture: per pair of frames of its enhanced.mp4, the
mean per-pixel change and the change of mean brightness (0-255), with the window overlaps marked.

    python tools/seam_figure.py RUN OUT.png

Prints the means at borders and elsewhere (vidcam.windows.border_pairs decides which pairs are
at a border) and the brightness change across each overlap.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vidcam.io.images import write_png
from vidcam.io.video import iter_video
from vidcam.plots import line_plot
from vidcam.windows import Window, border_pairs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("out", type=Path)
    args = p.parse_args()
    report = json.loads((args.run / "report.json").read_text())
    if not report.get("windows"):
        raise SystemExit(f"{args.run} is not a windowed run")
    windows = [Window(w["index"], w["start"], w["end"]) for w in report["windows"]["windows"]]
    change, brightness, previous = [], [], None
    for frame in iter_video(args.run / "enhanced.mp4", 0, report["frames"]):
        current = frame.astype(np.float32)
        if previous is not None:
            change.append(float(np.abs(current - previous).mean()))
            brightness.append(abs(float(current.mean()) - float(previous.mean())))
        previous = current
    change, brightness = np.array(change), np.array(brightness)
    at_border = border_pairs(windows)[: len(change)]
    t = np.arange(len(change)) + 0.5
    series = {
        "mean |change| per pixel": (t, change),
        "mean brightness change": (t, brightness),
        "window overlap": (t, at_border.astype(float)),
    }
    size = "x".join(str(v) for v in report["size"])
    title = f"frame-to-frame change of enhanced.mp4 (0-255), {report['frames']} frames {size}, {len(windows)} windows"
    write_png(args.out, line_plot(series, title, "frame", "change"))
    print(
        f"per pixel: borders {change[at_border].mean():.3f}, elsewhere {change[~at_border].mean():.3f}; "
        f"brightness: borders {brightness[at_border].mean():.3f}, elsewhere {brightness[~at_border].mean():.3f}"
    )
    for left, right in zip(windows, windows[1:]):
        span = slice(right.start - 3, left.end + 3)
        print(f"overlap {right.start}-{left.end - 1}: brightness change", np.round(brightness[span], 2).tolist())


if __name__ == "__main__":
    main()
