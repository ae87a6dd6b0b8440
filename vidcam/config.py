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
    start_frame: int = 0
    max_frames: int | None = None
    max_side: int | None = None  # longest side after an area resize; None keeps the size


@dataclass
class FlowConfig:
    backend: Literal["auto", "raft", "dis"] = "auto"
    raft_model: Literal["large", "small"] = "large"
    raft_checkpoint: str | None = None  # also $VIDCAM_RAFT_CHECKPOINT or the torch hub cache
    raft_iters: int = 12
    max_side: int = 640  # frames are downscaled for flow above this and the flow rescaled
    gaps: list[int] = field(default_factory=lambda: [1])  # frame distances t -> t+k
    consistency_px: float = 1.0  # forward-backward tolerance for a valid correspondence
    batch_size: int = 4
    exposure_match: bool = True


@dataclass
class EncodingConfig:
    kind: Literal["pe", "hashgrid", "densegrid"] = "hashgrid"  # hashgrid: (x,y,t); densegrid: 2-D atlas only
    frequencies: int = 7  # pe
    levels: int = 12  # grids
    features: int = 2  # per level
    log2_table_size: int = 16  # hashgrid
    base_resolution: int = 16
    max_resolution: int = 512


@dataclass
class NetConfig:
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    hidden: int = 64
    layers: int = 2


@dataclass
class SceneConfig:
    layers: int = 2  # 1 = background only, 2 = foreground + background
    global_motion: bool = True  # per-frame homography, initialised from the flow
    residual_scale: float = 0.25  # bound on the learned residual of each mapping (atlas units)
    atlas_fill: float = 0.8  # fraction of the atlas square the clip covers at start
    atlas_texels_per_pixel: float = 1.5  # caps the atlas grid's resolution at this density
    deformation: NetConfig = field(
        default_factory=lambda: NetConfig(
            EncodingConfig(kind="hashgrid", levels=8, base_resolution=4, max_resolution=64), 64, 2
        )
    )
    alpha: NetConfig = field(
        default_factory=lambda: NetConfig(
            EncodingConfig(kind="hashgrid", levels=10, base_resolution=8, max_resolution=256), 64, 2
        )
    )
    atlas: NetConfig = field(
        default_factory=lambda: NetConfig(
            EncodingConfig(kind="densegrid", levels=8, features=4, base_resolution=16, max_resolution=1024),
            64,
            2,
        )
    )


@dataclass
class CameraConfig:
    tone_hidden: int = 128
    tone_layers: int = 2
    tone_prefit_steps: int = 300  # fit the tone mapper to a sigmoid-gamma prior first
    learn_exposure: bool | None = None  # None: learn unless exposures were given
    exposure_bound_ev: float = 3.0
    blur: bool | None = None  # None: on in deblur mode, off in HDR mode
    # path: n*n samples along a camera path | patch: n x n free offsets + softmax weights (the paper's)
    blur_model: Literal["path", "patch"] = "path"
    blur_kernel: int = 3  # n: n*n samples per pixel
    blur_radius: float = 5.0  # s: samples stay within s pixels of the centre
    blur_spacing: float = 2.0  # patch: pixels between neighbours of the regular n x n grid the offsets start from
    blur_net: NetConfig = field(
        default_factory=lambda: NetConfig(
            EncodingConfig(kind="hashgrid", levels=4, base_resolution=2, max_resolution=16), 64, 4
        )
    )


@dataclass
class LossConfig:
    color: float = 1.0
    flow: float = 100.0
    flow_decay: float = 0.5  # fraction of training over which the flow weight falls to 0
    white_balance: float = 1.0
    monotonic: float = 100.0
    monotonic_samples: int = 256
    rigidity: float = 1.0
    rigidity_decay: float = 0.8  # rigidity fades to 10% over this fraction of training
    rigidity_step_px: float = 2.0  # finite-difference step for the mapping's gradient
    alpha_init: float = 1.0  # keep alpha near its motion/user-mask initialisation ...
    alpha_init_decay: float = 0.3  # ... for this fraction of training
    alpha_binary: float = 0.01  # push alpha towards 0 or 1
    atlas_bounds: float = 10.0  # keep atlas coordinates inside their atlas


@dataclass
class TrainConfig:
    steps: int = 6000
    batch_size: int = 16384  # pixels per step
    flow_batch_size: int = 4096
    reg_batch_size: int = 2048
    lr: float = 2e-3
    lr_encoding_scale: float = 5.0  # grids learn faster than MLP weights
    lr_schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_steps: int = 100
    lr_final_fraction: float = 0.05
    bootstrap_steps: int = 200  # mappings to identity / global motion, alpha to its init
    # Deblur: pixels are drawn mostly from the sharpest frames at first, so the atlas learns the
    # sharp texture and blurred frames have to be explained by their kernels; the bias fades
    # to uniform sampling over this fraction of training (0 turns it off).
    sharp_first: float = 0.3
    sharp_power: float = 2.0  # frame weight = (sharpness / sharpest nearby) ** power
    sharp_window: int = 5  # "nearby": this many frames either side
    checkpoint_minutes: float = 5.0
    time_budget: float | None = None  # seconds of training; None runs all steps
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on CUDA
    compile: bool = False
    log_every: int = 25


@dataclass
class RenderConfig:
    tonemap: Literal["auto", "aces", "reinhard", "camera"] = "auto"  # auto: aces for HDR, camera for deblur
    key: float = 0.18  # mid-grey for the SDR operator's auto exposure
    chunk: int = 131072  # pixels per model call at render time
    crf: int = 16  # x264/x265 quality; lower is better
    hdr10_white_nits: float = 203.0  # where linear 1.0 lands (BT.2408 reference white)
    hdr10_peak_nits: float = 1000.0
    save_frames: bool = False  # PNGs of the enhanced frames
    compare: bool = False  # side-by-side input | output video
    export_atlas: bool = False
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
    fidelity_black: float = 0.03  # HDR: pixel values below this carry no irradiance (model only) ...
    fidelity_clip: float = 0.97  # ... nor above this (clipped)


@dataclass
class Config:
    mode: Literal["auto", "hdr", "deblur"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    exposures: str | None = None  # "1,4" cyclic, or one value per frame
    ev: bool = False  # exposures are given in EV (log2) instead of times
    masks: str | None = None  # folder of user foreground masks
    io: IOConfig = field(default_factory=IOConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    render: RenderConfig = field(default_factory=RenderConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
    return cfg


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
