"""Command line: ``vidcam enhance | info | flow | atlas | edit | render | report``.

Problems with the user's input end the program with one line on stderr and exit code 2;
set VIDCAM_DEBUG=1 to see tracebacks of unexpected errors.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from vidcam.config import (
    PRESETS,
    Config,
    FlowConfig,
    RenderConfig,
    choices,
    load_config,
    parse_value,
)
from vidcam.errors import VidcamError
from vidcam.progress import set_quiet

INFO_MAX_SIDE = 160  # `vidcam info` measures brightness on small frames: fast on long clips
DEVICES = choices(Config, "device")
EXPOSURE_FLAG = "--exposures"
RENDER_NEGATIVE_FLAGS = ("--ev", "--frames")  # render options whose values may start with '-'
RENDER_TONEMAPS = tuple(name for name in choices(RenderConfig, "tonemap") if name != "auto")


def _common_video_args(parser: argparse.ArgumentParser, many: bool = False) -> None:
    if many:
        parser.add_argument("input", type=Path, nargs="+", help="video files, or folders of them")
    else:
        parser.add_argument("input", type=Path, help="video file")
    parser.add_argument("--start-frame", type=int, help="first frame to use")
    parser.add_argument("--max-frames", type=int, help="use at most this many frames")
    parser.add_argument("--max-side", type=int, help="downscale so the longest side is at most this")


def _quiet_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress reports on stderr (errors still print)")


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=PRESETS, default="default", help="settings preset (configs/*.yaml)")
    parser.add_argument("--config", type=Path, help="YAML file of settings merged over the preset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any setting, e.g. train.steps=500")
    parser.add_argument("--device", choices=DEVICES, help="where to compute (default auto)")
    parser.add_argument("--flow", choices=choices(FlowConfig, "backend"), help="optical flow backend (default auto)")
    parser.add_argument("--raft-checkpoint", help="RAFT weights file (torchvision or original format)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidcam", description="Make bad videos good by inverting the camera.")
    sub = parser.add_subparsers(dest="command", required=True)

    enhance = sub.add_parser("enhance", help="fit the model to a clip and render it without the camera's flaws")
    _common_video_args(enhance, many=True)
    _config_args(enhance)
    enhance.add_argument(
        "-o", "--output", type=Path, help="output folder (default: <input stem>_vidcam beside the input; several inputs: OUTPUT/<stem>)"
    )
    enhance.add_argument("--ray-address", help="run clips and windows on this Ray cluster (default: a local Ray, if installed)")
    enhance.add_argument("--mode", choices=choices(Config, "mode"), help="auto picks hdr when brightness alternates")
    enhance.add_argument("--exposures", help="exposure times: a cyclic pattern like 1,4, one per frame, or a file")
    enhance.add_argument("--ev", action="store_true", default=None, help="--exposures are EV (log2) values")
    enhance.add_argument("--learn-exposure", action=argparse.BooleanOptionalAction, help="train per-frame exposures")
    enhance.add_argument("--masks", help="folder of foreground masks, one image per source frame")
    enhance.add_argument("--steps", type=int, help="training steps")
    enhance.add_argument("--time-budget", type=float, help="seconds of training, then render")
    enhance.add_argument("--crf", type=int, help="video quality (x264/x265 CRF, lower is better)")
    enhance.add_argument("--tonemap", choices=choices(RenderConfig, "tonemap"), help="SDR operator")
    enhance.add_argument("--compare", action="store_true", default=None, help="also write compare.mp4: input | output")
    enhance.add_argument("--save-frames", action="store_true", default=None, help="also write frames/*.png")
    enhance.add_argument("--export-atlas", action="store_true", default=None, help="also export the atlases")
    enhance.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    _quiet_arg(enhance)

    info = sub.add_parser("info", help="what a video holds: size, frames, fps, codec, audio, brightness per frame")
    _common_video_args(info)

    flow = sub.add_parser("flow", help="compute optical flow and export colour-coded visualisations")
    _common_video_args(flow)
    _config_args(flow)
    flow.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    flow.add_argument("--exposures", help="exposure pattern, for exposure matching before flow")
    flow.add_argument("--ev", action="store_true", default=None)
    flow.add_argument("--overwrite", action="store_true", help="replace visualisations already in the output folder")
    _quiet_arg(flow)

    atlas = sub.add_parser("atlas", help="export the atlases, alpha mattes and mapping visualisations of a run")
    atlas.add_argument("run", type=Path, help="output folder of an enhance run")
    atlas.add_argument("-o", "--output", type=Path, help="where to write (default RUN/atlas)")
    atlas.add_argument("--device", choices=DEVICES, default="auto")
    atlas.add_argument("--overwrite", action="store_true", help="replace files of those names already in the folder")
    _quiet_arg(atlas)

    edit = sub.add_parser("edit", help="re-render a run with an edited atlas")
    edit.add_argument("run", type=Path, help="output folder of an enhance run")
    edit.add_argument("--layer", type=int, required=True, help="which layer's atlas was edited (0 = background)")
    edit.add_argument("--atlas", type=Path, required=True, help="the edited atlas PNG (RGBA composites over the atlas)")
    edit.add_argument("-o", "--output", type=Path, help="output video (default RUN/edit_layer<K>.mp4)")
    edit.add_argument("--device", choices=DEVICES, default="auto")
    edit.add_argument("--overwrite", action="store_true", help="replace the output video(s) if they exist")
    _quiet_arg(edit)

    report = sub.add_parser("report", help="(re)write a run's report.html")
    report.add_argument("run", type=Path, help="output folder of an enhance run")

    render = sub.add_parser("render", help="re-render a run at another exposure, with its blur, or another tone operator")
    render.add_argument("run", type=Path, help="output folder of an enhance run")
    render.add_argument("--ev", help="stops from the clip's mean exposure: +1.5, or a ramp over the frames like 0:+2")
    render.add_argument("--exposure", help="absolute exposure time in the run's units (report.json exposures.learned)")
    render.add_argument("--with-blur", action="store_true", help="keep the learned blur (deblur runs): reproduces the input")
    render.add_argument("--tonemap", choices=RENDER_TONEMAPS, help="camera (learned response; default with --ev/--exposure/--with-blur), aces, reinhard")
    render.add_argument("--frames", metavar="A:B", help="render only these frames (Python slice)")
    render.add_argument("-o", "--output", type=Path, help="output video (default RUN/render_<what changed>.mp4)")
    render.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    render.add_argument("--device", choices=DEVICES, default="auto")
    _quiet_arg(render)
    return parser


# Flags that map one-to-one onto settings.
FLAG_SETTINGS = {
    "start_frame": "io.start_frame",
    "max_frames": "io.max_frames",
    "max_side": "io.max_side",
    "device": "device",
    "flow": "flow.backend",
    "raft_checkpoint": "flow.raft_checkpoint",
    "mode": "mode",
    "exposures": "exposures",
    "ev": "ev",
    "learn_exposure": "camera.learn_exposure",
    "masks": "masks",
    "steps": "train.steps",
    "time_budget": "train.time_budget",
    "ray_address": "parallel.ray_address",
    "crf": "render.crf",
    "tonemap": "render.tonemap",
    "compare": "render.compare",
    "save_frames": "render.save_frames",
    "export_atlas": "render.export_atlas",
}


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for flag, key in FLAG_SETTINGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise VidcamError(f"--set needs KEY=VALUE, got '{item}'")
        overrides[key.strip()] = parse_value(value)
    return overrides


def run_enhance(args: argparse.Namespace) -> None:
    from vidcam.api import enhance_clips

    for outdir, report in enhance_clips(
        args.input, args.output, preset=args.preset, config=args.config, resume=args.resume, settings=overrides_from_args(args)
    ):
        windows = f", {len(report.windows['windows'])} windows" if report.windows else ""
        print(f"wrote {outdir} ({report.mode}, {report.steps} steps{windows})")


def run_info(args: argparse.Namespace) -> None:
    from vidcam.exposure import estimate_exposures
    from vidcam.io.video import mean_brightness, probe, read_video
    from vidcam.plan import resolve

    _require_file(args.input)
    info = probe(args.input)
    clip = read_video(args.input, args.start_frame or 0, args.max_frames, args.max_side or INFO_MAX_SIDE)
    brightness = mean_brightness(clip.frames)
    audio = f"yes ({info.audio_codec})" if info.has_audio else "no"
    print(f"file:       {info.path}")
    print(f"size:       {info.width}x{info.height}" + (f" (rotated {info.rotation} deg)" if info.rotation else ""))
    whole_file = not args.start_frame and args.max_frames is None
    if whole_file and (clip.n_frames < info.n_frames or info.truncated):
        listed = max(info.n_frames, info.declared_frames)
        print(f"frames:     {clip.n_frames} readable of {listed} listed (the file is truncated or damaged)")
    else:
        print(f"frames:     {info.n_frames}")
    print(f"fps:        {info.fps} ({float(info.fps):.3f})")
    print(f"duration:   {info.duration:.3f} s")
    print(f"codec:      {info.codec} {info.pix_fmt}, {info.bit_depth}-bit")
    print(f"audio:      {audio}")
    if clip.n_frames >= 2:
        frames = clip.frames_float()
        estimate = estimate_exposures(frames)
        if estimate.period > 1:
            pattern = " : ".join(f"{value:.3g}" for value in estimate.pattern)
            print(f"exposure:   alternating, period {estimate.period}, pattern {pattern} (from frame 0), ratio {estimate.ratio:.2f}")
        else:
            print("exposure:   none (brightness does not alternate)")
        print(f"mode:       {resolve(Config(), frames).mode} (what `vidcam enhance` picks on its own)")
    print("brightness: " + " ".join(f"{b:.3f}" for b in brightness))


def run_flow(args: argparse.Namespace) -> None:
    from vidcam.exposure import parse_exposures
    from vidcam.flow.estimate import compute_flows
    from vidcam.flow.visualise import export_flow_visualisation, visualisation_paths
    from vidcam.io.video import probe, read_video
    from vidcam.resources import check_frame_size
    from vidcam.run import CACHE_DIR, pick_device
    from vidcam.runlock import refuse_existing

    _require_file(args.input)
    cfg = load_config(args.preset, args.config, overrides_from_args(args))
    check_frame_size(probe(args.input), cfg)
    refuse_existing([path for gap in cfg.flow.gaps for path in visualisation_paths(args.output, gap)], args.overwrite)
    clip = read_video(args.input, cfg.io.start_frame, cfg.io.max_frames, cfg.io.max_side)
    if clip.n_frames < 2:
        raise VidcamError(f"{args.input} has {clip.n_frames} frame(s); flow needs at least 2")
    exposures = None
    if cfg.exposures:
        import numpy as np

        exposures = np.exp(parse_exposures(cfg.exposures, clip.n_frames, cfg.ev))
    args.output.mkdir(parents=True, exist_ok=True)
    flows = compute_flows(clip.frames_float(), cfg.flow, pick_device(cfg.device), exposures, args.output / CACHE_DIR)
    export_flow_visualisation(flows, args.output, clip.fps)
    print(f"wrote flow visualisations to {args.output}")


def run_atlas(args: argparse.Namespace) -> None:
    from vidcam.atlas import export_atlas
    from vidcam.run import REPORT_NAME

    out = export_atlas(args.run, args.output, args.device, overwrite=args.overwrite)
    print(f"wrote atlases to {out}")
    if args.output is None and (args.run / REPORT_NAME).is_file():
        from vidcam.report_html import write_report_html

        write_report_html(args.run)  # the run's page now shows the atlases


def run_edit(args: argparse.Namespace) -> None:
    from vidcam.atlas import edit_run

    _require_file(args.atlas)
    out = edit_run(args.run, args.layer, args.atlas, args.output, args.device, overwrite=args.overwrite)
    print(f"wrote {out}")


def run_report(args: argparse.Namespace) -> None:
    from vidcam.report_html import write_report_html

    print(f"wrote {write_report_html(args.run)}")


def run_render(args: argparse.Namespace) -> None:
    from vidcam.rerender import render

    out = render(
        args.run,
        args.output,
        ev=args.ev,
        exposure=args.exposure,
        with_blur=args.with_blur,
        tonemap=args.tonemap,
        frames=args.frames,
        overwrite=args.overwrite,
        device=args.device,
    )
    print(f"wrote {out}")


def _require_file(path: Path) -> None:
    if not path.exists():
        raise VidcamError(f"file not found: {path}")
    if not path.is_file():
        raise VidcamError(f"not a file: {path}")


COMMANDS = {
    "enhance": run_enhance,
    "info": run_info,
    "flow": run_flow,
    "atlas": run_atlas,
    "edit": run_edit,
    "render": run_render,
    "report": run_report,
}


def _join_negative_exposures(argv: list[str]) -> list[str]:
    """``--exposures -2,2`` as ``--exposures=-2,2`` (and ``render --ev -1:0`` as ``--ev=-1:0``,
    ``--frames -5:`` as ``--frames=-5:``): argparse takes a value that starts with '-' and is not
    a plain number for an option, so negative EV lists and frame ranges would be refused."""
    render_flags = RENDER_NEGATIVE_FLAGS if argv[:1] == ["render"] else ()
    joined: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            return joined + argv[index:]
        value = argv[index + 1] if index + 1 < len(argv) else ""
        abbreviates = len(arg) >= len("--ex") and EXPOSURE_FLAG.startswith(arg) or arg in render_flags
        if abbreviates and value[:1] == "-" and value[1:2] in set("0123456789."):
            joined.append(f"{arg}={value}")
            index += 2
        else:
            joined.append(arg)
            index += 1
    return joined


SIGTERM_EXIT = 128 + signal.SIGTERM  # the shell's code for a process ended by SIGTERM


class _Termination:
    """SIGTERM (sent by `timeout`, systemd, `docker stop`) handled like Ctrl-C: the trainer saves
    a checkpoint on KeyboardInterrupt. Later SIGTERMs are ignored so that save can finish."""

    def __init__(self) -> None:
        self.received = False
        self.previous: Any = None

    def __enter__(self) -> _Termination:
        with contextlib.suppress(ValueError):  # ValueError: not the main thread, leave signals alone
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.received:
            return
        self.received = True
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_join_negative_exposures(sys.argv[1:] if argv is None else list(argv)))
    set_quiet(getattr(args, "quiet", False))
    with _Termination() as termination:
        return _run_command(args, termination)


def _run_command(args: argparse.Namespace, termination: _Termination) -> int:
    try:
        COMMANDS[args.command](args)
    except VidcamError as exc:
        if termination.received:
            print(f"vidcam: error: SIGTERM: {exc}", file=sys.stderr)
            return SIGTERM_EXIT
        print(f"vidcam: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("vidcam: terminated (SIGTERM)" if termination.received else "vidcam: interrupted", file=sys.stderr)
        return SIGTERM_EXIT if termination.received else 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except Exception as exc:  # an unexpected failure still gets one line unless debugging
        if os.environ.get("VIDCAM_DEBUG"):
            raise
        print(f"vidcam: internal error: {type(exc).__name__}: {exc} (set VIDCAM_DEBUG=1 for details)", file=sys.stderr)
        return 1
    return 0
