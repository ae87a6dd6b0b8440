"""Deterministic test clips with ground truth made from REAL frames with real non-rigid motion.

The synthetic generators (vidcam.testing.synthetic) pan a photo under a rigid sprite; real footage has
people and things that deform. These generators take real frames (DAVIS bmx-trees: a rider and a
bike among trees; or frames decoded from bikes.mp4) and make from them:

* ``blur``: hand-held camera shake. Each recorded frame averages sub-frames in LINEAR light
  (sRGB undone, averaged, sRGB re-applied); a sub-frame is the real scene at a time inside the
  exposure (the source frame moved along its DIS optical flow towards the neighbouring source
  frame by that fraction of a frame) seen through the camera's shake pose at that time. A share
  of frames is nearly sharp, like real hand-held clips. Truth: the source frame itself, seen
  through the mid-exposure pose (sRGB, noise-free).
* ``hdr``: alternating exposures (1:ratio, or any cyclic pattern such as 1,4,16). Linear truth is
  the inverse-sRGB source frame with its highlights boosted (so there is range worth
  recovering); every frame averages sub-frames over its own exposure time (long frames carry
  real exposure-time motion blur), clips at 1.0, gets shot + read noise and goes through a
  film-like S-curve that differs slightly per channel, quantised to 8 bits.

Frame geometry and the camera-shake path reuse vidcam.testing.synthetic's helpers, and the clip is
written the same way (H.264 MP4 + JSON sidecar; ``--gt`` also writes the truth as NPZ). The
sidecar has ``"generator": "make_real_truth"`` so ``regenerate`` (and vidcam.testing.scoring) rebuild the
truth from the settings and the source frames. Same settings and source -> byte-identical frames.

CLI: ``python tools/make_real_truth.py blur|hdr OUT.mp4 [--seed S] [--frames N] [--width W]
[--height H] [--ratio R | --pattern 1,4,16] [--source davis|bikes] [--source-path P] [--gt]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidcam.testing import imaging
from vidcam.testing import synthetic as ms

GENERATOR = "make_real_truth"
DATA_ENV = "VIDCAM_SHARED_DATA"  # the folder holding the default sources (tools/ points it at ../shared/data)
SOURCE_NAMES = {"davis": "davis-bmx-trees", "bikes": "bikes.mp4"}


def default_source(name: str) -> Path | None:
    """Where source ``name`` lies under $VIDCAM_SHARED_DATA, None when that is not set."""
    root = os.environ.get(DATA_ENV)
    return Path(root) / SOURCE_NAMES[name] if root else None


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RealBlurSettings:
    seed: int = 0
    n_frames: int = 24
    height: int = 180
    width: int = 320
    fps: int = 24
    source: str = "davis"  # "davis" (a folder with frames/*.jpg) or "bikes" (a video file)
    source_path: str | None = None  # None: the default for ``source`` under $VIDCAM_SHARED_DATA
    start_frame: int = 0
    frame_step: int = 1  # source frames per output frame
    subframes: int = 9  # odd, so the middle sub-frame is the ground truth instant
    # Scene time the longest exposure spans, in output-frame intervals; a frame's exposure
    # lasts as long as its camera sweep (blur length / max_blur_px), like make_synthetic's object.
    shutter_frames: float = 0.5
    # Camera shake: the field names and meaning of make_synthetic.BlurSettings (its path helpers).
    max_blur_px: float = 7.0
    sharp_fraction: float = 0.3
    sharp_blur_px: float = 0.5
    min_blur_frac: float = 0.4
    curve_frac: float = 0.3
    drift_frac: float = 0.03  # the real clip pans already: only a little hand drift on top
    jitter_px: float = 0.8
    rotation_deg: float = 0.5
    blur_rotation_deg: float = 0.4
    path_cycles: tuple[float, float] = (0.3, 1.2)
    canvas_scale: float = 1.06  # source frame size relative to the output (grown to fit the shake)
    shot_noise: float = 1e-4
    read_noise: float = 1.5e-3


@dataclass(frozen=True)
class RealHdrSettings:
    seed: int = 0
    n_frames: int = 24
    height: int = 180
    width: int = 320
    fps: int = 24
    source: str = "davis"
    source_path: str | None = None
    start_frame: int = 0
    frame_step: int = 1
    exposure_ratio: float = 4.0
    pattern: tuple[float, ...] | None = None  # cyclic exposure times; None -> (1, exposure_ratio)
    subframes: int = 7  # odd; sub-frames averaged over every exposure
    shutter_frames: float = 0.5  # the longest exposure spans this many frame intervals; others in proportion
    # Highlight boost: linear values multiplied by up to this factor where the source's (smoothed)
    # luminance ramps through highlight_range, so the sky and bright leaves exceed the display range.
    highlight_boost: float = 4.0
    highlight_range: tuple[float, float] = (0.35, 0.9)
    highlight_blur_px: float = 2.0
    mid_grey_long: float = 0.15  # linear value of the clip's median in the longest exposure
    shot_noise: float = 4e-4
    read_noise: float = 2.5e-3
    crf_n: tuple[float, float, float] = (1.12, 1.08, 1.04)  # make_synthetic.hill_crf per channel
    crf_k: tuple[float, float, float] = (0.19, 0.21, 0.23)


SETTINGS_TYPES: dict[str, type] = {"blur": RealBlurSettings, "hdr": RealHdrSettings}


# --------------------------------------------------------------------------- source frames


def source_path(settings: RealBlurSettings | RealHdrSettings) -> Path:
    if settings.source_path is not None:
        return Path(settings.source_path)
    if settings.source not in SOURCE_NAMES:
        raise ValueError(f"unknown source {settings.source!r}; choose from {sorted(SOURCE_NAMES)}")
    path = default_source(settings.source)
    if path is None:
        raise ValueError(f"no source path for {settings.source!r}: give source_path or set {DATA_ENV}")
    return path


def load_source_frames(settings: RealBlurSettings | RealHdrSettings) -> np.ndarray:
    """The source frames the clip uses, uint8 RGB [M, h, w, 3]: one before the first output frame
    and one after the last (for the flow), clamped to what the source holds."""
    path = source_path(settings)
    if not path.exists():
        raise FileNotFoundError(f"source frames not found: {path}")
    first = max(settings.start_frame - 1, 0)
    last = settings.start_frame + (settings.n_frames - 1) * settings.frame_step + 1
    if path.is_dir():
        files = sorted((path / "frames").glob("*.jpg")) or sorted(path.glob("*.jpg"))
        files = files[first : last + 1]
        frames = np.stack([cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for f in files])
    else:
        from vidcam.io.video import read_video

        frames = read_video(path, start=first, max_frames=last + 1 - first).frames
    needed = settings.start_frame + (settings.n_frames - 1) * settings.frame_step - first + 1
    if len(frames) < needed:
        raise ValueError(f"{path} has too few frames for {settings.n_frames} frames from "
                         f"{settings.start_frame} every {settings.frame_step}")
    return frames


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """sRGB encoding (IEC 61966-2-1) of linear values, clipped to [0, 1]."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


def dis_flow(a_rgb: np.ndarray, b_rgb: np.ndarray) -> np.ndarray:
    """DIS optical flow from a to b [h, w, 2]: a(p) ~ b(p + flow(p))."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(cv2.cvtColor(a_rgb, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b_rgb, cv2.COLOR_RGB2GRAY), None)


class SceneTimeline:
    """The real scene at fractional times around each output frame, on the canvas grid.

    Output frame i shows source frame k_i = start + i * step. The scene at k_i + d (|d| <= 1
    source frame) is source frame k_i moved along its flow towards k_i + sign(d) by |d|:
    J(q) = I(q - |d| flow(q)), the usual backward approximation of a flow-based in-between.
    So d = 0 is the source frame exactly (it is the truth) and motion between frames is real.
    """

    def __init__(self, srgb: np.ndarray, linear: np.ndarray, first_index: int, settings: Any):
        self.linear, self.first_index, self.settings = linear, first_index, settings
        h, w = linear.shape[1:3]
        self.grid_x, self.grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self.flows: dict[tuple[int, int], np.ndarray] = {}
        self.srgb = srgb

    def _flow(self, k: int, j: int) -> np.ndarray:
        if (k, j) not in self.flows:
            self.flows[(k, j)] = dis_flow(self.srgb[k], self.srgb[j])
        return self.flows[(k, j)]

    def local_index(self, i: int) -> int:
        return self.settings.start_frame + i * self.settings.frame_step - self.first_index

    def at(self, i: int, d: float) -> np.ndarray:
        """Linear scene [h, w, 3] at output frame i plus d source frames."""
        k = self.local_index(i)
        if d == 0.0:
            return self.linear[k]
        if abs(d) > 1.0:
            raise ValueError("an exposure may span at most one source frame either side; lower shutter_frames")
        j = k + (1 if d > 0 else -1)
        if not 0 <= j < len(self.linear):
            j = k - (1 if d > 0 else -1)  # at the source's ends, mirror the motion of the other side
        flow = self._flow(k, j)
        return cv2.remap(self.linear[k], self.grid_x - abs(d) * flow[..., 0], self.grid_y - abs(d) * flow[..., 1],
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _timeline(settings: Any, canvas_hw: tuple[int, int], boost: Any = None) -> SceneTimeline:
    frames = load_source_frames(settings)
    first = max(settings.start_frame - 1, 0)
    srgb = np.stack([ms.cover_resize(f.astype(np.float32) / 255.0, *canvas_hw) for f in frames])
    srgb8 = ms.quantise_8bit(srgb)
    linear = imaging.srgb_to_linear(np.clip(srgb, 0.0, 1.0)).astype(np.float32)
    if boost is not None:
        linear = np.stack([boost(frame) for frame in linear])
    return SceneTimeline(srgb8, linear, first, settings)


def _sub_times(subframes: int) -> np.ndarray:
    if subframes < 1 or subframes % 2 == 0:
        raise ValueError("subframes must be a positive odd number")
    return np.linspace(-0.5, 0.5, subframes)


# --------------------------------------------------------------------------- blur clip


def render_real_blur(s: RealBlurSettings) -> dict[str, Any]:
    """Render the camera-shake clip described by ``s``."""
    taus = _sub_times(s.subframes)
    rng = np.random.default_rng(s.seed)
    lengths = ms.blur_lengths(rng, s)
    poses = ms.shake_poses(rng, s, lengths)
    hw = (s.height, s.width)
    canvas_hw = ms.canvas_shape(hw, [p for subs in poses for p in subs], s.canvas_scale)
    scene = _timeline(s, canvas_hw)
    frames = np.empty((s.n_frames, *hw, 3), np.uint8)
    sharp_linear = np.empty((s.n_frames, *hw, 3), np.float32)
    mid = s.subframes // 2
    for i in range(s.n_frames):
        shutter = s.shutter_frames * s.frame_step * max(lengths[i] / s.max_blur_px, 1.0 / s.subframes)
        acc = np.zeros((*hw, 3), np.float64)
        for j, pose in enumerate(poses[i]):
            sub = ms.warp_view(scene.at(i, float(taus[j] * shutter)), ms.view_matrix(hw, canvas_hw, pose), hw)
            acc += sub
            if j == mid:
                sharp_linear[i] = np.clip(sub, 0.0, 1.0)
        blurred = ms.add_sensor_noise(rng, acc / s.subframes, s.shot_noise, s.read_noise)
        frames[i] = ms.quantise_8bit(srgb_encode(blurred))
    return {
        "kind": "blur",
        "generator": GENERATOR,
        "frames": frames,
        "sharp": ms.quantise_8bit(srgb_encode(sharp_linear.astype(np.float64))),
        "sharp_linear": sharp_linear,
        "blur_px": lengths,
        "crf": {"type": "srgb"},
        "fps": Fraction(s.fps),
        "settings": s,
    }


# --------------------------------------------------------------------------- HDR clip


def highlight_boost(s: RealHdrSettings):
    """A function boosting one linear frame's highlights (a smooth luminance ramp, so edges stay soft)."""
    lo, hi = s.highlight_range

    def boost(linear: np.ndarray) -> np.ndarray:
        luminance = linear @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        if s.highlight_blur_px > 0:
            luminance = cv2.GaussianBlur(luminance, (0, 0), s.highlight_blur_px)
        ramp = np.clip((luminance - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
        ramp = ramp * ramp * (3 - 2 * ramp)
        return (linear * (1.0 + (s.highlight_boost - 1.0) * ramp)[..., None]).astype(np.float32)

    return boost


def render_real_hdr(s: RealHdrSettings) -> dict[str, Any]:
    """Render the alternating-exposure clip described by ``s``."""
    taus = _sub_times(s.subframes)
    rng = np.random.default_rng(s.seed)
    hw = (s.height, s.width)
    scene = _timeline(s, hw, highlight_boost(s))
    exposures = ms.exposure_times(s)
    truth = np.stack([scene.at(i, 0.0) for i in range(s.n_frames)])
    scale = s.mid_grey_long / (float(np.median(truth)) * exposures.max())
    frames = np.empty((s.n_frames, *hw, 3), np.uint8)
    for i in range(s.n_frames):
        shutter = s.shutter_frames * s.frame_step * exposures[i] / exposures.max()
        acc = np.zeros((*hw, 3), np.float64)
        for tau in taus:
            acc += scene.at(i, float(tau * shutter))
        exposed = ms.add_sensor_noise(rng, acc / s.subframes * scale * exposures[i], s.shot_noise, s.read_noise)
        frames[i] = ms.quantise_8bit(ms.hill_crf(exposed, s.crf_n, s.crf_k))
    return {
        "kind": "hdr",
        "generator": GENERATOR,
        "frames": frames,
        "hdr": (truth * scale).astype(np.float32),
        "exposures": exposures,
        "crf": {"type": "hill", "formula": "(1 + k^n) x^n / (x^n + k^n)", "n": list(s.crf_n), "k": list(s.crf_k)},
        "fps": Fraction(s.fps),
        "settings": s,
    }


# --------------------------------------------------------------------------- files


def render(settings: RealBlurSettings | RealHdrSettings) -> dict[str, Any]:
    return render_real_hdr(settings) if isinstance(settings, RealHdrSettings) else render_real_blur(settings)


def make_real_blur_clip(seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """Camera-shake clip from real frames: ``frames`` uint8 [N,H,W,3] (recorded), ``sharp`` uint8
    (truth, sRGB), ``sharp_linear``, ``blur_px`` [N], ``crf``, ``fps``, ``settings``."""
    return render_real_blur(RealBlurSettings(seed=seed, **overrides))


def make_real_hdr_clip(seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """Alternating-exposure clip from real frames: ``frames`` uint8 (recorded), ``hdr`` float32
    (linear truth; recorded = crf(clip(blur(hdr) * exposure + noise))), ``exposures`` [N], ``crf``,
    ``fps``, ``settings``."""
    return render_real_hdr(RealHdrSettings(seed=seed, **overrides))


def write_clip(result: dict[str, Any], out_mp4: str | Path, video_crf: int = ms.DEFAULT_VIDEO_CRF,
               gt: bool = False) -> None:
    """The synthetic generators' writer, with this generator named in the sidecar and the source path resolved."""
    source = {"source_path": str(source_path(result["settings"]).resolve())}
    ms.write_clip(result, out_mp4, video_crf, gt, generator=GENERATOR, extra_settings=source)


def regenerate(json_path: str | Path) -> dict[str, Any]:
    """Re-render a clip (recorded frames and truth) from its JSON sidecar."""
    meta = json.loads(Path(json_path).read_text())
    return render(ms.settings_from_dict(SETTINGS_TYPES[meta["kind"]], meta["settings"]))


# --------------------------------------------------------------------------- CLI


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = ms.clip_arguments(__doc__.split("\n\n")[0], sorted(SETTINGS_TYPES), 320, 180)
    p.add_argument("--source", choices=sorted(SOURCE_NAMES), default="davis")
    p.add_argument("--source-path", help=f"frames folder (davis layout) or video; default under ${DATA_ENV}")
    p.add_argument("--start", type=int, default=0, help="first source frame")
    p.add_argument("--step", type=int, default=1, help="source frames per output frame")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    common = dict(seed=args.seed, n_frames=args.frames, height=args.height, width=args.width, fps=args.fps,
                  source=args.source, source_path=args.source_path, start_frame=args.start, frame_step=args.step)
    if args.kind == "hdr":
        pattern = tuple(float(v) for v in args.pattern.split(",")) if args.pattern else None
        result = make_real_hdr_clip(exposure_ratio=args.ratio, pattern=pattern, **common)
    else:
        result = make_real_blur_clip(max_blur_px=args.max_blur, **common)
    write_clip(result, args.out, video_crf=args.video_crf, gt=args.gt)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB) and {ms.sidecar_paths(args.out)[0].name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
