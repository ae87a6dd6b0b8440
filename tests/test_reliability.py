"""Nothing a user gave is overwritten, one process per run folder, interrupted runs resume
where they stopped (issue 14). Concurrency and kill -9 use real subprocesses on a tiny clip."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from vidcam import cli
from vidcam.errors import VidcamError
from vidcam.io.atomic import TEMPORARY_NAME, atomic_path, remove_temporaries
from vidcam.run import CHECKPOINT_NAME, CONFIG_NAME, LOSS_PLOT, REPORT_NAME, read_report
from vidcam.runlock import COMPLETE_NAME, LOCK_NAME, claim_run_folder

ROOT = Path(__file__).resolve().parents[1]
# conftest's TINY_TRAINING as flags (conftest is not importable as a module)
TINY_SETTINGS = {
    "device": "cpu",
    "flow.backend": "dis",
    "train.batch_size": 2048,
    "train.flow_batch_size": 512,
    "train.reg_batch_size": 256,
    "train.log_every": 10,
    "camera.tone_prefit_steps": 100,
}
TINY_FLAGS = ["--preset", "fast", "-q"] + [arg for item in TINY_SETTINGS.items() for arg in ("--set", "{}={}".format(*item))]
WAIT_S = 300  # generous: the machine may be busy; nothing asserts on time


def vidcam(*args: object) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "vidcam", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def start_vidcam(log_path: Path, *args: object) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with open(log_path, "w") as log_file:
        return subprocess.Popen([sys.executable, "-m", "vidcam", *map(str, args)], env=env, stderr=log_file)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert process.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vidcam: error: "), stderr
    return lines[0]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tiny_hdr_clip, tmp_path_factory) -> Path:
    """A finished tiny HDR run (two layers) with its atlases exported into RUN/atlas."""
    out = tmp_path_factory.mktemp("finished") / "run"
    args = ["enhance", str(tiny_hdr_clip[0]), "-o", str(out), "--steps", "20", "--export-atlas", *TINY_FLAGS]
    assert cli.main(args) == 0
    return out


# ----------------------------------------------------------------------------- edit / atlas outputs


def test_edit_refuses_existing_output_and_its_hdr10_twin(finished_run, tmp_path, capsys):
    atlas_png = finished_run / "atlas" / "layer1_atlas.png"
    existing = tmp_path / "existing.mp4"
    existing.write_bytes(b"the user's own video")
    edit = ["edit", str(finished_run), "--layer", "1", "--atlas", str(atlas_png), "-q"]

    assert cli.main([*edit, "-o", str(existing)]) == 2
    assert "existing.mp4 already exists" in one_error_line(capsys.readouterr().err)
    assert existing.read_bytes() == b"the user's own video"
    assert not (tmp_path / "existing_hdr10.mp4").exists()

    twin = tmp_path / "foo_hdr10.mp4"
    twin.write_bytes(b"another user file")
    assert cli.main([*edit, "-o", str(tmp_path / "foo.mp4")]) == 2
    assert "foo_hdr10.mp4 already exists" in one_error_line(capsys.readouterr().err)
    assert twin.read_bytes() == b"another user file"
    assert not (tmp_path / "foo.mp4").exists()  # nothing written before every name was checked

    assert cli.main([*edit, "-o", str(existing), "--overwrite"]) == 0
    assert existing.read_bytes()[4:8] == b"ftyp" and (tmp_path / "existing_hdr10.mp4").is_file()


def test_flow_refuses_the_users_files_in_its_output_folder(tiny_hdr_clip, tmp_path, capsys):
    out = tmp_path / "vis"
    out.mkdir()
    mine = out / "flow_k1.mp4"
    mine.write_bytes(b"the user's own video")
    flow = ["flow", str(tiny_hdr_clip[0]), "-o", str(out), "--flow", "dis", "-q"]
    assert cli.main(flow) == 2
    assert "flow_k1.mp4 already exists" in one_error_line(capsys.readouterr().err)
    assert mine.read_bytes() == b"the user's own video" and not (out / "flow_k1").exists()
    assert cli.main([*flow, "--overwrite"]) == 0
    assert mine.read_bytes()[4:8] == b"ftyp" and len(list((out / "flow_k1").glob("*.png"))) == 5


def test_atlas_refuses_user_files_and_a_previous_export(finished_run, tmp_path, capsys):
    user_folder = tmp_path / "mine"
    user_folder.mkdir()
    (user_folder / "layer0_atlas.png").write_bytes(b"my drawing")
    (user_folder / "notes.txt").write_bytes(b"notes")
    before = folder_bytes(user_folder)
    assert cli.main(["atlas", str(finished_run), "-o", str(user_folder), "-q"]) == 2
    assert "layer0_atlas.png already exists" in one_error_line(capsys.readouterr().err)
    assert folder_bytes(user_folder) == before  # nothing added, nothing replaced

    exported = finished_run / "atlas"
    previous = folder_bytes(exported)
    assert cli.main(["atlas", str(finished_run), "-q"]) == 2  # a previous export of the same run
    assert "already exists" in one_error_line(capsys.readouterr().err)
    assert folder_bytes(exported) == previous
    assert cli.main(["atlas", str(finished_run), "-q", "--overwrite"]) == 0
    assert set(folder_bytes(exported)) == set(previous)


# ----------------------------------------------------------------------------- resume rules


def test_resume_refuses_settings_that_shaped_the_training(finished_run, tiny_hdr_clip, capsys):
    config_before = (finished_run / CONFIG_NAME).read_bytes()
    files_before = sorted(p.name for p in finished_run.iterdir())
    for flags, key in ((["--max-side", "32"], "io.max_side"), (["--set", "loss.color=2"], "loss.color")):
        assert cli.main(["enhance", str(tiny_hdr_clip[0]), "-o", str(finished_run), "--resume", *flags]) == 2
        assert f"--resume cannot change {key}" in one_error_line(capsys.readouterr().err)
    assert (finished_run / CONFIG_NAME).read_bytes() == config_before
    assert sorted(p.name for p in finished_run.iterdir()) == files_before  # still complete, untouched


def test_resume_without_checkpoint_says_it_starts_afresh(finished_run, tiny_hdr_clip, tmp_path, capsys):
    out = tmp_path / "stopped_before_training"
    out.mkdir()
    shutil.copy(finished_run / CONFIG_NAME, out / CONFIG_NAME)  # a run killed while it computed flow
    assert cli.main(["enhance", str(tiny_hdr_clip[0]), "-o", str(out), "--resume", "--steps", "3", "-q"]) == 0
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "training starts afresh" in err
    assert read_report(out).steps == 3 and (out / COMPLETE_NAME).is_file()


def test_a_held_lock_refuses_a_new_run_naming_the_holder(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    holder = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)  # another open file: conflicts like another process
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        os.write(holder, b"pid 4242 on otherhost\n")
        refusal = "in use by a running vidcam process \\(pid 4242 on otherhost\\)"
        with pytest.raises(VidcamError, match=refusal), claim_run_folder(out, resume=False):
            pass
    finally:
        os.close(holder)
    with claim_run_folder(out, resume=False):  # released (as when the holder dies): free again
        assert (out / LOCK_NAME).read_text().startswith(f"pid {os.getpid()} ")


def test_a_refused_user_folder_keeps_no_lock_file(tmp_path):
    (tmp_path / "holiday.mp4").write_bytes(b"x")
    with pytest.raises(VidcamError, match="other files"), claim_run_folder(tmp_path, resume=False):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holiday.mp4"]


def test_remove_temporaries_takes_only_atomic_writers_names(tmp_path):
    (tmp_path / "hdr").mkdir()
    leftovers = []
    for target in (tmp_path / "enhanced_hdr10.mp4", tmp_path / "hdr" / "00003.exr"):
        with atomic_path(target) as tmp:  # a real temporary matches the pattern ...
            assert TEMPORARY_NAME.match(tmp.name)
            leftover = target.with_name(f".{target.stem}.killed00.tmp{target.suffix}")  # ... and a killed writer's
            leftover.write_bytes(b"")
            leftovers.append(leftover)
            tmp.write_bytes(b"done")
    keep = [tmp_path / "notes.tmp.mp4", tmp_path / ".hidden", tmp_path / ".a.b.tmp.mp4", tmp_path / "enhanced_hdr10.mp4"]
    for path in keep[:3]:
        path.write_bytes(b"user")
    before = {path: path.read_bytes() for path in keep}
    assert sorted(remove_temporaries(tmp_path)) == sorted(leftovers)
    assert {path: path.read_bytes() for path in keep} == before and not any(p.exists() for p in leftovers)


# ----------------------------------------------------------------------------- live runs, kill -9, resume


def test_live_run_refuses_others_and_kill9_resumes_from_its_checkpoint(tiny_hdr_clip, tmp_path):
    clip = tiny_hdr_clip[0]
    out = tmp_path / "run"
    long_run = ["--steps", "100000", "--set", "train.time_budget=null", "--set", "train.checkpoint_steps=10"]
    first = start_vidcam(tmp_path / "first.log", "enhance", clip, "-o", out, *TINY_FLAGS, *long_run)
    try:
        lock = out / LOCK_NAME
        wait_for(lambda: lock.is_file() and lock.read_text().startswith(f"pid {first.pid} "), first, "the lock")
        # A second run into the same folder while the first decodes: refused, names the first.
        second = vidcam("enhance", clip, "-o", out, *TINY_FLAGS, "--steps", "5")
        assert second.returncode == 2 and f"pid {first.pid}" in one_error_line(second.stderr)

        checkpoint = out / CHECKPOINT_NAME
        wait_for(checkpoint.is_file, first, "the first checkpoint (training started)")
        resume = vidcam("enhance", clip, "-o", out, "--resume", "-q", "--steps", "5")
        assert resume.returncode == 2 and f"pid {first.pid}" in one_error_line(resume.stderr)
        atlas = vidcam("atlas", out, "-o", tmp_path / "atlas_of_live_run", "-q")
        assert atlas.returncode == 2 and f"pid {first.pid}" in one_error_line(atlas.stderr)
        assert not (tmp_path / "atlas_of_live_run").exists()

        saved_at = checkpoint.stat().st_mtime_ns
        wait_for(lambda: checkpoint.stat().st_mtime_ns != saved_at, first, "a periodic checkpoint")
        first.kill()  # SIGKILL: no handler runs
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -9
    assert not (out / COMPLETE_NAME).exists() and not (out / REPORT_NAME).exists()
    config_before = (out / CONFIG_NAME).read_bytes()

    # An unfinished run: atlas works from its checkpoint and says so.
    atlas = vidcam("atlas", out, "-o", tmp_path / "atlas_unfinished")
    assert atlas.returncode == 0 and "unfinished run" in atlas.stderr
    assert (tmp_path / "atlas_unfinished" / "layer0_atlas.png").is_file()

    # A kill during export leaves a temporary behind; settings that shaped the run are refused.
    stale = out / ".enhanced_hdr10.k1ll3d00.tmp.mp4"
    stale.write_bytes(b"")
    changed = vidcam("enhance", clip, "-o", out, "--resume", "--max-side", "32")
    assert changed.returncode == 2 and "--resume cannot change io.max_side" in one_error_line(changed.stderr)
    assert (out / CONFIG_NAME).read_bytes() == config_before and stale.exists()

    resumed = vidcam("enhance", clip, "-o", out, "--resume", "--steps", "1")
    assert resumed.returncode == 0, resumed.stderr
    step = int(re.search(r"resuming from step (\d+) of 1 ", resumed.stderr).group(1))
    assert step >= 10  # continued from the periodic checkpoint, not from step 0
    assert read_report(out).steps == step
    assert not stale.exists()
    saved = yaml.safe_load((out / CONFIG_NAME).read_text())
    assert saved["train"]["steps"] == 1 and saved["io"]["max_side"] is None  # the allowed change, written back
    assert (out / LOSS_PLOT).is_file() and (out / COMPLETE_NAME).is_file()
    assert (out / COMPLETE_NAME).stat().st_mtime_ns >= max(p.stat().st_mtime_ns for p in out.iterdir() if p.is_file())
