"""Video encoding with PyAV: SDR H.264 and HDR10 HEVC (PQ, BT.2020, mastering metadata), audio
carried over from a source file.

Encoders need even sizes for 4:2:0 chroma: frames with an odd width or height are padded
by replicating the last row / column, so a reader gets the padded (even) size back.
HDR10 frames are also padded to at least ``HDR_MIN_SIDE`` on each side (a libx265 bug).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidcam.errors import VidcamError
from vidcam.io.atomic import atomic_path
from vidcam.io.video import BT709_LUMA, BT2020_LUMA, decoded_rgb, error_reason, open_input
from vidcam.log import frame_runs

SDR_CODEC = "libx264"
SDR_PIX_FMT = "yuv420p"
HDR_CODEC = "libx265"
HDR_PIX_FMT = "yuv420p10le"
# FFmpeg tags HEVC in MP4 'hev1' (parameter sets may sit in the stream); Apple's players and
# Safari play only 'hvc1' (parameter sets in the sample entry; x265 still repeats them in-band).
HEVC_MP4_TAG = "hvc1"
PRESET = "medium"
# libx265 (4.x, as bundled with PyAV) corrupts the heap for frames 34-48 px wide or under
# 16 px on a side, so HDR10 frames are padded up to this size.
HDR_MIN_SIDE = 64
# libx265 emits garbage DTS for clips shorter than its B-frame delay (+1); those get no B-frames.
HDR_MIN_FRAMES_FOR_BFRAMES = 3
AUDIO_CODEC = "aac"
# Audio codecs an MP4 can carry as they are; anything else is re-encoded to AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "mp2", "opus", "ac3", "eac3", "alac", "flac"})
# Channel layouts AAC encodes, by channel count; other counts are downmixed to stereo.
_AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 8: "7.1"}

# FFmpeg enum values (AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace / AVColorRange).
_BT709 = 1
_BT2020 = 9
_SMPTE2084 = 16
_BT2020_NCL = 9
_RANGE_TV = 1

# BT.2087: linear BT.709 RGB -> linear BT.2020 RGB.
BT709_TO_BT2020 = np.array(
    [
        [0.627403895934699, 0.329283038377884, 0.043313065687417],
        [0.069097289358232, 0.919540395075459, 0.011362315566309],
        [0.016391438875150, 0.088013307877226, 0.895595253247624],
    ],
    dtype=np.float64,
)
PQ_MAX_NITS = 10000.0
_PQ_M1 = 2610 / 16384
_PQ_M2 = 2523 / 4096 * 128
_PQ_C1 = 3424 / 4096
_PQ_C2 = 2413 / 4096 * 32
_PQ_C3 = 2392 / 4096 * 32
# Mastering display: P3-D65 primaries (x265 units of 0.00002); luminance in 0.0001 nits.
_P3D65_PRIMARIES = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)"
_MASTER_MIN_LUMINANCE = 1  # 0.0001 nits



# ----------------------------------------------------------------------------- encoding


def _as_fps(fps: Fraction | float | int) -> Fraction:
    rate = Fraction(fps).limit_denominator(100_000)
    if rate <= 0:
        raise VidcamError(f"frame rate must be positive, got {fps}")
    return rate


def _padded_size(height: int, width: int, min_side: int) -> tuple[int, int]:
    """Even sides (4:2:0 chroma), at least ``min_side``."""
    return max(height + height % 2, min_side), max(width + width % 2, min_side)


def _pad(image: np.ndarray, min_side: int) -> np.ndarray:
    """Replicate the last row / column up to the encoder's size."""
    height, width = _padded_size(image.shape[0], image.shape[1], min_side)
    if (height, width) == image.shape[:2]:
        return image
    return np.pad(image, ((0, height - image.shape[0]), (0, width - image.shape[1]), (0, 0)), mode="edge")


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        return ((frame.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(frame.dtype, np.floating):
        return (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise ValueError(f"unsupported frame dtype {frame.dtype}")


def _check_frame(frame: np.ndarray, shape: tuple[int, ...] | None) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frames must be [H, W, 3], got shape {frame.shape}")
    if shape is not None and frame.shape != shape:
        raise ValueError(f"frame size changed from {shape} to {frame.shape}")


def _check_output(path: Path) -> None:
    if not path.parent.is_dir():
        raise VidcamError(f"output folder does not exist: {path.parent}")


class _AudioSource:
    """Audio packets from ``audio_from`` for the output: remuxed when MP4 can carry them, else AAC."""

    def __init__(self, source: Path, output: av.container.OutputContainer):
        self.container = open_input(source)
        self.input = self.container.streams.audio[0]
        self.copy = self.input.codec_context.name in MP4_AUDIO_CODECS
        if self.copy:
            self.stream = output.add_stream_from_template(self.input)
        else:
            self.stream = output.add_stream(AUDIO_CODEC, rate=self.input.codec_context.sample_rate)
            channels = self.input.codec_context.layout.nb_channels
            self.stream.layout = _AAC_LAYOUTS.get(channels, "stereo")
        self.end: float | None = None  # seconds; set once the video's duration is known
        self._packets = self._generate()
        self._pending: av.Packet | None = None

    def _generate(self) -> Iterator[av.Packet]:
        for packet in self.container.demux(self.input):
            time = _seconds(packet)
            if time is not None and self.end is not None and time >= self.end:
                break
            if self.copy:
                if packet.dts is None:
                    continue
                packet.stream = self.stream
                yield packet
            else:
                yield from self._encode(packet)
        if not self.copy:
            yield from self.stream.encode(None)

    def _encode(self, packet: av.Packet) -> Iterator[av.Packet]:
        for frame in packet.decode():  # demux ends with an empty packet, which flushes the decoder
            yield from self.stream.encode(frame)

    def until(self, seconds: float) -> Iterator[av.Packet]:
        """Packets that start before ``seconds``."""
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            time = _seconds(packet)
            if time is not None and time >= seconds:
                self._pending = packet
                return
            yield packet

    def finish(self, seconds: float) -> Iterator[av.Packet]:
        """The remaining packets up to the end of the video at ``seconds``."""
        self.end = seconds
        yield from self.until(seconds)

    def close(self) -> None:
        self.container.close()


def _seconds(packet: av.Packet) -> float | None:
    stamp = packet.pts if packet.pts is not None else packet.dts
    return None if stamp is None else float(stamp * packet.time_base)


def _has_audio(path: Path | None) -> bool:
    if path is None:
        return False
    with open_input(Path(path)) as container:
        return bool(container.streams.audio)


@dataclass
class _Encoding:
    codec: str
    pix_fmt: str
    options: dict[str, str]
    colour: tuple[int, int, int, int]  # primaries, transfer, matrix, range
    to_av_frame: Callable[[np.ndarray], av.VideoFrame]  # pads to the size from _padded_size
    min_side: int = 0
    mp4_codec_tag: str | None = None  # sample entry in MP4/MOV files; None keeps FFmpeg's default


def _encode_video(
    path: Path, frames: Iterable[np.ndarray], fps: Fraction, encoding: _Encoding, audio_from: Path | None
) -> None:
    """Encode ``frames`` and optionally mux audio into ``path``, atomically."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise VidcamError(f"no frames to write to {path}")
    _check_output(path)
    shape = np.asarray(first).shape
    with atomic_path(path) as tmp:
        try:
            output = av.open(str(tmp), "w")
        except (av.FFmpegError, ValueError) as exc:  # ValueError: no format for the suffix
            raise VidcamError(f"cannot write video {path}: {error_reason(exc)}") from None
        try:
            with output:
                _mux_all(output, itertools.chain([first], frames), shape, fps, encoding, audio_from)
        except av.FFmpegError as exc:
            raise VidcamError(f"cannot write video {path}: {error_reason(exc)}") from None


def _add_video_stream(
    output: av.container.OutputContainer, shape: tuple[int, ...], fps: Fraction, encoding: _Encoding
) -> av.video.stream.VideoStream:
    stream = output.add_stream(encoding.codec, rate=fps)
    stream.height, stream.width = _padded_size(shape[0], shape[1], encoding.min_side)
    stream.pix_fmt = encoding.pix_fmt
    ctx = stream.codec_context
    ctx.time_base = 1 / fps
    ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = encoding.colour
    if encoding.mp4_codec_tag is not None and _is_mp4_family(output):
        ctx.codec_tag = encoding.mp4_codec_tag
    stream.options = encoding.options
    return stream


def _is_mp4_family(output: av.container.OutputContainer) -> bool:
    """ISO base media files (.mp4, .mov, .m4v): the formats whose sample entries carry a codec tag."""
    return bool({"mp4", "mov", "ipod"} & set(output.format.name.split(",")))


def _mux_all(
    output: av.container.OutputContainer,
    frames: Iterator[np.ndarray],
    shape: tuple[int, ...],
    fps: Fraction,
    encoding: _Encoding,
    audio_from: Path | None,
) -> None:
    stream = _add_video_stream(output, shape, fps, encoding)
    audio = _AudioSource(Path(audio_from), output) if _has_audio(audio_from) else None
    try:
        count = 0
        for frame in frames:
            frame = np.asarray(frame)
            _check_frame(frame, shape)
            av_frame = encoding.to_av_frame(frame)
            av_frame.pts = count
            av_frame.time_base = stream.codec_context.time_base
            output.mux(stream.encode(av_frame))
            count += 1
            if audio is not None:  # interleave: audio up to the end of this frame
                output.mux(list(audio.until(float(count / fps))))
        output.mux(stream.encode(None))
        if audio is not None:
            output.mux(list(audio.finish(float(count / fps))))
    finally:
        if audio is not None:
            audio.close()


def write_sdr_video(
    path: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: Fraction | float | int,
    crf: int = 16,
    audio_from: Path | None = None,
    source: Iterator[av.VideoFrame] | None = None,
    unchanged_frames: Collection[int] = (),
) -> None:
    """H.264 yuv420p (BT.709, limited range) from uint8 (or float [0, 1]) RGB frames.

    ``source``: the input's decoded frames in step with ``frames`` (``io.video.iter_source_frames``).
    Each frame is then written as the source's planes plus the change ``frames`` makes to the
    source's RGB, so what the output leaves as it was keeps the input's own 4:2:0 coding: converted
    to RGB and back, a 4:2:0 frame's chroma is resampled twice (at crf 8 a sharp real frame lost
    0.97 dB that way, 0.62 dB through its own planes). Source frames of another format are ignored.
    ``unchanged_frames``: frames known to be the source's as they are, coded at quantiser 0 (``lossless_zones``).
    """

    def to_yuv(rgb: np.ndarray) -> av.VideoFrame:
        return av.VideoFrame.from_ndarray(_rgb_to_yuv420p(rgb), format=SDR_PIX_FMT)

    def to_av_frame(frame: np.ndarray) -> av.VideoFrame:
        rgb = np.ascontiguousarray(_pad(_to_uint8(frame), 0))
        coded = next(source, None) if source is not None else None
        if coded is None or not _same_coding(coded, rgb.shape):
            return to_yuv(rgb)
        as_read = decoded_rgb(coded, deep=False)
        change = to_yuv(rgb).to_ndarray().astype(np.int16) - to_yuv(as_read).to_ndarray()
        planes = np.clip(coded.to_ndarray().astype(np.int16) + change, 0, 255).astype(np.uint8)
        return av.VideoFrame.from_ndarray(planes, format=SDR_PIX_FMT)

    options = {"crf": str(crf), "preset": PRESET}
    if unchanged_frames:
        options["x264-params"] = lossless_zones(unchanged_frames)
    encoding = _Encoding(SDR_CODEC, SDR_PIX_FMT, options, (_BT709, _BT709, _BT709, _RANGE_TV), to_av_frame)
    _encode_video(Path(path), frames, _as_fps(fps), encoding, audio_from)


def lossless_zones(frames: Collection[int]) -> str:
    """x264 parameters that code ``frames`` at quantiser 0 and the rest at the stream's rate.

    A frame the output leaves as the input coded it then decodes as the input did: a real clip's
    sharp frames, re-encoded at crf 4, lost 0.15-0.3 dB against the true frames (a small coding error
    counts most on a frame that is already close); at quantiser 0 they lost under 0.04 dB. It is
    not x264's lossless mode (a High 4:4:4 stream many players cannot decode), only its finest
    quantiser. B-frames are off: x264 offsets a B-frame's quantiser from its zone's, and a third of
    the zoned frames stayed at crf 4's error.
    """
    return "bframes=0:zones=" + "/".join(f"{first},{last},q=0" for first, last in frame_runs(frames))


def _ycbcr_420(rgb: np.ndarray, luma_weights: tuple[float, float, float], levels: int) -> np.ndarray:
    """Non-linear R'G'B' in [0, 1] ``[H, W, 3]`` (even sides) -> limited-range 4:2:0 Y'CbCr codes at
    ``levels`` (256 or 1024) in PyAV's planar ``(H*3/2, W)`` layout, unrounded.

    Chroma is sited as H.264 and HEVC streams say by default (and as players and FFmpeg read them):
    beside the left luma sample of each pair, between the two rows: a [1, 2, 1] / 4 filter across,
    the mean of the two rows down. FFmpeg's own RGB -> yuv420p conversion sites it at the centre,
    which read back at the left siting cost a sharp frame 4.7 dB in a lossless round trip."""
    kr, kg, kb = (np.float32(k) for k in luma_weights)
    rgb = np.asarray(rgb, np.float32)
    luma = kr * rgb[..., 0] + kg * rgb[..., 1] + kb * rgb[..., 2]
    step = np.float32(levels / 256)
    planes = [(np.float32(16) + np.float32(219) * luma) * step]
    for chroma in ((rgb[..., 2] - luma) / (2 * (1 - kb)), (rgb[..., 0] - luma) / (2 * (1 - kr))):
        rows = (chroma[0::2] + chroma[1::2]) / 2
        padded = np.pad(rows, ((0, 0), (1, 1)), mode="edge")
        sited = (padded[:, 0:-2:2] + 2 * padded[:, 1:-1:2] + padded[:, 2::2]) / 4
        planes.append((np.float32(128) + np.float32(224) * sited) * step)
    width = rgb.shape[1]
    return np.concatenate([plane.reshape(-1) for plane in planes]).reshape(-1, width)


def _rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` (even sides) -> BT.709 limited-range yuv420p planes ``(H*3/2, W)``."""
    codes = _ycbcr_420(rgb.astype(np.float32) / np.float32(255), BT709_LUMA, 256)
    return np.clip(np.rint(codes), 0, 255).astype(np.uint8)


def _same_coding(frame: av.VideoFrame, rgb_shape: tuple[int, ...]) -> bool:
    """Whether ``frame`` is coded as write_sdr_video codes (8-bit 4:2:0, BT.709, limited range) at ``rgb_shape``."""
    return (
        frame.format.name == SDR_PIX_FMT
        and (frame.height, frame.width) == tuple(rgb_shape[:2])
        and int(frame.colorspace) == _BT709
        and int(frame.color_range) == _RANGE_TV
    )


# ----------------------------------------------------------------------------- HDR10


def linear_to_pq(nits: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084 inverse EOTF: absolute luminance (cd/m^2) -> PQ signal in [0, 1]."""
    nits = np.asarray(nits)
    dtype = np.float32 if nits.dtype == np.float32 else np.float64  # float32 frames: 4x faster, exact to 1e-6
    y = np.clip(nits.astype(dtype, copy=False) / dtype(PQ_MAX_NITS), 0.0, 1.0) ** dtype(_PQ_M1)
    return ((dtype(_PQ_C1) + dtype(_PQ_C2) * y) / (1.0 + dtype(_PQ_C3) * y)) ** dtype(_PQ_M2)


def pq_to_linear(signal: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084 EOTF: PQ signal in [0, 1] -> absolute luminance (cd/m^2)."""
    e = np.clip(np.asarray(signal, np.float64), 0.0, 1.0) ** (1.0 / _PQ_M2)
    return PQ_MAX_NITS * (np.maximum(e - _PQ_C1, 0.0) / (_PQ_C2 - _PQ_C3 * e)) ** (1.0 / _PQ_M1)


def _bt2020_nits(frame: np.ndarray, white_nits: float, peak_nits: float) -> np.ndarray:
    rgb = np.asarray(frame, np.float32) @ BT709_TO_BT2020.T.astype(np.float32)
    return np.clip(rgb * np.float32(white_nits), 0.0, np.float32(peak_nits))


def _pq_to_yuv420p10(pq: np.ndarray) -> np.ndarray:
    """BT.2020 non-constant-luminance R'G'B' -> 10-bit limited-range 4:2:0 in PyAV's (H*3/2, W) layout."""
    return np.clip(np.rint(_ycbcr_420(pq, BT2020_LUMA, 1024)), 0, 1023).astype(np.uint16)


def _light_levels(frames: np.ndarray, white_nits: float, peak_nits: float) -> tuple[int, int]:
    """(MaxCLL, MaxFALL) in nits: the brightest max(R,G,B) of any pixel, and of any frame's average."""
    max_cll = max_fall = 0.0
    for frame in frames:
        brightest = _bt2020_nits(frame, white_nits, peak_nits).max(axis=-1)
        max_cll = max(max_cll, float(brightest.max()))
        max_fall = max(max_fall, float(brightest.mean()))
    return round(max_cll), round(max_fall)


def _x265_params(peak_nits: float, light_levels: tuple[int, int], bframes: bool) -> str:
    params = {
        "log-level": "error",
        "hdr10": "1",
        "hdr10-opt": "1",
        "repeat-headers": "1",
        "colorprim": "bt2020",
        "transfer": "smpte2084",
        "colormatrix": "bt2020nc",
        "range": "limited",
        "master-display": f"{_P3D65_PRIMARIES}L({round(peak_nits * 10000)},{_MASTER_MIN_LUMINANCE})",
        "max-cll": f"{light_levels[0]},{light_levels[1]}",
    }
    if not bframes:
        params["bframes"] = "0"
    return ":".join(f"{key}={value}" for key, value in params.items())


def write_hdr10_video(
    path: str | Path,
    frames_linear: np.ndarray | Iterable[np.ndarray],
    fps: Fraction | float | int,
    white_nits: float = 203.0,
    peak_nits: float = 1000.0,
    crf: int = 16,
    audio_from: Path | None = None,
    light_levels: tuple[int, int] | None = None,
) -> None:
    """HDR10 HEVC Main10 (BT.2020, PQ, limited range) from linear BT.709 RGB; 1.0 = ``white_nits``.

    MaxCLL / MaxFALL: ``light_levels`` when given (a stream's, measured beforehand), else measured
    when ``frames_linear`` is an array; for a stream of frames they are declared as
    (``peak_nits``, ``white_nits``).
    """
    if not 0 < white_nits <= peak_nits <= PQ_MAX_NITS:
        limits = f"0 < white_nits <= peak_nits <= {PQ_MAX_NITS:g}"
        raise VidcamError(f"HDR10 needs {limits}, got white_nits={white_nits}, peak_nits={peak_nits}")
    if light_levels is not None:
        light_levels = (min(round(light_levels[0]), round(peak_nits)), min(round(light_levels[1]), round(peak_nits)))
    elif isinstance(frames_linear, np.ndarray):
        light_levels = _light_levels(frames_linear, white_nits, peak_nits)
    else:
        light_levels = (round(peak_nits), round(white_nits))

    def to_av_frame(frame: np.ndarray) -> av.VideoFrame:
        pq = linear_to_pq(_bt2020_nits(_pad(frame, HDR_MIN_SIDE), white_nits, peak_nits))
        av_frame = av.VideoFrame.from_ndarray(_pq_to_yuv420p10(pq), format=HDR_PIX_FMT)
        av_frame.color_primaries, av_frame.color_trc = _BT2020, _SMPTE2084
        av_frame.colorspace, av_frame.color_range = _BT2020_NCL, _RANGE_TV
        return av_frame

    frames = iter(frames_linear)
    head = list(itertools.islice(frames, HDR_MIN_FRAMES_FOR_BFRAMES))
    bframes = len(head) >= HDR_MIN_FRAMES_FOR_BFRAMES
    x265_params = _x265_params(peak_nits, light_levels, bframes)
    options = {"crf": str(crf), "preset": PRESET, "x265-params": x265_params}
    colour = (_BT2020, _SMPTE2084, _BT2020_NCL, _RANGE_TV)
    encoding = _Encoding(HDR_CODEC, HDR_PIX_FMT, options, colour, to_av_frame, HDR_MIN_SIDE, HEVC_MP4_TAG)
    _encode_video(Path(path), itertools.chain(head, frames), _as_fps(fps), encoding, audio_from)
