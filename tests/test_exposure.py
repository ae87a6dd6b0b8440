"""Exposure patterns: found from the frames (also on real alternating footage), and typed by users."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from vidcam.cli import build_parser, main
from vidcam.testing.cli import assert_one_line_error, run_cli
from vidcam.errors import VidcamError
from vidcam.exposure import estimate_exposures, parse_exposures
from vidcam.io.video import read_video
from vidcam.io.encode import write_sdr_video

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_ALTERNATING = SHARED / "data" / "real_alternating"
GAMMA = 2.2


def _backlit_canvas() -> np.ndarray:
    """Linear irradiance of a dark interior (the astronaut photo, mirrored to twice its width)
    with a row of bright windows 40x brighter: high contrast with sharp edges, like bride_80f."""
    photo = (skimage.data.astronaut().astype(np.float64) / 255) ** GAMMA
    canvas = np.concatenate([photo, photo[:, ::-1]], axis=1)  # 512 x 1024
    windows = np.ones(canvas.shape[:2])
    for left in range(40, canvas.shape[1], 140):
        windows[60:300, left : left + 90] = 40.0
    return canvas * windows[..., None]


def alternating_clip(
    pattern: tuple[float, ...], n_frames: int = 40, pan_px: float = 4.0, long_clipped: float = 0.2, seed: int = 0
) -> np.ndarray:
    """Frames of the backlit canvas panning ``pan_px`` a frame, exposed cyclically by ``pattern``
    (the longest exposure clips ``long_clipped`` of its pixels), with shot noise, gamma 2.2, 8 bit."""
    rng = np.random.default_rng(seed)
    canvas = _backlit_canvas()
    frames, gain = [], None
    for t in range(n_frames):
        left = int(round(pan_px * t))
        view = cv2.resize(canvas[40:400, left : left + 640].astype(np.float32), (160, 90), interpolation=cv2.INTER_AREA)
        if gain is None:
            gain = 1.0 / np.quantile(view.max(-1), 1.0 - long_clipped)
        exposed = view * gain * pattern[t % len(pattern)] / max(pattern)
        exposed = exposed + rng.normal(0.0, 0.01, exposed.shape) * np.sqrt(np.maximum(exposed, 0) + 1e-4)
        frames.append(np.round(np.clip(exposed, 0, 1) ** (1 / GAMMA) * 255) / 255)
    return np.array(frames, np.float32)


def ev_error(estimated: float, truth: float) -> float:
    return abs(float(np.log2(estimated / truth)))


# --- the estimate on synthetic patterns -------------------------------------------------------


@pytest.mark.parametrize("ratio", [4.0, 30.0, 60.0])
def test_two_exposures_found_with_their_ratio(ratio):
    frames = alternating_clip((1.0, ratio), n_frames=80)
    if ratio > 8:  # the hard case: beyond the learned exposures' ±3 EV, most of a short frame black
        assert np.mean(frames[0].mean(-1) < 0.08) > 0.6
        assert np.mean(frames[1].max(-1) > 0.99) > 0.15
    estimate = estimate_exposures(frames)
    assert estimate.period == 2
    assert ev_error(estimate.ratio, ratio) < 0.25
    assert estimate.log_exposure[0] < estimate.log_exposure[1]  # frame 0 is the short one
    assert np.allclose(estimate.log_exposure[::2], estimate.log_exposure[0])
    assert abs(estimate.log_exposure.mean()) < 1e-9


def test_three_exposures_found_in_frame_order():
    frames = alternating_clip((4.0, 16.0, 1.0), n_frames=60)
    estimate = estimate_exposures(frames)
    assert estimate.period == 3
    assert estimate.pattern.shape == (3,)
    for found, truth in zip(estimate.pattern, (4.0, 16.0, 1.0)):
        assert ev_error(found, truth) < 0.25
    assert ev_error(estimate.ratio, 16.0) < 0.25


def test_pattern_found_on_full_size_frames_as_on_small_ones():
    small = alternating_clip((1.0, 8.0), n_frames=8)
    large = np.stack([cv2.resize(frame, (960, 540), interpolation=cv2.INTER_LINEAR) for frame in small])
    on_small, on_large = estimate_exposures(small), estimate_exposures(large)
    assert on_small.period == on_large.period == 2
    assert ev_error(on_small.ratio, on_large.ratio) < 0.1


def _gained(gain: np.ndarray) -> np.ndarray:
    """The backlit canvas without exposure changes, its brightness scaled per frame by ``gain``."""
    frames = alternating_clip((1.0,), n_frames=gain.size, long_clipped=0.05)
    linear = frames.astype(np.float64) ** GAMMA * gain[:, None, None, None]
    return (np.round(np.clip(linear, 0, 1) ** (1 / GAMMA) * 255) / 255).astype(np.float32)


N = 60
T = np.arange(N)
NOT_EXPOSURE_PATTERNS = {
    "constant": np.ones(N),
    "fade in x8": np.exp(np.linspace(np.log(1 / 8), 0, N)),
    "fade to black": np.linspace(1.0, 0.02, N),
    "random flicker x2": np.exp(np.random.default_rng(1).uniform(-0.7, 0.7, N)),
    "mains flicker at period 3, 50%": 1 + 0.5 * np.cos(2 * np.pi * T / 3),
    "strobe x4 on even frames in the first half only": np.where((T % 2 == 0) & (T < N // 2), 4.0, 1.0),
    "alternation x1.5": np.where(T % 2 == 1, 1.5, 1.0),
}


@pytest.mark.parametrize("name", NOT_EXPOSURE_PATTERNS)
def test_brightness_changes_that_are_no_exposure_pattern(name):
    estimate = estimate_exposures(_gained(NOT_EXPOSURE_PATTERNS[name]))
    assert estimate.period == 1
    assert estimate.ratio == 1.0
    assert np.all(estimate.log_exposure == 0)


def test_alternation_survives_a_fade():
    gain = np.where(T % 2 == 1, 4.0, 1.0) * np.linspace(1.0, 0.5, N)
    estimate = estimate_exposures(_gained(gain))
    assert estimate.period == 2
    assert ev_error(estimate.ratio, 4.0) < 0.3


def test_alternation_before_a_black_tail():
    # the black frames (a third of the clip) tell nothing about exposure: they don't count against it
    gain = np.where(T % 2 == 1, 4.0, 1.0) * (T < 40)
    estimate = estimate_exposures(_gained(gain))
    assert estimate.period == 2
    assert ev_error(estimate.ratio, 4.0) < 0.3


def test_exposures_too_far_apart_to_share_a_well_exposed_pixel():
    frames = alternating_clip((1.0, 500.0), n_frames=20)
    assert np.mean(frames[0].mean(-1) < 0.08) > 0.95
    estimate = estimate_exposures(frames)
    assert estimate.period == 2
    assert estimate.log_exposure[0] < estimate.log_exposure[1]
    assert ev_error(estimate.ratio, 500.0) < 1.0


def test_too_few_frames_for_a_pattern():
    assert estimate_exposures(alternating_clip((1.0, 8.0), n_frames=3)).period == 1


# --- real footage (skipped without ../shared) -------------------------------------------------


def _real(name: str) -> Path:
    path = REAL_ALTERNATING / name
    if not path.is_file():
        pytest.skip(f"{path} not present (see shared/README.md)")
    return path


def test_real_bride_clip_alternates_short_long():
    """Backlit, panning, 1080p: most of each short frame near black, a fifth of each long one clipped."""
    frames = read_video(_real("bride_80f.mp4"), max_side=160).frames_float()
    estimate = estimate_exposures(frames)
    assert estimate.period == 2
    assert estimate.log_exposure[0] < estimate.log_exposure[1]  # even frames are the short ones
    assert estimate.ratio > 8  # beyond what the learned exposures could reach from a wrong guess


@pytest.mark.parametrize(
    "name, period, pattern",
    [
        ("dhv_10-11-10.48.54_3stop_2exps.mp4", 2, (8.0,)),
        ("dhv_10-11-11.10.43_3stop_2exps.mp4", 2, (8.0,)),
        ("dhv_10-11-11.22.24_2stop_3exps.mp4", 3, (4.0, 16.0)),
        ("dhv_10-11-11.33.27_2stop_3exps.mp4", 3, (4.0, 16.0)),
    ],
)
def test_real_capture_settings_found(name, period, pattern):
    estimate = estimate_exposures(read_video(_real(name), max_side=160).frames_float())
    assert estimate.period == period
    found = np.sort(estimate.pattern)[1:]  # relative to the darkest
    for value, setting in zip(found, pattern):
        assert ev_error(value, setting) < 0.3


def test_real_footage_without_exposure_changes():
    bikes = SHARED / "data" / "bikes.mp4"
    davis = sorted((SHARED / "data" / "davis-bmx-trees" / "frames").glob("*.jpg"))
    if not bikes.is_file() or not davis:
        pytest.skip("../shared/data not present")
    assert estimate_exposures(read_video(bikes, max_side=160).frames_float()).period == 1
    frames = np.stack([cv2.imread(str(path))[..., ::-1] for path in davis]).astype(np.float32) / 255
    assert estimate_exposures(frames).period == 1


# --- typed exposure lists ---------------------------------------------------------------------


def test_list_and_ev_values():
    assert np.allclose(parse_exposures("1,4", 4), np.log([0.5, 2, 0.5, 2]))
    assert np.allclose(parse_exposures("-2,2", 2, ev=True), [-2 * np.log(2), 2 * np.log(2)])


def test_long_inline_list_is_not_taken_for_a_path():
    values = ",".join(["1", "4"] * 500)
    with pytest.raises(VidcamError, match="1000 values for 6 frames"):
        parse_exposures(values, 6)
    assert parse_exposures(values, 1000).shape == (1000,)


# --- through the command line -----------------------------------------------------------------






@pytest.fixture(scope="module")
def alternating_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "alternating.mp4"
    frames = alternating_clip((1.0, 4.0, 16.0), n_frames=9)
    write_sdr_video(path, np.round(frames * 255).astype(np.uint8), 24)
    return path


def enhance_error(capsys, clip: Path, out: Path, *flags: object) -> tuple[int, str]:
    code, _, err = run_cli(capsys, "enhance", clip, "-o", out, "--max-frames", 6, *flags)
    return code, err


def test_cli_thousand_inline_values(capsys, tmp_path, alternating_mp4):
    code, err = enhance_error(capsys, alternating_mp4, tmp_path / "out", "--exposures", ",".join(["1"] * 1000))
    assert_one_line_error(code, err, "1000 values for 6 frames")


@pytest.mark.parametrize("name", ["exposures.txt", "lists/exposures", "lists/times.csv"])
def test_cli_missing_exposure_file(capsys, tmp_path, alternating_mp4, name):
    (tmp_path / "lists").mkdir()
    code, err = enhance_error(capsys, alternating_mp4, tmp_path / "out", "--exposures", tmp_path / name)
    assert_one_line_error(code, err, "exposure file not found", name)


def test_cli_exposure_folder(capsys, tmp_path, alternating_mp4):
    folder = tmp_path / "exposures"
    folder.mkdir()
    code, err = enhance_error(capsys, alternating_mp4, tmp_path / "out", "--exposures", folder)
    assert_one_line_error(code, err, "is a folder", str(folder))


def test_cli_exposure_file_is_read(capsys, tmp_path, alternating_mp4):
    listing = tmp_path / "exposures.txt"
    listing.write_text("1 2 3 4 5 6 7 8 9\n")  # read, then refused for its length: not "not found"
    code, err = enhance_error(capsys, alternating_mp4, tmp_path / "out", "--exposures", listing)
    assert_one_line_error(code, err, "9 values for 6 frames")


@pytest.mark.parametrize("flags", [["--exposures", "-2,2,0,1,1,1,1,1,1"], ["--exposures=-2,2,0,1,1,1,1,1,1"]])
def test_cli_negative_ev_values_reach_the_parser(capsys, tmp_path, alternating_mp4, flags):
    # nine values for six frames: refused by the exposure parser, so argparse let them through
    code, err = enhance_error(capsys, alternating_mp4, tmp_path / "out", *flags, "--ev")
    assert_one_line_error(code, err, "9 values for 6 frames")


def test_cli_negative_times_without_ev(capsys, tmp_path, alternating_mp4):
    code, err = enhance_error(capsys, alternating_mp4, tmp_path / "out", "--exposures", "-1,4")
    assert_one_line_error(code, err, "must be positive", "--ev")


@pytest.mark.parametrize(
    "argv, exposures",
    [
        (["--exposures", "-2,2", "--ev"], "-2,2"),
        (["--exposures", "-.5,1.5"], "-.5,1.5"),
        (["--exposures", "-2", "--ev"], "-2"),
        (["--exposures=-1,1"], "-1,1"),
        (["--exposures", "1,4"], "1,4"),
    ],
)
def test_negative_values_parse_as_typed(argv, exposures):
    from vidcam.cli import _join_negative_exposures

    args = build_parser().parse_args(_join_negative_exposures(["enhance", "clip.mp4", *argv]))
    assert args.exposures == exposures


def test_cli_missing_exposure_value(capsys, tmp_path, alternating_mp4):
    with pytest.raises(SystemExit) as exit_info:
        main(["enhance", str(alternating_mp4), "--exposures", "--ev"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].endswith("argument --exposures: expected one argument")


def test_cli_empty_exposure_list(capsys, tmp_path, alternating_mp4):
    code, err = enhance_error(capsys, alternating_mp4, tmp_path / "out", "--exposures", "")
    assert_one_line_error(code, err, "empty")


def test_info_prints_pattern_and_mode(capsys, alternating_mp4, tmp_path):
    code, out, _ = run_cli(capsys, "info", alternating_mp4)
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("exposure:"))
    assert "alternating, period 3, pattern 1 : " in line
    values = [float(v) for v in line.split("pattern ")[1].split(" (")[0].split(" : ")]
    assert len(values) == 3 and values[0] == 1.0
    assert ev_error(values[1], 4.0) < 0.3 and ev_error(values[2], 16.0) < 0.3
    assert "mode:       hdr" in out

    steady = tmp_path / "steady.mp4"
    write_sdr_video(steady, np.round(alternating_clip((1.0,), n_frames=9) * 255).astype(np.uint8), 24)
    code, out, _ = run_cli(capsys, "info", steady)
    assert code == 0
    assert "exposure:   none" in out and "mode:       deblur" in out
