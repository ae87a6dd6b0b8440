"""vidcam.io: video decode / encode (SDR, HDR10, audio, rotation), EXR and PNG, atomic writes."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidcam.errors import VidcamError
from vidcam.io import encode, images, video

SHARED = Path(__file__).resolve().parents[2] / "shared"
BIKES = SHARED / "data" / "bikes.mp4"
AUDIO_RATE = 48000


# ----------------------------------------------------------------------------- helpers


def smooth_frames(n: int, height: int, width: int) -> np.ndarray:
    """Smooth, moving uint8 RGB gradients (easy for a codec, so the error is small)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(n):
        r = 40 + 160 * x / width + 4 * t
        g = 60 + 120 * y / height
        b = 128 + 60 * np.sin((x + y + 3 * t) / 12)
        frames.append(np.stack([r, g, b], axis=-1))
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def linear_frames(n: int, height: int, width: int) -> np.ndarray:
    """Smooth linear HDR frames spanning ~0.05 .. 4 (x white) in all channels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.05 * np.exp(np.log(80.0) * x / width)  # log ramp 0.05 .. 4
    tint = 0.6 + 0.4 * y / height
    frames = [np.stack([base, base * tint, base * (1.6 - tint)], axis=-1) * (1 + 0.02 * t) for t in range(n)]
    return np.asarray(frames, np.float32)


def make_audio(path: Path, codec: str, seconds: float) -> None:
    """A mono 440 Hz sine in ``codec`` (aac -> .m4a, pcm_s16le -> .wav)."""
    fmt = "fltp" if codec == "aac" else "s16"
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    pcm = 0.3 * np.sin(2 * np.pi * 440 * t)
    samples = pcm.astype(np.float32) if fmt == "fltp" else (pcm * 32767).astype(np.int16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=AUDIO_RATE)
        stream.layout = "mono"
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[None, start : start + 1024]), format=fmt, layout="mono"
            )
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def audio_seconds(path: Path) -> float:
    """Decoded audio length in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.codec_context.sample_rate


def write_raw(
    path: Path, frames: np.ndarray, codec: str, pix_fmt: str, in_fmt: str, rotation: int | None = None
) -> None:
    """Encode frames with PyAV directly (independent of vidcam's writers)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for index, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format=in_fmt)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def first_frame(path: Path) -> av.VideoFrame:
    with av.open(str(path)) as container:
        return next(container.decode(video=0))


def bt2020_pq_to_linear709(rgb16: np.ndarray, white_nits: float) -> np.ndarray:
    """Decoded full-scale uint16 BT.2020 PQ R'G'B' -> linear BT.709 relative to white."""
    nits = encode.pq_to_linear(rgb16.astype(np.float64) / 65535.0)
    return nits @ np.linalg.inv(encode.BT709_TO_BT2020).T / white_nits


@pytest.fixture(scope="module")
def sdr_clip(tmp_path_factory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("sdr") / "clip.mp4"
    frames = smooth_frames(8, 48, 64)
    encode.write_sdr_video(path, frames, Fraction(30000, 1001))
    return path, frames


@pytest.fixture(scope="module")
def aac_audio(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "sine.m4a"
    make_audio(path, "aac", seconds=2.0)
    return path


# ----------------------------------------------------------------------------- SDR round trip


def test_sdr_round_trip(sdr_clip):
    path, frames = sdr_clip
    info = video.probe(path)
    assert (info.width, info.height, info.n_frames) == (64, 48, 8)
    assert info.fps == Fraction(30000, 1001)
    assert (info.codec, info.pix_fmt, info.bit_depth, info.rotation) == ("h264", "yuv420p", 8, 0)
    assert not info.has_audio and info.audio_codec is None
    assert info.duration == pytest.approx(8 * 1001 / 30000, abs=0.01)
    clip = video.read_video(path)
    assert clip.frames.dtype == np.uint8 and clip.frames.shape == frames.shape
    assert clip.fps == Fraction(30000, 1001)
    assert np.array_equal(clip.frame_indices, np.arange(8))
    assert np.abs(clip.frames.astype(int) - frames).mean() < 3
    floats = clip.frames_float()
    assert floats.dtype == np.float32 and np.allclose(floats * 255, clip.frames)


def test_sdr_colours_use_bt709_both_ways(tmp_path):
    """Saturated patches survive, so the RGB<->YCbCr matrices of writer and reader agree."""
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.uint8)
    frames = np.concatenate([np.full((32, 32, 3), c, np.uint8) for c in colours], axis=1)[None].repeat(3, 0)
    path = tmp_path / "colours.mp4"
    encode.write_sdr_video(path, frames, 10)
    assert first_frame(path).colorspace == 1  # BT.709 tagged
    decoded = video.read_video(path).frames
    for k, colour in enumerate(colours):
        patch = decoded[:, 8:24, 32 * k + 8 : 32 * k + 24].reshape(-1, 3).mean(axis=0)
        assert np.abs(patch - colour).max() < 6, (colour, patch)


def test_sdr_accepts_float_frames_and_iterables(tmp_path):
    frames = smooth_frames(5, 32, 48)
    path = tmp_path / "float.mp4"
    encode.write_sdr_video(path, (f.astype(np.float32) / 255 for f in frames), 24)
    clip = video.read_video(path)
    assert clip.n_frames == 5 and clip.fps == 24
    assert np.abs(clip.frames.astype(int) - frames).mean() < 3



@pytest.mark.parametrize(
    ("pix_fmt", "colorspace", "kr_kb", "full"),
    [("yuv420p", 1, (0.2126, 0.0722), False), ("yuvj420p", 5, (0.299, 0.114), True), ("yuv420p", 2, (0.299, 0.114), False)],
)
def test_decoded_rgb_applies_the_frames_own_matrix_and_range(pix_fmt, colorspace, kr_kb, full):
    """Flat colours coded by the textbook formulas decode to within half a level (FFmpeg's direct
    yuv420p -> rgb24 conversion read them about 1.2 levels dark)."""
    kr, kb = kr_kb
    for rgb in ([200, 40, 90], [30, 180, 220], [128, 128, 128]):
        r, g, b = (np.float64(c) / 255 for c in rgb)
        y = kr * r + (1 - kr - kb) * g + kb * b
        cb, cr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
        codes = (255 * y, 128 + 255 * cb, 128 + 255 * cr) if full else (16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr)
        planes = np.concatenate([np.full(16 * 16, codes[0]), np.full(64, codes[1]), np.full(64, codes[2])])
        frame = av.VideoFrame.from_ndarray(np.rint(planes).astype(np.uint8).reshape(-1, 16), format=pix_fmt)
        frame.colorspace = colorspace
        frame.color_range = 2 if full else 1
        decoded = video.decoded_rgb(frame, deep=False).reshape(-1, 3).astype(float)
        assert np.abs(decoded - rgb).max() <= 1.0, (rgb, decoded.mean(axis=0))


def test_sdr_through_the_source_planes_keeps_what_it_leaves_unchanged(tmp_path):
    """Written losslessly through the input's own 4:2:0 planes, frames the output did not change
    decode to the input's frames bit for bit, and a changed patch carries its change (plus the
    source's chroma detail that RGB cannot hold, zero on average); written
    from RGB alone, the chroma is resampled a second time and the same frames drift."""
    rng = np.random.default_rng(0)
    source = tmp_path / "textured.mp4"
    encode.write_sdr_video(source, rng.integers(0, 256, (4, 32, 48, 3), dtype=np.uint8), 24, crf=0)
    decoded = video.read_video(source).frames
    changed = decoded.copy()
    changed[2, 8:24, 16:32] = 200
    through_planes, from_rgb = tmp_path / "planes.mp4", tmp_path / "rgb.mp4"
    encode.write_sdr_video(through_planes, changed, 24, crf=0, source=video.iter_source_frames(source, 0, 4, (48, 32)))
    encode.write_sdr_video(from_rgb, changed, 24, crf=0)
    kept = video.read_video(through_planes).frames
    assert np.array_equal(kept[[0, 1, 3]], decoded[[0, 1, 3]])
    assert np.abs(kept[2, 8:24, 16:32].reshape(-1, 3).mean(axis=0) - 200).max() < 2
    assert np.array_equal(kept[2, :, :8], decoded[2, :, :8])  # beyond the reach of the patch's chroma filters
    assert np.abs(video.read_video(from_rgb).frames[[0, 1, 3]].astype(int) - decoded[[0, 1, 3]]).mean() > 1
    assert video.iter_source_frames(source, 0, 4, (24, 16)) is None  # another size: nothing to keep

def test_frames_left_unchanged_are_coded_at_the_finest_quantiser(tmp_path):
    """At a coarse crf, frames named unchanged decode (nearly) as the source did, the others do not,
    B-frames included (x264 offsets their quantiser from the zone's unless they are off)."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (1, 32, 48, 3)).astype(float)
    frames = np.clip(base + rng.normal(0, 12, (8, 32, 48, 3)), 0, 255).astype(np.uint8)  # correlated: P/B-frames
    source = tmp_path / "textured.mp4"
    encode.write_sdr_video(source, frames, 24, crf=0)
    decoded = video.read_video(source).frames
    unchanged = [1, 2, 5]
    assert encode.lossless_zones(unchanged) == "bframes=0:zones=1,2,q=0/5,5,q=0"
    zoned, plain = tmp_path / "zoned.mp4", tmp_path / "plain.mp4"
    for path, kept in ((zoned, unchanged), (plain, [])):
        encode.write_sdr_video(path, decoded, 24, crf=30, source=video.iter_source_frames(source, 0, 8, (48, 32)), unchanged_frames=kept)
    error = {path: np.abs(video.read_video(path).frames.astype(int) - decoded).mean(axis=(1, 2, 3)) for path in (zoned, plain)}
    assert error[zoned][unchanged].max() < 0.5 < error[plain][unchanged].min(), error
    assert error[zoned][[0, 3, 4, 6, 7]].min() > 0.5


def test_odd_size_is_padded_by_edge_replication(tmp_path):
    frames = smooth_frames(4, 33, 47)
    path = tmp_path / "odd.mp4"
    encode.write_sdr_video(path, frames, 25)
    clip = video.read_video(path)
    assert (clip.height, clip.width) == (34, 48)
    assert np.abs(clip.frames[:, :33, :47].astype(int) - frames).mean() < 3
    # the padding repeats the last row / column rather than stretching or filling black
    assert np.abs(clip.frames[:, 33, :47].astype(int) - frames[:, 32]).mean() < 4
    assert np.abs(clip.frames[:, :33, 47].astype(int) - frames[:, :, 46]).mean() < 4


def test_start_max_frames_max_side(sdr_clip):
    path, frames = sdr_clip
    clip = video.read_video(path, start=2, max_frames=3, max_side=32)
    assert clip.frames.shape == (3, 24, 32, 3)
    assert np.array_equal(clip.frame_indices, [2, 3, 4])
    assert clip.info.n_frames == 8  # the info describes the whole source
    full = video.read_video(path, start=2, max_frames=3).frames
    assert np.abs(clip.frames.astype(int) - full[:, ::2, ::2]).mean() < 6
    assert video.read_video(path, start=6, max_frames=10).n_frames == 2
    assert video.read_video(path, max_side=1000).frames.shape == frames.shape


def test_bad_read_arguments(sdr_clip):
    path, _ = sdr_clip
    with pytest.raises(VidcamError, match="start frame"):
        video.read_video(path, start=8)
    with pytest.raises(VidcamError, match="max_frames"):
        video.read_video(path, max_frames=0)


def test_mean_brightness():
    frames = np.zeros((3, 4, 5, 3), np.uint8)
    frames[1] = 255
    frames[2, ..., 1] = 255  # pure green: BT.709 luma weight
    assert np.allclose(video.mean_brightness(frames), [0.0, 1.0, 0.7152], atol=1e-6)
    assert np.allclose(video.mean_brightness(frames.astype(np.uint16) * 257), [0.0, 1.0, 0.7152], atol=1e-6)
    assert np.allclose(video.mean_brightness(frames.astype(np.float32) / 255), [0.0, 1.0, 0.7152], atol=1e-6)


def test_real_footage_probe():
    if not BIKES.is_file():
        pytest.skip(f"{BIKES} not present")
    info = video.probe(BIKES)
    assert (info.width, info.height, info.n_frames, info.fps) == (640, 272, 250, 25)
    clip = video.read_video(BIKES, start=100, max_frames=5, max_side=320)
    assert clip.frames.shape == (5, 136, 320, 3)


# ----------------------------------------------------------------------------- decoding special sources


def test_rotation_metadata_is_applied(tmp_path):
    frames = np.zeros((2, 16, 32, 3), np.uint8)
    frames[:, :4, :4] = 255  # marker in the top-left corner
    path = tmp_path / "rotated.mp4"
    write_raw(path, frames, "libx264", "yuv420p", "rgb24", rotation=-90)  # displays turned 90 deg clockwise
    assert first_frame(path).rotation == -90
    info = video.probe(path)
    assert (info.rotation, info.width, info.height) == (90, 16, 32)
    clip = video.read_video(path)
    assert clip.frames.shape == (2, 32, 16, 3)
    assert clip.frames[0, :4, -4:].mean() > 200  # turned clockwise: marker now top-right
    assert clip.frames[0, :4, :4].mean() < 50


def test_ten_bit_source_decodes_to_uint16(tmp_path):
    frames = np.zeros((3, 20, 30, 3), np.uint16)
    frames[..., 0] = np.arange(30) * 30  # 10-bit codes 0 .. 870
    frames[..., 1] = 1023
    frames[..., 2] = np.arange(3)[:, None, None] * 100
    path = tmp_path / "ten.mkv"
    write_raw(path, frames, "ffv1", "gbrp10le", "gbrp10le")  # lossless 10-bit RGB
    info = video.probe(path)
    assert info.bit_depth == 10
    clip = video.read_video(path)
    assert clip.frames.dtype == np.uint16
    expected = frames.astype(np.float64) * 65535 / 1023
    assert np.abs(clip.frames - expected).max() <= 1.0


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(VidcamError, match="not found"):
        video.probe(tmp_path / "nope.mp4")
    with pytest.raises(VidcamError, match="not found"):
        video.read_video(tmp_path / "nope.mp4")


def test_text_file_named_mp4_is_a_user_error(tmp_path):
    path = tmp_path / "fake.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(VidcamError) as err:
        video.probe(path)
    assert "\n" not in str(err.value) and "fake.mp4" in str(err.value)


def test_audio_only_file_is_a_user_error(aac_audio):
    with pytest.raises(VidcamError, match="no video stream"):
        video.probe(aac_audio)


# ----------------------------------------------------------------------------- audio


def test_audio_is_copied_and_trimmed(tmp_path, aac_audio):
    path = tmp_path / "with_audio.mp4"
    encode.write_sdr_video(path, smooth_frames(25, 32, 48), 25, audio_from=aac_audio)
    info = video.probe(path)
    assert info.has_audio and info.audio_codec == "aac"
    assert info.n_frames == 25
    assert info.duration == pytest.approx(1.0, abs=0.05)
    assert audio_seconds(path) == pytest.approx(1.0, abs=0.05)  # 2 s source trimmed to the video


def test_audio_is_reencoded_when_mp4_cannot_carry_it(tmp_path):
    wav = tmp_path / "sine.wav"
    make_audio(wav, "pcm_s16le", seconds=0.5)
    path = tmp_path / "with_pcm.mp4"
    encode.write_sdr_video(path, smooth_frames(25, 32, 48), 25, audio_from=wav)
    info = video.probe(path)
    assert info.has_audio and info.audio_codec == "aac"
    assert audio_seconds(path) == pytest.approx(0.5, abs=0.05)


def test_audio_from_a_silent_video_adds_no_audio(tmp_path, sdr_clip):
    path = tmp_path / "silent.mp4"
    encode.write_sdr_video(path, smooth_frames(3, 32, 48), 25, audio_from=sdr_clip[0])
    assert not video.probe(path).has_audio


# ----------------------------------------------------------------------------- HDR10


def test_pq_curve_reference_values():
    assert encode.linear_to_pq(np.array([0.0, 100.0, 1000.0, 10000.0])) == pytest.approx(
        [0.0, 0.50808, 0.75183, 1.0], abs=2e-4
    )
    nits = np.array([0.01, 1.0, 203.0, 4000.0])
    assert encode.pq_to_linear(encode.linear_to_pq(nits)) == pytest.approx(nits, rel=1e-9)


def test_hdr10_metadata_reads_back(tmp_path):
    path = tmp_path / "hdr.mp4"
    encode.write_hdr10_video(path, linear_frames(3, 64, 96), 24)
    info = video.probe(path)
    assert (info.codec, info.pix_fmt, info.bit_depth, info.n_frames) == ("hevc", "yuv420p10le", 10, 3)
    assert (info.width, info.height) == (96, 64)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        ctx = stream.codec_context
        assert stream.profile == "Main 10"
        assert (ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range) == (9, 16, 9, 1)
        assert (frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range) == (9, 16, 9, 1)
        side = {sd.type.name: bytes(sd) for sd in frame.side_data}
    assert "MASTERING_DISPLAY_METADATA" in side
    max_cll, max_fall = struct.unpack("<II", side["CONTENT_LIGHT_LEVEL"])
    brightest = (linear_frames(3, 64, 96) @ encode.BT709_TO_BT2020.T * 203.0).max(axis=-1)
    assert max_cll == pytest.approx(brightest.max(), abs=1)
    assert max_fall == pytest.approx(brightest.mean(axis=(1, 2)).max(), abs=1)


def test_hdr10_reference_white_code_values(tmp_path):
    """Linear 1.0 grey = 203 nits -> PQ 0.5807 -> 10-bit limited-range Y ~ 573, neutral chroma."""
    path = tmp_path / "grey.mp4"
    encode.write_hdr10_video(path, np.ones((2, 64, 64, 3), np.float32), 24, white_nits=203.0)
    yuv = first_frame(path).to_ndarray()  # (H*3/2, W) uint16 planes
    luma, chroma = yuv[:64], yuv[64:]
    expected = 64 + 876 * encode.linear_to_pq(203.0)
    assert abs(float(luma.mean()) - expected) < 1.5
    assert abs(float(chroma.mean()) - 512) < 1.5


def test_hdr10_pq_decodes_back_to_linear(tmp_path):
    frames = linear_frames(3, 64, 96)
    frames[:, :8, :8] = 10.0  # 2030 nits: clipped to the 1000-nit peak
    path = tmp_path / "hdr.mp4"
    encode.write_hdr10_video(path, frames, 24, white_nits=203.0, peak_nits=1000.0)
    decoded = bt2020_pq_to_linear709(video.read_video(path).frames, 203.0)
    inner = (slice(None), slice(12, -4), slice(12, -4))
    rel = np.abs(decoded[inner] - frames[inner]) / np.maximum(frames[inner], 0.05)
    assert np.median(rel) < 0.02 and np.percentile(rel, 99) < 0.08
    assert decoded[:, 2:6, 2:6].mean() == pytest.approx(1000 / 203, rel=0.03)


def test_hdr10_streams_small_odd_frames_and_pads(tmp_path):
    frames = linear_frames(3, 33, 41)
    path = tmp_path / "small.mp4"
    encode.write_hdr10_video(path, iter(frames), 24)  # an iterable: light levels are not measured
    info = video.probe(path)
    assert (info.width, info.height) == (encode.HDR_MIN_SIDE, encode.HDR_MIN_SIDE)
    decoded = bt2020_pq_to_linear709(video.read_video(path).frames, 203.0)
    rel = np.abs(decoded[:, 4:29, 4:37] - frames[:, 4:29, 4:37]) / frames[:, 4:29, 4:37]
    assert np.median(rel) < 0.03


def test_hdr10_one_and_two_frame_clips_have_sane_timestamps(tmp_path):
    """libx265 gives random DTS to 1-2 frame clips with B-frames (~1 write in 5); the writer avoids that."""
    path = tmp_path / "short.mp4"
    for n in [1, 2] * 8:
        encode.write_hdr10_video(path, np.ones((n, 64, 64, 3), np.float32), 24)
        with av.open(str(path)) as container:
            packets = [p for p in container.demux(video=0) if p.size]
        assert len(packets) == n
        assert all(p.dts is not None and p.dts <= p.pts and abs(p.dts) < 10**6 for p in packets)


def test_hdr10_with_audio(tmp_path, aac_audio):
    path = tmp_path / "hdr_audio.mp4"
    encode.write_hdr10_video(path, linear_frames(12, 64, 64), 24, audio_from=aac_audio)
    info = video.probe(path)
    assert info.has_audio and info.duration == pytest.approx(0.5, abs=0.05)


def test_hdr10_rejects_bad_nits(tmp_path):
    frames = linear_frames(1, 64, 64)
    with pytest.raises(VidcamError, match="white_nits"):
        encode.write_hdr10_video(tmp_path / "x.mp4", frames, 24, white_nits=2000, peak_nits=1000)


# ----------------------------------------------------------------------------- atomic writes


def test_failed_video_write_keeps_old_target_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous result")

    def frames():
        yield from smooth_frames(3, 32, 48)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        encode.write_sdr_video(target, frames(), 25)
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_video_write_replaces_target_atomically(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous result")
    encode.write_sdr_video(target, smooth_frames(3, 32, 48), 25)
    assert video.probe(target).n_frames == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_write_into_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(VidcamError, match="folder"):
        encode.write_sdr_video(tmp_path / "no" / "out.mp4", smooth_frames(2, 16, 16), 25)
    with pytest.raises(VidcamError, match="folder"):
        images.write_png(tmp_path / "no" / "out.png", np.zeros((4, 4, 3), np.uint8))


def test_unknown_video_suffix_is_a_user_error(tmp_path):
    with pytest.raises(VidcamError, match="cannot write video"):
        encode.write_sdr_video(tmp_path / "out.notavideo", smooth_frames(2, 16, 16), 25)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("half", [True, False])
def test_exr_round_trip(tmp_path, half):
    rgb = linear_frames(1, 20, 30)[0] * np.float32(np.pi)
    rgb[0, 0] = [1e-3, 250.0, 0.0]
    path = tmp_path / "img.exr"
    images.write_exr(path, rgb, half=half)
    back = images.read_exr(path)
    assert back.dtype == np.float32 and back.shape == (20, 30, 3)
    if half:
        assert np.allclose(back, rgb, rtol=1e-3, atol=1e-6)
        assert not np.array_equal(back, rgb)  # it really is stored as half
    else:
        assert np.array_equal(back, rgb)
    assert list(tmp_path.iterdir()) == [path]


def test_half_exr_holds_values_past_its_range_at_its_largest(tmp_path):
    """Half floats end at 65504: a larger value, inf or NaN must not come back as inf or NaN."""
    rgb = np.ones((4, 5, 3), np.float32)
    rgb[0, 0] = [1e5, np.inf, np.nan]
    rgb[1, 1] = [-np.inf, 3.0, 65504.0]
    images.write_exr(tmp_path / "img.exr", rgb)
    back = images.read_exr(tmp_path / "img.exr")
    assert np.isfinite(back).all()
    assert back[0, 0].tolist() == [65504.0, 65504.0, 0.0]
    assert back[1, 1].tolist() == [-65504.0, 3.0, 65504.0]


def test_exr_luminance_only_file(tmp_path):
    import OpenEXR

    grey = np.linspace(0, 2, 12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "y.exr"
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"Y": grey}) as exr:
        exr.write(str(path))
    assert np.array_equal(images.read_exr(path), np.repeat(grey[..., None], 3, axis=-1))


@pytest.mark.parametrize(
    "image",
    [
        np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3),
        np.arange(5 * 7 * 4, dtype=np.uint8).reshape(5, 7, 4) * 3,
        (np.arange(5 * 7 * 3, dtype=np.uint16).reshape(5, 7, 3) * 601),
        (np.arange(5 * 7 * 4, dtype=np.uint16).reshape(5, 7, 4) * 450),
        np.arange(35, dtype=np.uint8).reshape(5, 7),
    ],
    ids=["rgb8", "rgba8", "rgb16", "rgba16", "grey8"],
)
def test_png_round_trip(tmp_path, image):
    path = tmp_path / "img.png"
    images.write_png(path, image)
    back = images.read_png(path)
    assert back.dtype == image.dtype and np.array_equal(back, image)  # channel order kept (not BGR)


def test_png_float_is_stored_as_uint8(tmp_path):
    path = tmp_path / "f.png"
    images.write_png(path, np.array([[[0.0, 0.5, 1.0]]], np.float32))
    back = images.read_png(path)
    assert back.dtype == np.uint8 and back.tolist() == [[[0, 128, 255]]]


def test_image_read_errors(tmp_path):
    with pytest.raises(VidcamError, match="not found"):
        images.read_png(tmp_path / "missing.png")
    with pytest.raises(VidcamError, match="not found"):
        images.read_exr(tmp_path / "missing.exr")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(VidcamError):
        images.read_png(bad)
    bad_exr = tmp_path / "bad.exr"
    bad_exr.write_text("not an image")
    with pytest.raises(VidcamError):
        images.read_exr(bad_exr)
