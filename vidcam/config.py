"""One typed configuration for a whole run.

Defaults live in the dataclasses below. A preset YAML from ``configs/`` is merged on top,
then a user's ``--config`` file, then command-line flags and ``--set key.path=value``
overrides. The merged result is saved into the output folder so a run can be repeated.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vidcam.errors import VidcamError


@dataclass
class IOConfig:
    """Which frames of the input are used, at what size."""

    start_frame: int = 0  # first source frame used
    max_frames: int | None = None  # use at most this many frames; None: to the end
    max_side: int | None = None  # longest side after an area resize; None keeps the size
    # Longest side the model is fitted at (flow, training, the guard). Larger frames are fitted
    # downscaled and the result is brought back to the decoded size with the input's own finer
    # detail (vidcam/upscale.py), so memory and time follow the fit size, not the video's. 640
    # matches flow.max_side: above it flow is upsampled, so a bigger fit sees no finer motion.
    # None fits at the decoded size.
    fit_side: int | None = 640


@dataclass
class FlowConfig:
    """Optical flow between frames, computed once before training (vidcam.flow)."""

    backend: Literal["auto", "raft", "dis"] = "auto"  # auto: DIS for HDR clips, else RAFT when its weights can be had, else DIS
    raft_model: Literal["large", "small"] = "large"  # torchvision's raft_large / raft_small
    raft_checkpoint: str | None = None  # also $VIDCAM_RAFT_CHECKPOINT or the torch hub cache
    raft_iters: int = 12  # RAFT's recurrent refinement steps
    max_side: int = 640  # frames are downscaled for flow above this and the flow rescaled
    gaps: list[int] = field(default_factory=lambda: [1])  # frame distances t -> t+k
    consistency_px: float = 1.0  # forward-backward tolerance for a valid correspondence
    batch_size: int = 4  # frame pairs per RAFT call
    exposure_match: bool = True  # HDR: brighten the shorter exposure of a pair before flow


@dataclass
class MotionConfig:
    """Camera motion and the motion-based foreground mask, read off the flow (vidcam.motion)."""

    ransac_px: float = 1.0  # inlier distance for the homography fit (flow-resolution pixels)
    ransac_max_samples: int = 8000  # valid pixels fed to RANSAC per frame (evenly strided)
    min_homography_samples: int = 16  # fewer valid pixels: fit on all pixels (or keep the identity)
    foreground_threshold_px: float = 1.5  # residual motion that counts as "moving unlike the camera" ...
    foreground_relative: float = 0.1  # ... or this fraction of the frame's median flow magnitude, if larger
    foreground_softness: float = 0.5  # the mask ramps from (1-s) to (1+s) times the threshold
    cleanup_fraction: float = 0.02  # morphology / blur size as a fraction of the shorter frame side
    # Chained camera homographies whose projective depth at one frame corner exceeds another's by
    # more than this factor (or reaches zero) are replaced by their affine part (vidcam.motion)
    max_perspective_spread: float = 8.0


@dataclass
class EncodingConfig:
    """Input encoding of a network (vidcam.models.encodings)."""

    kind: Literal["pe", "hashgrid", "densegrid"] = "hashgrid"  # hashgrid: (x,y,t); densegrid: 2-D atlas only
    frequencies: int = 7  # pe: sine/cosine octaves per input
    levels: int = 12  # grids: resolution levels
    features: int = 2  # grids: features per level
    log2_table_size: int = 16  # hashgrid: entries per level's hash table, log2
    base_resolution: int = 16  # grids: coarsest level's cells per side
    max_resolution: int = 512  # grids: finest level's cells per side


@dataclass
class NetConfig:
    """An encoding followed by an MLP."""

    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    hidden: int = 64  # units per hidden layer
    layers: int = 2  # hidden layers


@dataclass
class SceneConfig:
    """Layered neural atlases (vidcam.models.scene)."""

    layers: int = 2  # 1 = background only, 2 = foreground + background
    global_motion: bool = True  # per-frame homography, initialised from the flow
    residual_scale: float = 0.25  # bound on the learned residual of each mapping (atlas units)
    atlas_fill: float = 0.8  # fraction of the atlas square the clip covers at start
    atlas_texels_per_pixel: float = 1.5  # caps the atlas grid's resolution at this density
    # (x, y, t) -> residual (u, v) of each layer's mapping
    deformation: NetConfig = field(
        default_factory=lambda: NetConfig(
            EncodingConfig(kind="hashgrid", levels=8, base_resolution=4, max_resolution=64), 64, 2
        )
    )
    # (x, y, t) -> the layers' blending weights
    alpha: NetConfig = field(
        default_factory=lambda: NetConfig(
            EncodingConfig(kind="hashgrid", levels=10, base_resolution=8, max_resolution=256), 64, 2
        )
    )
    # Each layer's atlas changes over time by a learned (u, v, t) -> log-irradiance term
    # (atlas_dynamics_net, penalised by loss.atlas_change): what the layer's mapping cannot carry
    # as motion, such as a person's changing pose or shading. Off by default: on real shake clips it
    # gained 0.2-0.5 dB over static atlases in 210-240 s, but in five of seven such fits one frame
    # ended 0.33-0.99 dB below its input; the guard's render.fidelity_change at 0.5 keeps those
    # frames and leaves 0-0.3 dB of the gain (replayed). A rigid synthetic clip gained 0.5-1 dB less,
    # and in HDR mode a real-motion 1:5 clip lost 2.2 dB PSNR-L (README, Performance).
    atlas_dynamics: bool = False
    # Frames between the change's time vertices: its finest detail in time. Shared by neighbouring
    # frames, the change cannot explain one blurred frame alone through its blur (at 1100 steps on a
    # real shake clip: every frame +2.18 dB with a frame 0.79 dB below its input, every 4 +2.41,
    # every 8 +2.21).
    atlas_dynamics_frame_step: int = 4
    # Fraction of training (steps or time budget) fitted with static atlases before the change
    # joins: the mapping and atlases settle first, and the cheaper static steps come first. On the
    # held-back real shake clip in 150 s (2026-11-25): 1240 steps and +1.75 dB against the static
    # model's 1291 steps and +1.45 (with 8 grid levels below: 956 steps, +1.58).
    atlas_dynamics_start: float = 0.5
    # The layers whose atlas changes: the foreground alone gave a real shake clip +1.82 dB against
    # +2.13 for all (1100 steps), the trees behind the rider sway too.
    atlas_dynamics_layers: Literal["all", "foreground"] = "all"
    # 4 grid levels from 32 to 256: each (u, v, t) level is looked up at every blur sample of every
    # layer, and 8 levels from 8 took a fast-preset deblur step from 134 to 212 ms.
    atlas_dynamics_net: NetConfig = field(
        default_factory=lambda: NetConfig(
            EncodingConfig(kind="hashgrid", levels=4, base_resolution=32, max_resolution=256), 32, 1
        )
    )
    # (u, v) -> log irradiance, one per layer
    atlas: NetConfig = field(
        default_factory=lambda: NetConfig(
            EncodingConfig(kind="densegrid", levels=8, features=4, base_resolution=16, max_resolution=1024),
            64,
            2,
        )
    )


@dataclass
class CameraConfig:
    """The implicit camera: tone mapper, exposures, blur generator (vidcam.models.camera)."""

    tone_hidden: int = 128  # units per hidden layer of each channel's tone MLP
    tone_layers: int = 2  # hidden layers of each channel's tone MLP
    tone_prefit_steps: int = 300  # fit the tone mapper to a sigmoid-gamma prior first
    learn_exposure: bool | None = None  # None: learn unless exposures were given
    exposure_bound_ev: float = 3.0  # learned exposures stay within this many EV of their guess
    blur: bool | None = None  # None: on in deblur mode, off in HDR mode
    # path: n*n samples along a camera path | patch: n x n free offsets + softmax weights (the paper's)
    blur_model: Literal["path", "patch"] = "path"
    blur_kernel: int = 3  # n: n*n samples per pixel
    blur_radius: float = 5.0  # s: samples stay within s pixels of the centre
    # Deblur: a frame as sharp as the sharpest within still_window frames either side, to within
    # still_margin (vidcam.sharpness), keeps a point PSF; still_window 0 frees every frame's PSF.
    # Free, a sharp frame's PSF grew to 1-2 px RMS on real clips: blur hid the misfit of what
    # moved, and the atlas, fitted through it, sharpened past the scene.
    still_window: int = 8
    still_margin: float = 0.2
    blur_spacing: float = 2.0  # patch: pixels between neighbours of the regular n x n grid the offsets start from
    # (x, y, t) -> the blur's spatially varying part
    blur_net: NetConfig = field(
        default_factory=lambda: NetConfig(
            EncodingConfig(kind="hashgrid", levels=4, base_resolution=2, max_resolution=16), 64, 4
        )
    )


@dataclass
class LossConfig:
    """Weights and schedules of the training losses (vidcam.training.losses)."""

    color: float = 1.0  # rendered vs recorded pixel (MSE)
    flow: float = 100.0  # mappings agree with the optical flow
    flow_decay: float = 0.5  # fraction of training over which the flow weight falls to 0
    white_balance: float = 1.0  # tone curve passes through 0.5 at log irradiance 0
    monotonic: float = 100.0  # tone curve increases
    monotonic_samples: int = 256  # points where monotonicity is checked per step
    monotonic_margin: float = 1.0  # ... this far (log units) beyond the data's range
    rigidity: float = 1.0  # mappings stay locally rigid
    rigidity_decay: float = 0.8  # rigidity fades over this fraction of training ...
    rigidity_floor: float = 0.1  # ... to this fraction of its weight
    rigidity_step_px: float = 2.0  # finite-difference step for the mapping's gradient
    alpha_init: float = 1.0  # keep alpha near its motion/user-mask initialisation ...
    alpha_init_decay: float = 0.3  # ... for this fraction of training
    alpha_binary: float = 0.01  # push alpha towards 0 or 1
    atlas_bounds: float = 10.0  # keep atlas coordinates inside their atlas
    atlas_change: float = 0.01  # scene.atlas_dynamics: keep the atlases' change over time small (mean square)


@dataclass
class TrainConfig:
    """The optimisation (vidcam.training.trainer)."""

    steps: int = 6000  # training ends after this many steps or the time budget, whichever is first
    batch_size: int = 16384  # pixels per step
    flow_batch_size: int = 4096  # flow correspondences per step
    reg_batch_size: int = 2048  # pixels per step for the rigidity and bootstrap terms
    lr: float = 2e-3  # Adam learning rate of the MLP weights
    lr_encoding_scale: float = 5.0  # grids learn faster than MLP weights
    lr_schedule: Literal["cosine", "step", "constant"] = "cosine"  # after warm-up
    warmup_steps: int = 100  # linear learning-rate warm-up
    lr_final_fraction: float = 0.05  # cosine: where the learning rate ends, relative to lr
    bootstrap_steps: int = 200  # mappings to identity / global motion, alpha to its init
    # Deblur: pixels are drawn mostly from the sharpest frames at first, so the atlas learns the
    # sharp texture and blurred frames have to be explained by their kernels; the bias fades
    # to uniform sampling over this fraction of training (0 turns it off).
    sharp_first: float = 0.3
    sharp_power: float = 2.0  # frame weight = (sharpness / sharpest nearby) ** power
    sharp_window: int = 5  # "nearby": this many frames either side
    # Save the training state every checkpoint_minutes or every checkpoint_steps, whichever comes
    # first, and once when the main loop starts: a killed run loses at most that much. A save is
    # an atomic torch.save of the model and optimiser (milliseconds for the presets' models).
    checkpoint_minutes: float = 1.0
    checkpoint_steps: int = 500
    time_budget: float | None = None  # seconds of training per fit (tone pre-fit and bootstrap included); None runs all steps
    seed: int = 0  # network initialisation and pixel sampling
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on CUDA
    compile: bool = False  # torch.compile the model
    log_every: int = 25  # steps between loss records


@dataclass
class RenderConfig:
    """Rendering and the output files (vidcam.rendering, vidcam.export)."""

    tonemap: Literal["auto", "aces", "reinhard", "camera"] = "auto"  # auto: aces for HDR, camera for deblur
    key: float = 0.18  # mid-grey for the SDR operator's auto exposure
    chunk: int = 131072  # pixels per model call at render time
    # Fast renderer (vidcam.fast_render): baked atlas textures, coarse mapping residuals, tabulated
    # tone curve; false evaluates every network at every pixel (the exact, ~100x slower path).
    fast: bool = True
    fast_atlas_factor: float = 2.0  # baked atlas texture: vertices per axis / the atlas grid's finest resolution
    fast_atlas_max: int = 4096  # cap on the baked texture's side
    fast_mapping_stride: int = 8  # mapping residuals every this many pixels at most (upsampled), 2 per finest grid cell at least
    fast_alpha_stride: int = 4  # alpha every this many pixels (logits upsampled); cells at an edge: every pixel
    # x264/x265 quality, lower is better. Unset: 4 for output in the input's own look (deblur), whose
    # sharp real frames re-encoded at 16 lost up to 2.7 dB against the truth (at 8: 0.3 dB, at 4:
    # 0.16 dB, 2.2x the input's size); 16 for tone-mapped and other outputs.
    crf: int | None = None
    hdr10_white_nits: float = 203.0  # where linear 1.0 lands (BT.2408 reference white)
    hdr10_peak_nits: float = 1000.0  # mastering display peak written into the HDR10 metadata
    save_frames: bool = False  # PNGs of the enhanced frames
    compare: bool = False  # side-by-side input | output video
    export_atlas: bool = False  # run `vidcam atlas` after the fit
    report_frames: int = 4  # report.html: frames compared input | output (deblur: blurriest and sharpest first)
    report_max_side: int = 960  # report.html: longest side of the compared frames on the page
    # guard: blend each pixel between the model's camera-free render and the input by how well the
    # model re-renders the input through its camera (vidcam/fidelity.py); off: the model's render alone
    fidelity: Literal["guard", "off"] = "guard"
    fidelity_noise: float = 0.01  # RMS re-render residual (pixel values) that counts as noise: sensor, 8 bits, codec
    fidelity_gain: float = 1.5  # the camera-free render's squared error per unit of unexplained re-render residual
    fidelity_window_px: float = 6.0  # Gaussian sigma of the local error energies
    fidelity_lowpass_px: float = 5.0  # residual below this scale (Gaussian sigma) is carried onto the sharp render
    fidelity_detail_px: float = 2.0  # high-pass scale (Gaussian sigma) of the detail a blurred frame lacks
    fidelity_neighbours: int = 5  # ... compared with the most detailed frame this many frames either side
    fidelity_frame_keep: float = 0.8  # keep the input frame whole unless its estimated error falls below this fraction
    # ... and unless one weight for the whole frame, from the frame's mean error energies, would gain with
    # the model's error this correlated with the input's blur error (measured 0.4-0.74 on real clips):
    # the local estimates are right on average but not in where the errors lie. 0.9, not 0.7: fitted
    # longer (240 s), the model re-renders lightly blurred frames better while its sharp render stays
    # misplaced inside the blur, and at 0.7 two frames of each real shake clip lost 1.0-1.4 dB
    fidelity_correlation: float = 0.9
    # deblur: the input's blur error is at most this many times what the PSF changes in the input once
    # more (re-blurring a blurred frame shows only part of its loss: 3-6x less on real clips)
    fidelity_reblur_cap: float = 6.0
    # Deblur with changing atlases (scene.atlas_dynamics): the sharp render's place along its
    # frame's blur path is uncertain by this fraction of the learned PSF's RMS radius, which the
    # re-render cannot show (a shifted render blurred by a shifted path matches the input as well).
    # The error that implies at the render's edges lowers trust there, not the frame rule: renders
    # of 5-px blurs sat 0.25-0.56 px off the truth while re-rendering the input at 37-38 dB, and a
    # real clip's last frame lost 0.4-0.8 dB. Static atlases re-render such a frame worse, which
    # the guard sees; applied to them it cost 0.8 dB on a synthetic clip and helped no frame.
    fidelity_misregistration: float = 0.15
    # With changing atlases: the render's squared error is at least this times the local energy of
    # what the change adds to it (pixel values). The change can re-explain a frame the static atlases
    # misplace, through its blur, so that the re-render matches the input while the sharp render sits
    # off the truth; where the change does the work, the render is least sure. Replayed before the
    # codec on seven 210-240-s fits of real shake clips: at 0.35 two still had a frame 0.25 / 0.34 dB
    # below its input (0.36 / 0.45 after the codec); at 0.5 no frame of any fell below its input, and
    # the clips kept +1.63 to +2.07 dB against +1.71 to +2.32 without the floor (README, Performance).
    fidelity_change: float = 0.5
    # Deblur: the input's blur error is taken to be at least what frame t's learned PSF does to the
    # nearest sharp input frame. The estimate from the model's own render (its sharp minus re-blurred
    # render) holds only what the render resolves: on a real shake clip it was 0.37-0.6 of the truth,
    # the sharp input's 0.5-1.0, and frames the model deblurred by 1.3-1.6 dB were kept whole.
    fidelity_sharp_content: bool = True
    fidelity_sharp_margin: float = 0.15  # deblur: keep whole a frame within this fraction of the nearby sharpest's detail
    fidelity_sharp_ratio_margin: float = 0.12  # ... or of the nearby largest fine-to-coarse detail ratio (fidelity.fine_to_coarse)
    fidelity_black: float = 0.03  # HDR: pixel values below this carry no irradiance (model only) ...
    fidelity_clip: float = 0.97  # ... nor above this (clipped)
    # HDR: a clipped pixel takes the irradiance its flow-linked neighbours recorded well exposed
    # (vidcam.highlights); off: the atlas render's extrapolation
    highlight_fill: bool = True
    highlight_fill_trust: float = 0.2  # neighbour trust (sum of their well-exposed weights) at which they and the atlas count equally
    highlight_headroom_stops: float = 3.0  # HDR irradiance is capped this far above the brightest the shortest exposure records (highlights.irradiance_ceiling)

    def video_crf(self, input_look: bool = False) -> int:
        """``crf``, or its default for an output in the input's own look (``input_look``) or not."""
        if self.crf is not None:
            return self.crf
        return 4 if input_look else 16


@dataclass
class AtlasConfig:
    """What ``vidcam atlas`` exports and how an edited atlas is read back (vidcam.atlas)."""

    foreground_cover: float = 0.5  # a foreground layer covers a pixel where its weight exceeds this
    background_cover: float = 0.02  # the background is seen wherever its weight exceeds this
    coverage_samples: int = 2_000_000  # pixels sampled over the whole clip (a pixel stride keeps to this)
    box_margin: float = 0.03  # of the covered box's side, added on every side
    max_side: int = 2048  # atlas pictures' longest side
    min_side: int = 16  # atlas pictures' shortest side
    checker_squares: int = 12  # mapping video: checker squares across the longer side of the covered box
    contact_frames: int = 4  # contact sheet: frames shown
    contact_tile_width: int = 320  # contact sheet: pixels per tile


@dataclass
class WindowsConfig:
    """Temporal windows (vidcam.windows): a long clip is fitted as overlapping windows, each its own
    model, joined in linear irradiance with one exposure scale and tone curve."""

    frames: int = 100  # frames per window; a clip of at most this many frames is one window (the whole-clip fit)
    overlap: int = 12  # frames neighbouring windows share: blended across, and their exposures aligned on them


@dataclass
class ParallelConfig:
    """Where clips and windows run (vidcam.parallel): in this process, or as Ray tasks."""

    backend: Literal["auto", "ray", "local"] = "auto"  # auto: Ray when installed and there are 2+ tasks
    ray_address: str | None = None  # join this Ray cluster (e.g. "ray://head:10001" or "auto"); None: a local one
    num_cpus: int | None = None  # CPUs of the local Ray started without an address; None: all of this machine's
    cpus_per_task: int = 1  # CPU workers: cores (and torch threads) per clip or window task
    max_retries: int = 2  # a task whose worker dies is run again this many times


@dataclass
class Config:
    """Everything a run needs; ``auto`` values are decided per clip by :func:`vidcam.plan.resolve`."""

    mode: Literal["auto", "hdr", "deblur"] = "auto"  # auto: hdr when brightness alternates
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when available
    # CPU threads for torch; None: OMP_NUM_THREADS if set, else the cores the load average leaves
    # idle (on a busy machine a second thread made steps 5-12x slower, see vidcam/threads.py).
    threads: int | None = None
    exposures: str | None = None  # "1,4" cyclic, one value per frame, or a file of them
    ev: bool = False  # exposures are given in EV (log2) instead of times
    masks: str | None = None  # folder of user foreground masks
    io: IOConfig = field(default_factory=IOConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    atlas: AtlasConfig = field(default_factory=AtlasConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def choices(config_class: type, name: str) -> tuple[str, ...]:
    """The allowed values of a ``Literal`` setting, e.g. ``choices(FlowConfig, "backend")``: the
    one place they are spelled is the type annotation."""
    hint = typing.get_type_hints(config_class)[name]
    if typing.get_origin(hint) is not Literal:
        raise TypeError(f"{config_class.__name__}.{name} is not a Literal setting")
    return typing.get_args(hint)


PRESETS = ("fast", "default", "quality")


def config_dir() -> Path:
    """The folder holding the YAML presets: $VIDCAM_CONFIG_DIR, else the repository's configs/."""
    env = os.environ.get("VIDCAM_CONFIG_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "configs"


def load_config(
    preset: str = "default",
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Defaults <- preset YAML <- user YAML <- overrides (dotted keys)."""
    cfg = Config()
    if preset:
        path = config_dir() / f"{preset}.yaml"
        if not path.is_file():
            raise VidcamError(f"unknown preset '{preset}' (looked for {path})")
        merge_dict(cfg, _read_yaml(path))
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise VidcamError(f"config file not found: {path}")
        merge_dict(cfg, _read_yaml(path))
    for key, value in (overrides or {}).items():
        set_path(cfg, key, value)
    validate_config(cfg)
    return cfg


# Settings that must be a number at or above a minimum (strictly above where ``strict``); None
# passes where the setting allows it. Zero or negative values would otherwise be read as
# "no limit" (time budget), loop forever, or fail deep inside training.
_LIMITS: tuple[tuple[str, float, bool], ...] = (
    ("io.start_frame", 0, False),
    ("io.max_frames", 1, False),
    ("io.max_side", 1, False),
    ("io.fit_side", 1, False),
    ("flow.raft_iters", 1, False),
    ("flow.max_side", 1, False),
    ("flow.batch_size", 1, False),
    ("flow.consistency_px", 0, True),
    ("train.steps", 1, False),
    ("train.batch_size", 1, False),
    ("train.flow_batch_size", 1, False),
    ("train.reg_batch_size", 1, False),
    ("train.lr", 0, True),
    ("train.warmup_steps", 0, False),
    ("train.bootstrap_steps", 0, False),
    ("train.checkpoint_minutes", 0, True),
    ("train.time_budget", 0, True),
    ("train.log_every", 1, False),
    ("camera.tone_prefit_steps", 0, False),
    ("scene.atlas_dynamics_frame_step", 1, False),
    ("scene.atlas_dynamics_start", 0, False),
    ("loss.atlas_change", 0, False),
    ("render.chunk", 1, False),
    ("render.crf", 0, False),
    ("render.fidelity_change", 0, False),
)
# The command-line flag of a setting, named in its error message.
_FLAGS = {
    "io.start_frame": "--start-frame",
    "io.max_frames": "--max-frames",
    "io.max_side": "--max-side",
    "train.steps": "--steps",
    "train.time_budget": "--time-budget",
    "render.crf": "--crf",
}


def validate_config(cfg: Config) -> None:
    """Refuse values that are the right type but out of range, naming the setting and its flag."""
    for dotted, minimum, strict in _LIMITS:
        value: Any = cfg
        for part in dotted.split("."):
            value = getattr(value, part)
        if value is None or (value > minimum if strict else value >= minimum):
            continue
        flag = f" ({_FLAGS[dotted]})" if dotted in _FLAGS else ""
        bound = f"greater than {minimum:g}" if strict else f"at least {minimum:g}"
        hint = "; leave it unset for no limit" if dotted == "train.time_budget" else ""
        raise VidcamError(f"setting '{dotted}'{flag} must be {bound}, got {value!r}{hint}")
    if cfg.scene.atlas_dynamics_start >= 1:
        raise VidcamError(f"setting 'scene.atlas_dynamics_start' must be below 1, got {cfg.scene.atlas_dynamics_start!r}")
    if any(gap < 1 for gap in cfg.flow.gaps):
        raise VidcamError(f"setting 'flow.gaps' must hold frame distances of at least 1, got {cfg.flow.gaps}")


def parse_value(text: str) -> Any:
    """A ``--set`` value as a YAML scalar: ``3``, ``0.5``, ``true``, ``null``, ``[1, 2]``; else the text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def config_from_dict(data: dict[str, Any]) -> Config:
    cfg = Config()
    merge_dict(cfg, data)
    return cfg


def save_config(cfg: Config, path: str | Path) -> None:
    from vidcam.io.atomic import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise VidcamError(f"cannot parse {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise VidcamError(f"{path} must hold a mapping of settings")
    return data


def merge_dict(obj: Any, data: dict[str, Any], prefix: str = "") -> None:
    """Recursively assign ``data`` onto the dataclass ``obj``, checking names and types."""
    hints = typing.get_type_hints(type(obj))
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in hints:
            raise VidcamError(f"unknown setting '{name}'")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise VidcamError(f"setting '{name}' needs a mapping")
            merge_dict(current, value, f"{name}.")
        else:
            setattr(obj, key, _coerce(value, hints[key], name))


def set_path(cfg: Config, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` on ``cfg``, checking the name and coercing the value to the setting's type."""
    *parents, leaf = dotted.split(".")
    obj: Any = cfg
    for part in parents:
        if not hasattr(obj, part) or not dataclasses.is_dataclass(getattr(obj, part)):
            raise VidcamError(f"unknown setting '{dotted}'")
        obj = getattr(obj, part)
    merge_dict(obj, {leaf: value}, dotted[: -len(leaf)])


def _coerce(value: Any, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise VidcamError(f"setting '{name}' must be one of {', '.join(args)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name)
            except VidcamError:
                continue
        raise VidcamError(f"setting '{name}' has an invalid value {value!r}")
    if origin is list:
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value] if not isinstance(value, str) else [v for v in str(value).split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise VidcamError(f"setting '{name}' needs a list")
        return [_coerce(v, args[0], name) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise VidcamError(f"setting '{name}' needs true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise VidcamError(f"setting '{name}' needs a number, got {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise VidcamError(f"setting '{name}' needs a number, got {value!r}") from None
        if hint is int and isinstance(value, float) and number != value:
            raise VidcamError(f"setting '{name}' needs a whole number, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, (dict, list)):
            raise VidcamError(f"setting '{name}' needs text, got {value!r}")
        return str(value)
    return value
