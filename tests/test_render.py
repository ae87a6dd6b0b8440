"""``vidcam render`` and the Python API on tiny fitted runs: re-rendering at a recorded exposure
reproduces the input, EV scales the irradiance fed to the learned response, the learned blur
reproduces blurred frames, frame ranges, errors, no overwriting; ``vidcam.enhance`` is the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import vidcam
from vidcam import cli
from vidcam.api import run_config
from vidcam.config import Config
from vidcam.io.video import read_video
from vidcam.runlock import LOCK_NAME
from vidcam.metrics import psnr
from vidcam.rendering import render_frame
from vidcam.rerender import make_settings, render_job, resolve_job
from vidcam.run import open_run

# Re-renders show the model; enhanced.mp4 is compared with them, so it must show the model too
# (the fidelity guard would keep the input in places).
HDR_RUN = {"train.steps": 300, "train.bootstrap_steps": 30, "render.fidelity": "off", "render.highlight_fill": False}
DEBLUR_RUN = {"train.steps": 300, "mode": "deblur", "render.fidelity": "off"}
SHORT_SETTINGS = {  # a run of seconds, as dotted settings for both the API and `--set`
    "device": "cpu",
    "flow.backend": "dis",
    "train.batch_size": 2048,
    "train.flow_batch_size": 512,
    "train.reg_batch_size": 256,
    "train.bootstrap_steps": 5,
    "camera.tone_prefit_steps": 100,
}

pytestmark = pytest.mark.usefixtures("one_thread")




@pytest.fixture(scope="module")
def hdr_run(tiny_hdr_clip, tmp_path_factory, tiny_config):
    path, _ = tiny_hdr_clip
    outdir = tmp_path_factory.mktemp("render") / "hdr"
    vidcam.enhance(path, outdir, config=tiny_config(HDR_RUN))
    return outdir, read_video(path).frames_float()


@pytest.fixture(scope="module")
def deblur_run(tiny_blur_clip, tmp_path_factory, tiny_config):
    path, _ = tiny_blur_clip
    outdir = tmp_path_factory.mktemp("render") / "deblur"
    vidcam.enhance(path, outdir, config=tiny_config(DEBLUR_RUN))
    return outdir, read_video(path).frames_float()


def rendered(run, **settings) -> np.ndarray:
    """[N,H,W,3] float display values of a re-render (no file written)."""
    return np.stack(list(render_job(run, resolve_job(run, make_settings(**settings)))))


def model_rerender(run, t: int) -> np.ndarray:
    """The fit's own reconstruction of input frame t: the model's forward pass, as in training."""
    return render_frame(run.model, t, run.chunk, lambda xy, frame: run.model(xy, frame)["rgb"])


def learned_exposures(run) -> np.ndarray:
    return run.model.exposures.all().exp().detach().numpy()


def vidcam_cli(*args: str) -> int:
    return cli.main([str(arg) for arg in args])


def test_render_at_a_recorded_exposure_reproduces_that_frame(hdr_run):
    outdir, frames = hdr_run
    run = open_run(outdir, "cpu")
    exposures = learned_exposures(run)
    for t in (0, 1):  # a short and a long exposure
        own = rendered(run, exposure=float(exposures[t]), frames=f"{t}:{t + 1}")[0]
        fit = psnr(model_rerender(run, t), frames[t])
        assert fit > 25
        assert psnr(own, frames[t]) >= fit - 0.05
        # the exposure matters: the clip's mean exposure does not reproduce this frame
        assert psnr(rendered(run, ev=0, frames=f"{t}:{t + 1}")[0], frames[t]) < fit - 5


def test_cli_render_at_a_recorded_exposure_reproduces_that_frame(hdr_run):
    outdir, frames = hdr_run
    run = open_run(outdir, "cpu")
    t = 1
    exposure = json.loads((outdir / "report.json").read_text())["exposures"]["learned"][t]
    out = outdir / "frame1.mp4"
    assert vidcam_cli("render", outdir, "--exposure", repr(exposure), "--frames", f"{t}:{t + 1}", "-o", out, "-q") == 0
    video = read_video(out).frames_float()
    assert video.shape == (1, *frames.shape[1:])
    assert psnr(video[0], frames[t]) >= psnr(model_rerender(run, t), frames[t]) - 1.5  # H.264 at crf 16 (4:2:0 chroma: 1.2 dB measured)


class ToneInputs:
    """Records what the learned tone mapper is fed: z = log irradiance + log exposure."""

    def __init__(self, tone):
        self.tone, self.forward, self.z = tone, tone.forward, []

    def __call__(self, log_irradiance, log_exposure):
        self.z.append((log_irradiance.float() + log_exposure.float().reshape(-1, 1)).numpy().copy())
        return self.forward(log_irradiance, log_exposure)

    def take(self) -> np.ndarray:
        z, self.z = np.concatenate(self.z), []
        return z


def test_one_ev_doubles_the_irradiance_fed_to_the_response(hdr_run, monkeypatch):
    run = open_run(hdr_run[0], "cpu")
    spy = ToneInputs(run.model.tone)
    monkeypatch.setattr(run.model.tone, "forward", spy)
    base = rendered(run, ev=0, frames="2:3")
    z0 = spy.take()
    brighter = rendered(run, ev="+1", frames="2:3")
    z1 = spy.take()
    np.testing.assert_allclose(z1 - z0, math.log(2), atol=1e-5)
    # the same read off the output: invert the learned curve where neither render is clipped
    z = torch.linspace(*run.state["z_range"], 4096)
    with torch.no_grad():
        curve = run.model.tone.curve(z).numpy()
    for c in range(3):
        inside = (base[..., c] > 0.1) & (base[..., c] < 0.9) & (brighter[..., c] > 0.1) & (brighter[..., c] < 0.9)
        assert inside.sum() > 50
        shift = np.interp(brighter[..., c][inside], curve[:, c], z) - np.interp(base[..., c][inside], curve[:, c], z)
        assert np.median(shift) == pytest.approx(math.log(2), abs=0.05)


def test_ev_ramp_is_linear_over_the_rendered_frames(hdr_run, monkeypatch):
    run = open_run(hdr_run[0], "cpu")
    spy = ToneInputs(run.model.tone)
    monkeypatch.setattr(run.model.tone, "forward", spy)
    rendered(run, ev=0, frames="1:5")
    z0 = spy.take().reshape(4, -1, 3)
    rendered(run, ev="0:+2", frames="1:5")
    z_ramp = spy.take().reshape(4, -1, 3)
    np.testing.assert_allclose((z_ramp - z0).mean(axis=(1, 2)), np.linspace(0, 2, 4) * math.log(2), atol=1e-5)


def test_ev_scales_the_linear_hdr_before_a_display_operator(hdr_run, monkeypatch):
    from vidcam import rerender

    run = open_run(hdr_run[0], "cpu")
    fed = []
    display = rerender.display_linear
    monkeypatch.setattr(rerender, "display_linear", lambda hdr, *args: fed.append(hdr) or display(hdr, *args))
    aces = rendered(run, tonemap="aces", frames="0:2")
    brighter = rendered(run, tonemap="aces", ev=1, frames="0:2")
    np.testing.assert_allclose(fed[2:], 2 * np.stack(fed[:2]), rtol=1e-5)
    assert brighter.mean() > aces.mean() + 0.05
    # at ev 0 the operator shows what enhanced.mp4 shows
    enhanced = read_video(hdr_run[0] / "enhanced.mp4").frames_float()[:2]
    assert np.abs(aces - enhanced).mean() < 0.02


def test_with_blur_reproduces_the_input_better_than_the_sharp_render(deblur_run):
    outdir, frames = deblur_run
    run = open_run(outdir, "cpu")
    exposures = learned_exposures(run)
    with_blur = rendered(run, with_blur=True)
    sharp = rendered(run, tonemap="camera")
    assert psnr(with_blur, frames) > psnr(sharp, frames) + 1.0
    t = 2
    exact = rendered(run, with_blur=True, exposure=float(exposures[t]), frames=f"{t}:{t + 1}")[0]
    assert psnr(exact, frames[t]) >= psnr(model_rerender(run, t), frames[t]) - 0.05


def test_with_blur_keeps_an_exposure_change(deblur_run):
    run = open_run(deblur_run[0], "cpu")
    assert rendered(run, with_blur=True, ev=1, frames="0:1").mean() > rendered(run, with_blur=True, frames="0:1").mean() + 0.05


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ev", "1", "--exposure", "2"], "not both"),
        (["--ev", "bright"], "--ev"),
        (["--ev", "1:2:3"], "--ev"),
        (["--exposure", "0"], "positive"),
        (["--with-blur"], "without a blur model"),
        (["--frames", "2:99"], "out of range"),
        (["--frames", "4:2"], "selects none"),
        (["--frames", "two"], "--frames"),
        (["--ev", "1", "-o", "elsewhere/x.mp4"], "does not exist"),
        (["--ev", "1", "-o", "x.txt"], "video file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(hdr_run, capsys, tmp_path, args, message):
    args = [str(tmp_path / a) if a.endswith((".mp4", ".txt")) else a for a in args]
    assert vidcam_cli("render", hdr_run[0], *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidcam: error:") and message in err[0]


def test_missing_run_is_one_line_and_exit_2(tmp_path, capsys):
    assert vidcam_cli("render", tmp_path / "no_run", "--ev", "1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not found" in err[0]


def test_frames_give_the_right_count_and_negative_ranges_parse(hdr_run, tmp_path):
    outdir, frames = hdr_run
    assert vidcam_cli("render", outdir, "--ev", "-1:1", "--frames", "1:4", "-o", tmp_path / "a.mp4", "-q") == 0
    assert read_video(tmp_path / "a.mp4").frames.shape == (3, *frames.shape[1:])
    assert vidcam_cli("render", outdir, "--frames", "-2:", "-o", tmp_path / "b.mp4", "-q") == 0
    assert read_video(tmp_path / "b.mp4").n_frames == 2


def test_existing_output_is_refused_without_overwrite(hdr_run, capsys):
    outdir, frames = hdr_run
    assert vidcam_cli("render", outdir, "--ev", "+1", "-q") == 0
    out = outdir / "render_ev+1_camera.mp4"
    assert read_video(out).n_frames == len(frames)
    before = out.read_bytes()
    assert vidcam_cli("render", outdir, "--ev", "+1", "--frames", "0:2", "-o", out, "-q") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert vidcam_cli("render", outdir, "--ev", "+1", "--frames", "0:2", "-o", out, "--overwrite", "-q") == 0
    assert read_video(out).n_frames == 2
    assert not [p for p in outdir.iterdir() if p.name.startswith(".") and p.name != LOCK_NAME]  # no temporaries left


def test_the_input_video_is_never_overwritten(hdr_run, tiny_hdr_clip, capsys):
    path = tiny_hdr_clip[0]
    before = path.read_bytes()
    assert vidcam_cli("render", hdr_run[0], "--ev", "1", "-o", path, "--overwrite") == 2
    assert "input video" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_audio_only_with_the_whole_clip(hdr_run, tiny_hdr_clip, monkeypatch, tmp_path):
    from vidcam import rerender

    run = open_run(hdr_run[0], "cpu")
    run.report.audio = str(tiny_hdr_clip[0])  # pretend the input had sound
    sound = []
    monkeypatch.setattr(rerender, "write_sdr_video", lambda path, frames, fps, crf, audio: sound.append(audio))
    vidcam.render(run, tmp_path / "whole.mp4", ev=1)
    vidcam.render(run, tmp_path / "part.mp4", ev=1, frames=slice(1, 3))
    assert sound == [tiny_hdr_clip[0], None]


# ----------------------------------------------------------------------------- Python API


def test_import_is_light_and_documented():
    code = "import sys, vidcam; assert 'torch' not in sys.modules; print(len(vidcam.enhance.__doc__))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 200
    for name in ("enhance", "render", "open_run", "Config", "load_config"):
        assert getattr(vidcam, name).__doc__
    with pytest.raises(AttributeError):
        vidcam.no_such_name  # noqa: B018


def test_settings_dotted_nested_and_config_objects_agree(tmp_path):
    dotted = run_config(tmp_path, "fast", None, {"train.steps": 123, "camera.blur_kernel": 3}, False)
    nested = run_config(tmp_path, "fast", None, {"train": {"steps": 123}, "camera": {"blur_kernel": 3}}, False)
    assert dotted.to_dict() == nested.to_dict() and dotted.train.steps == 123
    base = Config()
    from_object = run_config(tmp_path, "fast", base, {"train.steps": 7}, False)
    assert from_object.train.steps == 7 and base.train.steps != 7  # the caller's Config is not changed


def test_api_and_cli_write_the_same_run(tiny_hdr_clip, tmp_path):
    path, _ = tiny_hdr_clip
    report = vidcam.enhance(path, tmp_path / "api", preset="fast", settings={"train": {"steps": 20}}, **SHORT_SETTINGS)
    sets = [item for key, value in SHORT_SETTINGS.items() for item in ("--set", f"{key}={value}")]
    assert vidcam_cli("enhance", path, "-o", tmp_path / "cli", "--preset", "fast", "--steps", "20", *sets, "-q") == 0
    api_saved = json.loads((tmp_path / "api" / "report.json").read_text())
    cli_saved = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert set(api_saved) == set(cli_saved) == set(report.to_dict())
    for field in ("input", "mode", "frames", "size", "fps", "plan", "flow", "steps", "config", "tonemap", "audio"):
        assert api_saved[field] == cli_saved[field], field
    assert report.steps == 20 and report.to_dict()["config"] == api_saved["config"]
    assert sorted(p.name for p in (tmp_path / "api").iterdir()) == sorted(p.name for p in (tmp_path / "cli").iterdir())
