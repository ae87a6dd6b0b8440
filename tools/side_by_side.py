"""A picture of a finished run: input frames (left) beside the enhanced frames (right), one row per frame.

    python tools/side_by_side.py RUN [--frames 0,10,20] [--side 480] [-o RUN/side_by_side.png]

Frames default to four spread over the clip. Both videos are decoded as any player would
(``enhanced.mp4``, not the float render), and shown at ``--side`` pixels on the longer side.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vidcam.io.images import write_png
from vidcam.io.video import probe, read_frames
from vidcam.run import SDR_VIDEO, read_report

GAP_PX = 4  # white space between the columns and rows


def side_by_side(run: Path, frames: list[int] | None = None, side: int = 480) -> np.ndarray:
    """uint8 ``[rows * h, 2 * w, 3]``: input | enhanced for each frame of ``frames``."""
    report = read_report(run)
    if report is None:
        raise SystemExit(f"{run} has no report: the run did not finish")
    output = run / SDR_VIDEO
    n = probe(output).n_frames
    frames = frames if frames is not None else sorted({round(i * (n - 1) / 3) for i in range(4)})
    inputs = read_frames(report.input, frames, side)
    enhanced = read_frames(output, frames, side)
    h, w = inputs.shape[1:3]
    rows = []
    for before, after in zip(inputs, enhanced):
        gap = np.full((h, GAP_PX, 3), 255, np.uint8)
        rows.append(np.concatenate([before, gap, after[:h, :w]], axis=1))
        rows.append(np.full((GAP_PX, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--frames", help="comma-separated frame indices")
    p.add_argument("--side", type=int, default=480)
    p.add_argument("-o", "--out", type=Path)
    args = p.parse_args(argv)
    frames = [int(f) for f in args.frames.split(",")] if args.frames else None
    out = args.out or args.run / "side_by_side.png"
    write_png(out, side_by_side(args.run, frames, args.side))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
