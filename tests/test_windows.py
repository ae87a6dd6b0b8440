"""Temporal windows: splitting, gains, blending, seam flicker, and a windowed run end to end with resume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vidcam.batch import enhance_all, unchanged_frames
from vidcam.errors import VidcamError
from vidcam.io.images import read_exr
from vidcam.io.video import read_video
from vidcam.testing import synthetic
from vidcam.windows import (
    Window,
    blend_weights,
    border_pairs,
    chained_gains,
    frame_weights,
    join_windows,
    overlap_gain,
    seam_flicker,
    split_windows,
)

# 10 frames in windows of 6 sharing 2: [0, 6) and [4, 10).
WINDOWED = {"windows.frames": 6, "windows.overlap": 2, "parallel.backend": "local", "train.steps": 60, "train.bootstrap_steps": 20}


@pytest.mark.parametrize("n_frames, frames, overlap", [(10, 6, 2), (11, 6, 2), (300, 100, 12), (101, 100, 12), (7, 6, 1)])
def test_windows_cover_the_clip_with_the_overlap(n_frames, frames, overlap):
    windows = split_windows(n_frames, frames, overlap)
    assert len(windows) > 1
    assert windows[0].start == 0 and windows[-1].end == n_frames
    assert all(w.n_frames <= frames for w in windows)
    assert all(a.end - b.start >= overlap for a, b in zip(windows, windows[1:]))
    weights = blend_weights(windows, n_frames)
    assert np.allclose(weights.sum(axis=0), 1)
    assert np.all(np.diff(weights[0][: windows[0].end]) <= 0)  # the first window fades out, never back in


def test_short_clip_is_one_window_and_bad_sizes_are_refused():
    assert split_windows(6, 100, 12) == [Window(0, 0, 6)]
    with pytest.raises(VidcamError, match="overlap"):
        split_windows(20, 6, 6)
    with pytest.raises(VidcamError, match="overlap"):
        split_windows(20, 6, 0)


def test_gains_undo_each_windows_arbitrary_scale():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 2.0, (10, 4, 5, 3)).astype(np.float32)
    windows = split_windows(10, 6, 2)
    scales = [1.0, 0.25]  # the second window came out 4x darker
    renders = [truth[w.start : w.end] * s for w, s in zip(windows, scales)]
    assert overlap_gain(renders[0][4:], renders[1][:2]) == pytest.approx(4.0, rel=1e-5)
    gains = chained_gains(renders, windows)
    joined = join_windows(renders, windows, gains)
    assert np.allclose(joined, truth, rtol=1e-5)
    unaligned = join_windows(renders, windows, [1.0, 1.0])
    assert not np.allclose(unaligned[6:], truth[6:], rtol=0.1)


def test_seam_flicker_sees_a_jump_at_a_border():
    windows = split_windows(10, 6, 2)
    steady = np.full((10, 4, 4, 3), 100, np.uint8)
    jump = steady.copy()
    jump[5:] = 140  # brightness jumps inside the shared frames
    assert border_pairs(windows).tolist() == [False] * 3 + [True] * 3 + [False] * 3
    assert seam_flicker(steady, windows)["border"] == 0
    flicker = seam_flicker(jump, windows)
    assert flicker["border"] == pytest.approx(40 / 3) and flicker["elsewhere"] == 0
    assert flicker["brightness_border"] == pytest.approx(40 / 3) and flicker["brightness_elsewhere"] == 0


@pytest.fixture(scope="module")
def clip10(tmp_path_factory):
    result = synthetic.make_hdr_clip(seed=7, n_frames=10, height=36, width=64)
    path = tmp_path_factory.mktemp("clips") / "clip10.mp4"
    synthetic.write_clip(result, path)
    return path


@pytest.fixture(scope="module")
def windowed_run(clip10, tmp_path_factory, tiny_config):
    outdir = tmp_path_factory.mktemp("runs") / "windowed"
    cfg = tiny_config(WINDOWED)
    [report] = enhance_all([clip10], [outdir], [cfg])
    return outdir, report, cfg


def test_windowed_run_writes_every_frame_once(windowed_run, clip10):
    outdir, report, _ = windowed_run
    exrs = sorted((outdir / "hdr").glob("*.exr"))
    assert len(exrs) == 10 and read_exr(exrs[0]).shape == (36, 64, 3)
    assert read_video(outdir / "enhanced.mp4").frames.shape == (10, 36, 64, 3)
    assert (outdir / "enhanced_hdr10.mp4").is_file()
    for name in ("w000", "w001"):
        assert (outdir / "windows" / name / "checkpoint.pt").is_file()
    saved = json.loads((outdir / "report.json").read_text())["windows"]
    assert [(w["start"], w["end"]) for w in saved["windows"]] == [(0, 6), (4, 10)]
    assert len(saved["border_gains"]) == 1 and 0.2 < saved["border_gains"][0] < 5
    assert np.isfinite([saved["flicker"]["border"], saved["flicker"]["elsewhere"]]).all()
    assert report.steps == 2 * WINDOWED["train.steps"]
    # The fidelity guard ran in each window: one confidence frame and figure per output frame.
    assert read_video(outdir / "confidence.mp4").frames.shape == (10, 36, 64, 3)
    assert len(report.fidelity["confidence"]) == 10
    assert len(report.highlights["filled"]) == 10  # the highlight fill ran in each window too
    page = (outdir / "report.html").read_text()
    assert "Temporal windows" in page and "0–5, 4–9" in page


def test_blended_join_changes_less_at_borders_than_a_hard_cut(clip10, tmp_path, tiny_config):
    # The model alone (the guard's input irradiance would mix in each window's own response).
    [report] = enhance_all([clip10], [tmp_path / "run"], [tiny_config(WINDOWED | {"render.fidelity": "off", "render.highlight_fill": False})])
    flicker, naive = report.windows["flicker"], report.windows["flicker_naive"]
    assert flicker["border"] <= naive["border"] + 1e-6


def test_resume_skips_finished_windows_and_gives_the_same_output(windowed_run, clip10, tmp_path, tiny_config):
    outdir, _, cfg = windowed_run
    copy = tmp_path / "copy"
    shutil.copytree(outdir, copy)
    (copy / "windows" / "w001" / "window.json").unlink()  # as if the run had stopped after training w001
    (copy / "windows" / "w001" / "render.npy").unlink()
    [report] = enhance_all([clip10], [copy], [cfg], resume=True)
    tasks = report.windows["tasks"]
    assert tasks[0]["skipped"] and not tasks[1]["skipped"]
    assert tasks[1]["steps"] == WINDOWED["train.steps"]  # continued from its finished checkpoint, no new steps
    for exr in sorted((outdir / "hdr").glob("*.exr")):
        assert np.array_equal(read_exr(exr), read_exr(copy / "hdr" / exr.name)), exr.name


def test_inputs_folders_and_output_folders(tmp_path):
    from vidcam.batch import expand_inputs, output_folders

    (tmp_path / "clips").mkdir()
    for name in ("b.mp4", "a.MOV", "notes.txt"):
        (tmp_path / "clips" / name).write_bytes(b"")
    inputs = expand_inputs([tmp_path / "clips"])
    assert [p.name for p in inputs] == ["a.MOV", "b.mp4"]
    assert output_folders(inputs, tmp_path / "out") == [tmp_path / "out" / "a", tmp_path / "out" / "b"]
    assert output_folders(inputs[:1], tmp_path / "out") == [tmp_path / "out"]
    with pytest.raises(VidcamError, match="share an output folder"):
        output_folders([tmp_path / "x" / "a.mp4", tmp_path / "y" / "a.mp4"], tmp_path / "out")
    with pytest.raises(VidcamError, match="file not found"):
        expand_inputs([tmp_path / "missing.mp4"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(VidcamError, match="no video files"):
        expand_inputs([tmp_path / "empty"])


def test_a_joined_frame_is_unchanged_only_where_every_window_showing_it_kept_it_whole():
    windows = split_windows(14, 8, 2)  # frames 0-7 and 6-13, overlapping at 6-7
    weights = frame_weights(windows)
    results = [{"fidelity": {"sharp_frames": [1, 6, 7]}}, {"fidelity": {"sharp_frames": [0, 5]}}]  # the second: frames 6, 11
    assert [(w.start, w.end) for w in windows] == [(0, 8), (6, 14)]
    assert unchanged_frames(windows, weights, results) == [1, 6, 11]  # 7: the second window changed it
    assert unchanged_frames(windows, weights, [{"fidelity": None}, {}]) == []
