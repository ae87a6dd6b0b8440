"""Peak host memory of a short `vidcam enhance` run, per pipeline stage, per pixel of the clip.

Runs a whole enhance (DIS flow, a few training steps, CPU) on a synthetic clip of the given
size in this process, sampling RSS every 10 ms; prints each stage's peak above the RSS before
the run. Two lengths at one fit size give the per-pixel slope behind vidcam.resources'
BYTES_PER_FIT_PIXEL, a large frame size the output pass's OUTPUT_FRAME_BYTES (frames above
io.fit_side are fitted at it and written at their own size):

    OMP_NUM_THREADS=1 python tools/measure_memory.py 10 360 640 hdr
    OMP_NUM_THREADS=1 python tools/measure_memory.py 40 360 640 hdr
    OMP_NUM_THREADS=1 python tools/measure_memory.py 80 1080 1920 hdr

tools/bench_scale.py measures a whole run as a user starts it (Ray's processes included).
"""

from __future__ import annotations

import argparse
import functools
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import vidcam.export
import vidcam.pipeline
from vidcam.cli import main as vidcam_main
from vidcam.io.encode import write_sdr_video

# pipeline functions whose start marks a stage
STAGES = {
    vidcam.pipeline: ("read_video", "compute_flows", "foreground_from_motion", "VidcamModel", "Trainer", "write_run_outputs"),
    vidcam.export: ("measure_display", "FidelityGuard", "write_exr_sequence", "write_hdr10_video", "write_sdr_video"),
}


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()


def synthetic_clip(path: Path, frames: int, height: int, width: int, alternate: bool) -> None:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    images = []
    for t in range(frames):
        base = 128 + 60 * np.sin((xx + 2 * t) / 7.0) * np.cos(yy / 5.0)
        gain = 1.6 if alternate and t % 2 else 1.0
        images.append(np.clip(base[..., None] * gain * np.array([1.0, 0.9, 0.8]), 0, 255).astype(np.uint8))
    write_sdr_video(path, np.stack(images), 24)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames", type=int)
    parser.add_argument("height", type=int)
    parser.add_argument("width", type=int)
    parser.add_argument("mode", choices=("hdr", "deblur"))
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="vidcam_memory_"))
    synthetic_clip(folder / "clip.mp4", args.frames, args.height, args.width, args.mode == "hdr")
    stage, peaks = ["before"], {}

    def sample() -> None:
        while True:
            peaks[stage[0]] = max(peaks.get(stage[0], 0), rss_bytes())
            time.sleep(0.01)

    def marked(name: str, function):
        @functools.wraps(function)
        def wrapped(*a, **k):
            stage[0] = name
            return function(*a, **k)

        return wrapped

    for module, names in STAGES.items():
        for name in names:
            setattr(module, name, marked(name, getattr(module, name)))
    threading.Thread(target=sample, daemon=True).start()
    time.sleep(0.1)
    command = ["enhance", str(folder / "clip.mp4"), "-o", str(folder / "out"), "--mode", args.mode, "--device", "cpu",
               "--flow", "dis", "--steps", "5", "--set", "train.bootstrap_steps=2", "--set", "camera.tone_prefit_steps=2",
               "--set", "train.batch_size=1024"]  # fmt: skip
    if args.mode == "hdr":
        command += ["--exposures", "1,1.6"]
    code = vidcam_main(command)
    time.sleep(0.1)
    shutil.rmtree(folder)
    pixels = args.frames * args.height * args.width
    before = peaks["before"]
    print(f"{args.frames} frames of {args.width}x{args.height} ({args.mode}), exit {code}; peak RSS above the start:")
    for name, peak in peaks.items():
        print(f"  {name:24s} {(peak - before) / 2**20:7.0f} MB  {(peak - before) / pixels:6.1f} bytes/pixel")


if __name__ == "__main__":
    main()
