"""The command line: bad input ends with one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations


import numpy as np
import pytest

from vidcam.testing.cli import assert_one_line_error, run_cli
from vidcam.io.encode import write_sdr_video






def test_missing_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "enhance", tmp_path / "nope.mp4")
    assert_one_line_error(code, err, "not found")


def test_not_a_video(capsys, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    code, _, err = run_cli(capsys, "enhance", fake)
    assert_one_line_error(code, err, str(fake))


def test_one_frame_clip(capsys, tmp_path):
    clip = tmp_path / "single.mp4"
    write_sdr_video(clip, np.full((1, 32, 32, 3), 128, np.uint8), 24)
    code, _, err = run_cli(capsys, "enhance", clip, "-o", tmp_path / "out")
    assert_one_line_error(code, err, "at least 2")


@pytest.mark.parametrize("exposures", ["1,x", "", "0,4", "1,2,3,4,5,6,7,8,9"])
def test_malformed_exposures(capsys, tmp_path, tiny_hdr_clip, exposures):
    code, _, err = run_cli(capsys, "enhance", tiny_hdr_clip[0], "-o", tmp_path / "out", "--exposures", exposures)
    assert_one_line_error(code, err, "exposure")


def test_unreadable_exposure_file(capsys, tmp_path, tiny_hdr_clip):
    listing = tmp_path / "exposures.txt"
    listing.write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = run_cli(capsys, "enhance", tiny_hdr_clip[0], "-o", tmp_path / "out", "--exposures", listing)
    assert_one_line_error(code, err, "exposure")


def test_outdir_with_another_run(capsys, tmp_path, tiny_hdr_clip):
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "config.yaml").write_text("mode: hdr\n")
    code, _, err = run_cli(capsys, "enhance", tiny_hdr_clip[0], "-o", outdir)
    assert_one_line_error(code, err, "another vidcam run", "--resume")
    assert (outdir / "config.yaml").read_text() == "mode: hdr\n"


def test_outdir_with_user_files_is_left_alone(capsys, tmp_path, tiny_hdr_clip):
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "enhanced.mp4").write_text("mine")
    code, _, err = run_cli(capsys, "enhance", tiny_hdr_clip[0], "-o", outdir)
    assert_one_line_error(code, err, "other files")
    assert (outdir / "enhanced.mp4").read_text() == "mine"


def test_unwritable_outdir(capsys, tmp_path, tiny_hdr_clip):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "enhance", tiny_hdr_clip[0], "-o", blocker / "out")
    assert_one_line_error(code, err, "cannot write")


def test_resume_without_run(capsys, tmp_path, tiny_hdr_clip):
    code, _, err = run_cli(capsys, "enhance", tiny_hdr_clip[0], "-o", tmp_path / "empty", "--resume")
    assert_one_line_error(code, err, "no vidcam run")


def test_unknown_setting(capsys, tmp_path, tiny_hdr_clip):
    code, _, err = run_cli(capsys, "enhance", tiny_hdr_clip[0], "--set", "train.stepz=3")
    assert_one_line_error(code, err, "train.stepz")


def test_setting_outside_its_choices_fails_before_any_work(capsys, tmp_path, tiny_hdr_clip):
    outdir = tmp_path / "run"
    code, _, err = run_cli(capsys, "enhance", tiny_hdr_clip[0], "-o", outdir, "--set", "camera.blur_model=gaussian")
    assert_one_line_error(code, err, "camera.blur_model", "path, patch", "gaussian")
    assert not outdir.exists()


def test_audio_only_file(capsys, tmp_path):
    import av

    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (0.2 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    code, _, err = run_cli(capsys, "info", path)
    assert_one_line_error(code, err)


def test_info_reveals_alternating_exposure(capsys, tiny_hdr_clip):
    path, truth = tiny_hdr_clip
    code, out, _ = run_cli(capsys, "info", path)
    assert code == 0
    assert "frames:     6" in out and "64x36" in out
    assert "alternating, period 2" in out
    brightness = [float(v) for v in out.split("brightness:")[1].split()]
    assert len(brightness) == 6
    # the long exposures (odd frames) are the bright ones
    assert all(brightness[i] > brightness[i - 1] for i in (1, 3, 5))
