"""Video decoding with PyAV (any file FFmpeg reads), and decord as an optional fast seeker.

Frames are RGB numpy arrays: ``uint8`` for 8-bit sources, ``uint16`` (full 0..65535 scale)
for deeper ones. Rotation metadata is applied at decode so frames display upright.
Writing video is :mod:`vidcam.io.encode`.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vidcam.errors import VidcamError

BT709_LUMA = (0.2126, 0.7152, 0.0722)  # Kr, Kg, Kb
BT2020_LUMA = (0.2627, 0.6780, 0.0593)
BT601_LUMA = (0.299, 0.587, 0.114)
# Subsampled YCbCr formats decoded_rgb converts itself: the 4:4:4 format FFmpeg upsamples them to,
# bits per sample, full range.
_YCBCR_FORMATS = {
    "yuv420p": ("yuv444p", 8, False),
    "yuv422p": ("yuv444p", 8, False),
    "yuvj420p": ("yuvj444p", 8, True),
    "yuvj422p": ("yuvj444p", 8, True),
    "yuv420p10le": ("yuv444p10le", 10, False),
    "yuv422p10le": ("yuv444p10le", 10, False),
}
# Luma weights by FFmpeg colour-space code; any other code (unspecified: 2) is read as BT.601, as FFmpeg does.
_LUMA_WEIGHTS = {1: BT709_LUMA, 9: BT2020_LUMA, 10: BT2020_LUMA}
_RANGE_JPEG = 2
# Decoders for read_frames: decord (optional extra) seeks to a keyframe, so reading late frames of a
# long clip skips decoding everything before them (12x faster for 50 frames at frame 2900 of a
# 640x360 H.264 clip); PyAV decodes from the start. "auto" takes decord where it is installed, a
# keyframe lets it skip, and it gives PyAV's exact frames: 8-bit sources without rotation (it
# decodes to 8 bits and mangles rotated streams) and not subsampled YCbCr, whose colour
# decoded_rgb converts more accurately than decord's FFmpeg fast path (up to 1.2 levels apart).
READERS = ("auto", "pyav", "decord")
DECORD_BATCH = 16  # frames decoded per decord call: bounds the memory of one batch


@dataclass
class VideoInfo:
    path: Path
    width: int  # displayed size (after rotation)
    height: int
    n_frames: int
    fps: Fraction
    codec: str
    pix_fmt: str
    bit_depth: int
    rotation: int  # degrees clockwise (0, 90, 180, 270) the decoded frames were turned to display upright
    has_audio: bool
    audio_codec: str | None
    duration: float  # seconds
    # frames the container's index lists; 0 where it lists none. An MP4 cut short keeps its
    # full index (faststart puts it first), so more listed than present means truncated.
    declared_frames: int = 0

    @property
    def truncated(self) -> bool:
        return self.declared_frames > self.n_frames


def as_float(frames: np.ndarray) -> np.ndarray:
    """Decoded frames (uint8 or uint16, any shape) as float32 in [0, 1]."""
    return frames.astype(np.float32) / np.float32(np.iinfo(frames.dtype).max)


@dataclass
class Clip:
    frames: np.ndarray  # [N, H, W, 3] RGB, uint8 or uint16
    fps: Fraction
    info: VideoInfo
    frame_indices: np.ndarray  # index of each kept frame in the source

    def frames_float(self) -> np.ndarray:
        """The frames as float32 in [0, 1]."""
        return as_float(self.frames)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


# ----------------------------------------------------------------------------- decoding


def open_input(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise VidcamError(f"file not found: {path}")
    if not path.is_file():
        raise VidcamError(f"not a file: {path}")
    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise VidcamError(f"cannot read {path} as a video: {error_reason(exc)}") from None


def error_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).splitlines()[0] if text else type(exc).__name__


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    """The first video stream that is not embedded cover art."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise VidcamError(f"{path} has no video stream")


def _decoded(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path
) -> Iterator[av.VideoFrame]:
    stream.thread_type = "AUTO"
    try:
        yield from container.decode(stream)
    except av.FFmpegError as exc:
        raise VidcamError(f"cannot decode {path}: {error_reason(exc)}") from None


def _bit_depth(frame: av.VideoFrame) -> int:
    return max(c.bits for c in frame.format.components)


def _frame_rotation(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    """Clockwise degrees (0, 90, 180, 270) to turn the decoded frame for display, as FFmpeg does."""
    try:
        degrees = -float(frame.rotation)  # the display matrix angle is counter-clockwise
    except (TypeError, ValueError):
        degrees = 0.0
    if degrees == 0.0 and "rotate" in stream.metadata:  # legacy tag, clockwise
        try:
            degrees = float(stream.metadata["rotate"])
        except ValueError:
            degrees = 0.0
    return int(round(degrees / 90.0)) % 4 * 90


def _stream_fps(stream: av.video.stream.VideoStream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    raise VidcamError("cannot determine the frame rate")


def _count_packets(path: Path) -> int:
    """Frames in the video stream, counted from its packets without decoding them (container
    headers can be wrong; one packet per frame holds for the usual codecs and containers)."""
    with open_input(path) as container:
        stream = _video_stream(container, path)
        try:
            return sum(1 for packet in container.demux(stream) if packet.size > 0)
        except av.FFmpegError as exc:
            raise VidcamError(f"cannot read {path}: {error_reason(exc)}") from None


def probe(path: str | Path) -> VideoInfo:
    """Describe a video from its first decoded frame and its packet count."""
    path = Path(path)
    with open_input(path) as container:
        stream = _video_stream(container, path)
        first = next(iter(_decoded(container, stream, path)), None)
        if first is None:
            raise VidcamError(f"{path} has no decodable video frames")
        n_frames = _count_packets(path)
        rotation = _frame_rotation(first, stream)
        width, height = (first.height, first.width) if rotation % 180 else (first.width, first.height)
        fps = _stream_fps(stream)
        audio = container.streams.audio[0] if container.streams.audio else None
        if container.duration:
            duration = container.duration / av.time_base
        else:
            duration = float(n_frames / fps)
        # Only MP4/MOV's sample table lists every frame; other indexes (AVI's) count dropped frames too.
        indexed = container.format.name.startswith("mov,")
        return VideoInfo(
            path=path,
            width=width,
            height=height,
            n_frames=n_frames,
            fps=fps,
            codec=stream.codec_context.name,
            pix_fmt=first.format.name,
            bit_depth=_bit_depth(first),
            rotation=rotation,
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            duration=float(duration),
            declared_frames=int(stream.frames or 0) if indexed else 0,
        )


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_rgb(frame: av.VideoFrame, deep: bool, rotation: int, size: tuple[int, int]) -> np.ndarray:
    return _upright(decoded_rgb(frame, deep), rotation, size)


def decoded_rgb(frame: av.VideoFrame, deep: bool) -> np.ndarray:
    """A decoded frame as RGB (uint16 full scale when ``deep``, else uint8), without rotation.

    Subsampled YCbCr (4:2:0, 4:2:2; 8 or 10 bits) has its chroma upsampled by FFmpeg's bicubic
    scaler and the frame's colour matrix applied here in floating point. FFmpeg's direct
    ``yuv420p -> rgb24`` path upsamples chroma by repetition and rounds low: a lossless write and
    read of sharp real frames came back 1.2 levels too dark at 38.1 dB; with this path (and the
    writer's chroma siting, vidcam.io.encode) at 45.9 dB and unbiased. Other formats go through
    FFmpeg's converter.
    """
    layout = _YCBCR_FORMATS.get(frame.format.name)
    if layout is None:
        return frame.to_ndarray(format="rgb48le" if deep else "rgb24")
    target, bits, full = layout
    full = full or int(frame.color_range) == _RANGE_JPEG
    upsampled = frame.reformat(format=target, interpolation="BICUBIC")
    y, cb, cr = (_plane(plane, bits) for plane in upsampled.planes)
    scale, half = float(1 << (bits - 8)), float(1 << (bits - 1))
    if full:
        top_code = float((1 << bits) - 1)
        y, cb, cr = y / top_code, (cb - half) / top_code, (cr - half) / top_code
    else:
        y, cb, cr = (y - 16 * scale) / (219 * scale), (cb - half) / (224 * scale), (cr - half) / (224 * scale)
    kr, _, kb = _LUMA_WEIGHTS.get(int(frame.colorspace), BT601_LUMA)
    red = y + np.float32(2 * (1 - kr)) * cr
    blue = y + np.float32(2 * (1 - kb)) * cb
    green = (y - np.float32(kr) * red - np.float32(kb) * blue) / np.float32(1 - kr - kb)
    peak = 65535.0 if deep else 255.0
    rgb = np.rint(np.clip(np.stack([red, green, blue], axis=-1), 0.0, 1.0) * np.float32(peak))
    return rgb.astype(np.uint16 if deep else np.uint8)


def _plane(plane: av.video.plane.VideoPlane, bits: int) -> np.ndarray:
    dtype = np.uint16 if bits > 8 else np.uint8
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, -1)
    return rows[:, : plane.width].astype(np.float32)


def _upright(rgb: np.ndarray, rotation: int, size: tuple[int, int]) -> np.ndarray:
    if rotation:
        rgb = np.rot90(rgb, k=-rotation // 90)  # np.rot90 turns counter-clockwise
    if (rgb.shape[1], rgb.shape[0]) != size:
        rgb = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)
    return rgb


def read_video(
    path: str | Path, start: int = 0, max_frames: int | None = None, max_side: int | None = None
) -> Clip:
    """Decode frames ``start .. start + max_frames`` as upright RGB, the longer side at most ``max_side``."""
    info = probe(path)
    if start < 0 or start >= info.n_frames:
        raise VidcamError(f"start frame {start} is outside the video ({info.n_frames} frames)")
    if max_frames is not None and max_frames < 1:
        raise VidcamError(f"max_frames must be at least 1, got {max_frames}")
    if max_side is not None and max_side < 1:
        raise VidcamError(f"max_side must be at least 1, got {max_side}")
    count = info.n_frames - start if max_frames is None else min(max_frames, info.n_frames - start)
    size = output_size(info.width, info.height, max_side)
    if start > 0 and _decord_gives_pyav_frames(info):
        seeked = _decord_frames(info, np.arange(start, start + count), size, only_if_it_skips=True)
        if seeked is not None:
            return Clip(seeked, info.fps, info, np.arange(start, start + count))
    deep = info.bit_depth > 8
    frames = np.empty((count, size[1], size[0], 3), np.uint16 if deep else np.uint8)
    kept = 0
    damage: list[str] = []
    for kept, rgb in enumerate(_pyav_stream(info, start, count, size, damage), 1):
        frames[kept - 1] = rgb
    if kept == 0:
        raise VidcamError(f"cannot decode {info.path}: no frame from {start} on is readable{''.join(damage)}")
    _warn_if_truncated(info, start, kept, count, "".join(damage))
    return Clip(frames[:kept], info.fps, info, np.arange(start, start + kept))


def iter_video(path: str | Path, start: int, count: int, max_side: int | None = None) -> Iterator[np.ndarray]:
    """Frames ``start .. start + count`` one at a time (as ``read_video`` gives them): a second pass
    over a clip at another size holds one frame, not the clip."""
    info = probe(path)
    yield from _pyav_stream(info, start, count, output_size(info.width, info.height, max_side), [])


def _pyav_stream(info: VideoInfo, start: int, count: int, size: tuple[int, int], damage: list[str]) -> Iterator[np.ndarray]:
    """Decoded frames from ``start`` on, at most ``count``; a decoding error mid-stream ends them
    (its reason appended to ``damage``)."""
    deep = info.bit_depth > 8
    for frame in _native_stream(info, start, count, damage):
        yield _to_rgb(frame, deep, info.rotation, size)


def _native_stream(info: VideoInfo, start: int, count: int, damage: list[str]) -> Iterator[av.VideoFrame]:
    with open_input(info.path) as container:
        stream = _video_stream(container, info.path)
        stream.thread_type = "AUTO"
        decoded = container.decode(stream)
        index = kept = 0
        while kept < count:
            try:
                frame = next(decoded, None)
            except av.FFmpegError as exc:  # damaged data mid-stream: keep the frames before it
                damage.append(f" ({error_reason(exc)})")
                return
            if frame is None:
                return
            if index >= start:
                yield frame
                kept += 1
            index += 1


def iter_source_frames(path: str | Path, start: int, count: int, size: tuple[int, int]) -> Iterator[av.VideoFrame] | None:
    """Frames ``start .. start + count`` as the decoder gives them (planes, not RGB), for a writer
    that keeps content it did not change as the input coded it (``vidcam.io.encode``); None where
    the decoded frames are not the frames ``read_video`` gives at ``size`` (rotated or resized)."""
    info = probe(path)
    if info.rotation or (info.width, info.height) != tuple(size):
        return None
    return _native_stream(info, start, count, [])


def decord_available() -> bool:
    return importlib.util.find_spec("decord") is not None


def _decord_problem(info: VideoInfo) -> str | None:
    """Why decord cannot give PyAV's frames of this video, or None when it can."""
    if not decord_available():
        return "decord is not installed (pip install 'vidcam[decord]')"
    if info.bit_depth > 8:
        return f"decord decodes to 8 bits and {info.path} has {info.bit_depth}-bit frames"
    if info.rotation:
        return f"decord ignores the rotation of {info.path}"
    return None


def _decord_gives_pyav_frames(info: VideoInfo) -> bool:
    return _decord_problem(info) is None and info.pix_fmt not in _YCBCR_FORMATS


def read_frames(
    path: str | Path, indices: Sequence[int] | np.ndarray, max_side: int | None = None, reader: str = "auto"
) -> np.ndarray:
    """Frames at ``indices`` (any order, repeats allowed) as upright RGB like ``read_video``'s,
    [len(indices), H, W, 3]. ``reader`` is one of ``READERS``."""
    if reader not in READERS:
        raise VidcamError(f"unknown video reader '{reader}' (choose from {', '.join(READERS)})")
    info = probe(path)
    wanted = np.asarray(indices, np.int64).reshape(-1)
    if wanted.size and (wanted.min() < 0 or wanted.max() >= info.n_frames):
        raise VidcamError(f"frame indices must lie in 0..{info.n_frames - 1} for {info.path}")
    if max_side is not None and max_side < 1:
        raise VidcamError(f"max_side must be at least 1, got {max_side}")
    size = output_size(info.width, info.height, max_side)
    if reader == "decord" and (problem := _decord_problem(info)) is not None:
        raise VidcamError(f"cannot read with decord: {problem}")
    if wanted.size and (reader == "decord" or (reader == "auto" and _decord_gives_pyav_frames(info))):
        frames = _decord_frames(info, wanted, size, only_if_it_skips=reader == "auto")
        if frames is not None:
            return frames
        if reader == "decord":
            raise VidcamError(f"cannot read with decord: it counts a different number of frames in {info.path}")
    return _pyav_frames(info, wanted, size)


def _pyav_frames(info: VideoInfo, wanted: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    deep = info.bit_depth > 8
    frames = np.empty((len(wanted), size[1], size[0], 3), np.uint16 if deep else np.uint8)
    if not len(wanted):
        return frames
    slots: dict[int, list[int]] = {}
    for slot, index in enumerate(wanted.tolist()):
        slots.setdefault(index, []).append(slot)
    last = max(slots)
    with open_input(info.path) as container:
        stream = _video_stream(container, info.path)
        for index, frame in enumerate(_decoded(container, stream, info.path)):
            if index in slots:
                frames[slots[index]] = _to_rgb(frame, deep, info.rotation, size)
            if index == last:
                break
    return frames


def _decord_frames(
    info: VideoInfo, wanted: np.ndarray, size: tuple[int, int], only_if_it_skips: bool
) -> np.ndarray | None:
    """The frames decoded by decord; None when decord sees another frame count than ``probe``
    (its index would not match PyAV's) or, with ``only_if_it_skips``, when no keyframe after the
    first lets it skip frames PyAV would decode (decord decodes each frame ~1.7x slower: 1080p
    H.264 with one keyframe, frames 20-27 in 2.2 s against PyAV's 1.3 s)."""
    import decord

    try:
        reader = decord.VideoReader(str(info.path), ctx=decord.cpu(0))
        if len(reader) != info.n_frames:
            return None
        if only_if_it_skips and not any(0 < key <= wanted.max() for key in reader.get_key_indices()):
            return None
        frames = np.empty((len(wanted), size[1], size[0], 3), np.uint8)
        for start in range(0, len(wanted), DECORD_BATCH):
            batch = wanted[start : start + DECORD_BATCH]
            decoded = reader.get_batch(batch.tolist()).asnumpy()
            for slot, rgb in enumerate(decoded, start):
                frames[slot] = _upright(rgb, 0, size)
        return frames
    except decord.DECORDError as exc:
        raise VidcamError(f"cannot decode {info.path} with decord: {error_reason(exc)}") from None


def _warn_if_truncated(info: VideoInfo, start: int, kept: int, wanted: int, damage: str) -> None:
    """One line on stderr when the file ran out (or broke) before the frames it promised."""
    listed = max(info.n_frames, info.declared_frames)
    reached_end = kept < wanted or damage
    if not reached_end and not (info.truncated and start + kept == info.n_frames):
        return
    print(
        f"vidcam: warning: {info.path} is truncated or damaged: {start + kept} of the {listed} frames it lists "
        f"are readable{damage}; using {kept}",
        file=sys.stderr,
        flush=True,
    )


def mean_brightness(frames: np.ndarray) -> np.ndarray:
    """Per-frame mean BT.709 luma of the (gamma-encoded) values, in [0, 1]; shape [N]."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    scale = float(np.iinfo(frames.dtype).max) if np.issubdtype(frames.dtype, np.integer) else 1.0
    weights = np.asarray(BT709_LUMA, np.float64) / scale
    return np.array([float(frame.reshape(-1, 3).mean(axis=0) @ weights) for frame in frames], np.float64)
