"""Still images: OpenEXR for linear HDR, PNG (8/16-bit, RGB or RGBA) for everything else."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import OpenEXR

from vidcam.errors import VidcamError
from vidcam.io.atomic import atomic_path

EXR_COMPRESSION = OpenEXR.PIZ_COMPRESSION  # lossless; 1080p half float: 7.6 frames/s against ZIP's 5.6, the same size
_RGB = ("R", "G", "B")
# Every EXR vidcam writes is linear, scene-referred light in the source video's primaries, taken
# as Rec.709/sRGB; without these attributes VFX tools (Nuke, OCIO) must guess the colour space.
# OpenEXR's `chromaticities`: red, green, blue, white (D65) as CIE 1931 xy.
REC709_CHROMATICITIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
# OpenEXR 3.5's `colorInteropID` naming the same space (OCIO's interop ID); readers that predate
# it see an ordinary string attribute.
REC709_INTEROP_ID = "lin_rec709_scene"


def _check_output(path: Path) -> None:
    if not path.parent.is_dir():
        raise VidcamError(f"output folder does not exist: {path.parent}")


def _check_input(path: Path) -> None:
    if not path.is_file():
        raise VidcamError(f"image not found: {path}")


def write_exr(path: str | Path, rgb: np.ndarray, half: bool = True) -> None:
    """Write linear float [H, W, 3] Rec.709 RGB as a scanline EXR with R, G, B channels (half or
    full float), tagged with Rec.709 primaries and D65 white."""
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"EXR image must be [H, W, 3], got shape {rgb.shape}")
    dtype = np.float16 if half else np.float32
    top = float(np.finfo(dtype).max)  # beyond it a value would be written as inf
    rgb = np.clip(np.nan_to_num(rgb, nan=0.0, posinf=top, neginf=-top), -top, top)
    channels = {name: np.ascontiguousarray(rgb[..., i], dtype=dtype) for i, name in enumerate(_RGB)}
    header = {
        "compression": EXR_COMPRESSION,
        "type": OpenEXR.scanlineimage,
        "chromaticities": REC709_CHROMATICITIES,
        "colorInteropID": REC709_INTEROP_ID,
    }
    _check_output(path)
    with atomic_path(path) as tmp, OpenEXR.File(header, channels) as exr:
        exr.write(str(tmp))


def read_exr(path: str | Path) -> np.ndarray:
    """Read an EXR as float32 [H, W, 3] RGB (a single luminance channel is repeated)."""
    path = Path(path)
    _check_input(path)
    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            channels = {name: channel.pixels for name, channel in exr.channels().items()}
    except Exception as exc:  # OpenEXR raises plain RuntimeError / Exception for bad files
        raise VidcamError(f"cannot read EXR {path}: {str(exc).splitlines()[0]}") from None
    return _rgb_from_channels(channels, path)


def _rgb_from_channels(channels: dict[str, np.ndarray], path: Path) -> np.ndarray:
    # Channel names may carry a layer prefix ("beauty.R"); match on the last component.
    by_suffix = {name.rsplit(".", 1)[-1].upper(): pixels for name, pixels in channels.items()}
    if all(name in by_suffix for name in _RGB):
        planes = [by_suffix[name] for name in _RGB]
    elif "Y" in by_suffix:
        planes = [by_suffix["Y"]] * 3
    else:
        raise VidcamError(f"EXR {path} has no R, G, B (or Y) channels: {sorted(channels)}")
    return np.stack(planes, axis=-1).astype(np.float32)


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write uint8/uint16 [H, W], [H, W, 3] RGB or [H, W, 4] RGBA; float [0, 1] is stored as uint8."""
    path = Path(path)
    image = np.asarray(image)
    if np.issubdtype(image.dtype, np.floating):
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG pixels must be uint8, uint16 or float, got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ValueError(f"PNG image must be [H, W], [H, W, 3] or [H, W, 4], got shape {image.shape}")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    _check_output(path)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise VidcamError(f"cannot write PNG {path}")


def read_png(path: str | Path) -> np.ndarray:
    """Read a PNG as stored: [H, W] grey or [H, W, 3] RGB / [H, W, 4] RGBA, uint8 or uint16."""
    path = Path(path)
    _check_input(path)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise VidcamError(f"cannot read image {path}")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return image
