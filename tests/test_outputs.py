"""Output that players and pipelines accept: HEVC tagged hvc1, EXR chromaticities, quiet progress
logs (and --quiet), and the optional decord reader giving PyAV's frames."""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

import av
import numpy as np
import OpenEXR
import pytest

from vidcam import progress as progress_module
from vidcam.cli import main
from vidcam.errors import VidcamError
from vidcam.io import encode, images, video
from vidcam.progress import progress, set_quiet

SHARED = Path(__file__).resolve().parents[2] / "shared"
BIKES = SHARED / "data" / "bikes.mp4"


@pytest.fixture(autouse=True)
def not_quiet():
    set_quiet(False)
    yield
    set_quiet(False)


def linear_frames(n: int, height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = 0.05 * np.exp(np.log(80.0) * x / width)  # 0.05 .. 4 x white
    return np.asarray([np.stack([ramp, ramp * (0.5 + y / height), ramp], -1) * (1 + 0.1 * t) for t in range(n)])


# ----------------------------------------------------------------------------- HEVC in MP4


def test_hdr10_mp4_is_tagged_hvc1_and_keeps_its_hdr10_metadata(tmp_path):
    path = tmp_path / "hdr10.mp4"
    encode.write_hdr10_video(path, linear_frames(4, 64, 96), 25, white_nits=203.0, peak_nits=1000.0)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        assert (ctx.name, ctx.codec_tag) == ("hevc", "hvc1")
        frame = next(container.decode(stream))
    assert (frame.color_primaries, frame.color_trc, frame.colorspace) == (9, 16, 9)  # BT.2020, PQ, BT.2020 NCL
    side_data = {str(entry.type).rsplit(".", 1)[-1]: bytes(entry) for entry in frame.side_data}
    # AVMasteringDisplayMetadata: 3 primaries + white point as (num, den) pairs, then min / max luminance.
    rationals = struct.unpack("<20i", side_data["MASTERING_DISPLAY_METADATA"][:80])
    red_x, white_x = rationals[0] / rationals[1], rationals[12] / rationals[13]
    min_nits, max_nits = rationals[16] / rationals[17], rationals[18] / rationals[19]
    assert (red_x, white_x) == (pytest.approx(0.68), pytest.approx(0.3127))  # P3-D65 display
    assert (min_nits, max_nits) == (pytest.approx(0.0001), pytest.approx(1000.0))
    max_cll, max_fall = struct.unpack("<2I", side_data["CONTENT_LIGHT_LEVEL"][:8])
    assert 203 < max_cll <= 1000 and 0 < max_fall < max_cll


def test_hevc_in_matroska_keeps_the_default_tagging(tmp_path):
    path = tmp_path / "hdr10.mkv"  # Matroska has no sample entries: hvc1 would not apply
    encode.write_hdr10_video(path, linear_frames(2, 64, 64), 25)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "hevc"
        assert len(list(container.decode(video=0))) == 2


# ----------------------------------------------------------------------------- EXR


def test_exr_carries_rec709_chromaticities_and_d65_white(tmp_path):
    path = tmp_path / "frame.exr"
    rgb = np.random.default_rng(0).uniform(0, 4, (6, 8, 3)).astype(np.float32)
    images.write_exr(path, rgb)
    with OpenEXR.File(str(path)) as exr:
        header = dict(exr.header())  # the file's own dict is emptied when it closes
    red, green, blue, white = np.reshape(header["chromaticities"], (4, 2))
    assert np.allclose([red, green, blue], [[0.64, 0.33], [0.30, 0.60], [0.15, 0.06]], atol=1e-6)
    assert np.allclose(white, [0.3127, 0.3290], atol=1e-6)  # D65
    assert header["colorInteropID"] == "lin_rec709_scene"
    if hasattr(OpenEXR, "checkColorMetadata"):  # the two attributes agree (OpenEXR >= 3.5)
        assert OpenEXR.checkColorMetadata(header) == OpenEXR.ColorMetadataWarning.OK
    assert np.allclose(images.read_exr(path), rgb, rtol=1e-3)


# ----------------------------------------------------------------------------- progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_loop(stream: io.StringIO, steps: int = 100, seconds_per_step: float = 0.5, **kwargs) -> None:
    clock = FakeClock()
    for _ in progress(range(steps), "render", unit="frame", stream=stream, clock=clock, interval=5.0, **kwargs):
        clock.now += seconds_per_step


def test_progress_off_a_terminal_prints_a_plain_line_every_interval_and_one_at_the_end():
    log = io.StringIO()
    run_loop(log)  # 100 steps of 0.5 s: 50 s
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 50 // 5  # at 5, 10 .. 45 s, then the last
    assert lines[0] == "render: 10/100 frame (10%), 2 frame/s, 0:05 elapsed, ETA 0:45"
    assert lines[-1] == "render: 100/100 frame (100%) in 0:50, 2 frame/s"


def test_fraction_progress_shows_percent_eta_and_postfix():
    log, clock = io.StringIO(), FakeClock()
    with progress(desc="train", total=1000, show_count=False, stream=log, clock=clock, interval=5.0) as bar:
        for step in range(1, 11):
            clock.now += 1.0
            bar.set_postfix(step=step, loss=f"{1 / step:.3g}")
            bar.update(100)
    lines = log.getvalue().splitlines()
    assert lines == [
        "train: 50%, 0:05 elapsed, ETA 0:05 | step=5 loss=0.2",
        "train: 100% in 0:10 | step=10 loss=0.1",
    ]


def test_progress_on_a_terminal_is_a_live_bar():
    terminal = FakeTerminal()
    run_loop(terminal, steps=20)
    assert "\r" in terminal.getvalue() and "20/20" in terminal.getvalue()


@pytest.mark.parametrize("stream_type", [io.StringIO, FakeTerminal])
def test_quiet_progress_prints_nothing(stream_type):
    stream = stream_type()
    set_quiet(True)
    run_loop(stream)
    assert progress_module.is_quiet()
    assert stream.getvalue() == ""
    run_loop(stream, disable=True)  # a caller's own switch, too
    assert stream.getvalue() == ""


def test_breaking_out_of_a_loop_still_ends_with_a_line():
    log = io.StringIO()
    for index in progress(range(10), "scan", stream=log, clock=FakeClock()):
        if index == 3:
            break
    assert log.getvalue().splitlines() == ["scan: 3/10 it (30%) in 0:00"]


@pytest.mark.parametrize("quiet", [False, True])
def test_cli_quiet_silences_progress_but_not_the_result(tiny_blur_clip, tmp_path, capsys, quiet):
    path, _ = tiny_blur_clip
    args = ["flow", str(path), "-o", str(tmp_path / "flow"), "--flow", "dis"] + (["--quiet"] if quiet else [])
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err
    assert captured.out.startswith("wrote flow visualisations")
    progress_lines = [line for line in captured.err.splitlines() if re.match(r"flow: \d+/\d+ pair", line)]
    assert len(progress_lines) == (0 if quiet else 1)


def test_cli_quiet_does_not_hide_errors(tmp_path, capsys):
    assert main(["flow", str(tmp_path / "missing.mp4"), "-o", str(tmp_path), "--quiet"]) == 2
    assert "not found" in capsys.readouterr().err


# ----------------------------------------------------------------------------- decord reader


@pytest.mark.skipif(not video.decord_available(), reason="decord is not installed (pip install 'vidcam[decord]')")
@pytest.mark.skipif(not BIKES.is_file(), reason="shared data absent")
def test_decord_reads_the_frames_pyav_reads():
    """decord reads the same frames; its colour conversion (FFmpeg's fast path) is within about a
    level of PyAV's, so "auto" keeps to PyAV for such (4:2:0) video and reads exactly its frames."""
    indices = [249, 0, 120, 121, 37, 120]  # out of order, across keyframes, repeated
    by_pyav = video.read_frames(BIKES, indices, reader="pyav")
    by_decord = video.read_frames(BIKES, indices, reader="decord")
    assert by_decord.shape == (6, 272, 640, 3) and by_decord.dtype == np.uint8
    assert np.abs(by_decord.astype(int) - by_pyav).mean() < 2.5
    assert np.abs(by_decord[0].astype(int) - by_pyav[1]).mean() > 5  # really different frames
    scaled = video.read_frames(BIKES, indices, max_side=160, reader="decord")
    assert np.abs(scaled.astype(int) - video.read_frames(BIKES, indices, max_side=160, reader="pyav")).mean() < 2.5
    assert np.array_equal(video.read_frames(BIKES, indices), by_pyav)
    late = video.read_video(BIKES, start=200, max_frames=5)
    assert np.array_equal(late.frames, video.read_frames(BIKES, range(200, 205), reader="pyav"))


@pytest.mark.skipif(not video.decord_available(), reason="decord is not installed (pip install 'vidcam[decord]')")
def test_decord_refuses_what_it_would_read_wrongly_and_auto_falls_back(tmp_path):
    frames = np.zeros((3, 16, 32, 3), np.uint8)
    frames[:, :4, :4] = 255
    path = tmp_path / "rotated.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.height, stream.width, stream.pix_fmt = 16, 32, "yuv420p"
        stream.set_display_rotation(-90)
        for index, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(VidcamError, match="rotation"):
        video.read_frames(path, [1], reader="decord")
    upright = video.read_frames(path, [2, 1])
    assert upright.shape == (2, 32, 16, 3) and upright[0, :4, -4:].mean() > 200


def test_read_frames_checks_its_arguments(tmp_path):
    path = tmp_path / "clip.mp4"
    encode.write_sdr_video(path, np.zeros((3, 16, 16, 3), np.uint8), 10)
    with pytest.raises(VidcamError, match="0..2"):
        video.read_frames(path, [3])
    with pytest.raises(VidcamError, match="unknown video reader"):
        video.read_frames(path, [0], reader="opencv")
    assert video.read_frames(path, [2, 0], reader="pyav").shape == (2, 16, 16, 3)
