"""HDR mode end to end on a tiny clip: the fit, its outputs, the learned camera, resume."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch

from vidcam.testing.baselines import single_frame_hdr
from vidcam.rendering import render_clip
from vidcam.io.images import read_exr, read_png
from vidcam.io.video import read_video
from vidcam.metrics import psnr_mu
from vidcam.models.model import ClipShape, VidcamModel
from vidcam.pipeline import enhance
from vidcam.plan import resolve
from vidcam.training.checkpoint import model_from_checkpoint
from vidcam.training.data import ClipData
from vidcam.training.trainer import Interrupted, Trainer

RUN = {"train.steps": 300, "train.bootstrap_steps": 30}


@pytest.fixture(scope="module")
def hdr_run(tiny_hdr_clip, tmp_path_factory, tiny_config):
    path, truth = tiny_hdr_clip
    outdir = tmp_path_factory.mktemp("runs") / "hdr"
    report = enhance(path, outdir, tiny_config(RUN))
    return outdir, report, truth


def test_outputs_decode_with_right_count_and_size(hdr_run):
    outdir, report, truth = hdr_run
    n, h, w = truth["frames"].shape[:3]
    exrs = sorted((outdir / "hdr").glob("*.exr"))
    assert len(exrs) == n
    assert read_exr(exrs[0]).shape == (h, w, 3)
    sdr = read_video(outdir / "enhanced.mp4")
    assert sdr.frames.shape == (n, h, w, 3)
    with av.open(str(outdir / "enhanced_hdr10.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "hevc"
        frames = list(container.decode(stream))
        assert len(frames) == n
        assert frames[0].format.name == "yuv420p10le"
        assert frames[0].color_trc == 16  # SMPTE ST 2084 (PQ)
        assert frames[0].color_primaries == 9  # BT.2020
    for picture in ("crf.png", "loss.png"):
        assert read_png(outdir / picture).ndim == 3
    saved = json.loads((outdir / "report.json").read_text())
    assert saved["mode"] == "hdr" and len(saved["exposures"]["learned"]) == n
    assert set(saved["timings"]) >= {"decode", "flow", "train", "render", "encode"}
    assert len(saved["highlights"]["filled"]) == n and all(0 <= f <= 1 for f in saved["highlights"]["filled"])


def test_fit_lowers_the_colour_loss(hdr_run):
    _, report, _ = hdr_run
    history = json.loads((hdr_run[0] / "report.json").read_text())["final_losses"]
    state = torch.load(hdr_run[0] / "checkpoint.pt", weights_only=False)
    first, last = state["history"][0]["color"], state["history"][-1]["color"]
    assert last < 0.5 * first
    assert history["color"] == pytest.approx(last)


def test_fit_beats_its_initialisation_and_single_frames(hdr_run, tiny_hdr_clip):
    outdir, _, truth = hdr_run
    hdr = np.stack([read_exr(p) for p in sorted((outdir / "hdr").glob("*.exr"))])
    fitted = psnr_mu(hdr, truth["hdr"])

    model, cfg, state = model_from_checkpoint(outdir / "checkpoint.pt")
    initial = VidcamModel(cfg, ClipShape(**state["shape"]))
    initial.load_state_dict({k: v for k, v in state["model"].items() if k.endswith("base")}, strict=False)
    before = psnr_mu(render_clip(initial.eval(), cfg.render.chunk), truth["hdr"])

    decoded = read_video(tiny_hdr_clip[0]).frames
    single = psnr_mu(single_frame_hdr(decoded, truth["exposures"]), truth["hdr"])
    assert fitted > before + 5
    assert fitted > single


def test_learned_response_is_monotone_and_balanced(hdr_run):
    model, _, state = model_from_checkpoint(hdr_run[0] / "checkpoint.pt")
    z = torch.linspace(*state["z_range"], 512)
    with torch.no_grad():
        curve = model.tone.curve(z)
        mid = model.tone.curve(torch.zeros(1))[0]
    assert torch.all(curve[1:] - curve[:-1] >= -1e-3)
    assert curve[-1].min() - curve[0].max() > 0.5  # spans most of the output range
    assert torch.all((mid - 0.5).abs() < 0.05)


def test_learned_exposures_keep_the_pattern(hdr_run):
    _, report, truth = hdr_run
    learned = np.array(report.exposures["learned"])
    ratio = learned[1::2].mean() / learned[0::2].mean()
    true_ratio = truth["exposures"][1] / truth["exposures"][0]
    assert ratio == pytest.approx(true_ratio, rel=0.5)


class InterruptAt(Trainer):
    """A trainer whose user presses Ctrl-C after a given step."""

    stop_at = 0

    def train_step(self):
        if self.step == self.stop_at:
            raise KeyboardInterrupt
        return super().train_step()


def _trainer(cls, clip, cfg, checkpoint):
    torch.manual_seed(0)
    plan = resolve(cfg, clip / 255.0)
    model = VidcamModel(cfg, ClipShape(*clip.shape[:3], False), np.log([1.0, 4.0] * 3) - np.log(2))
    data = ClipData(clip, {}, torch.device("cpu"), None, cfg.train.seed)
    return cls(cfg, plan, model, data, checkpoint)


def test_resume_continues_bit_for_bit(tiny_hdr_clip, tmp_path, tiny_config):
    clip = tiny_hdr_clip[1]["frames"]
    cfg = tiny_config({"train.steps": 12, "scene.layers": 1, "train.bootstrap_steps": 0, "camera.tone_prefit_steps": 5})

    straight = _trainer(Trainer, clip, cfg, tmp_path / "straight.pt")
    straight.fit()

    InterruptAt.stop_at = 5
    interrupted = _trainer(InterruptAt, clip, cfg, tmp_path / "resumed.pt")
    with pytest.raises(Interrupted, match="--resume"):
        interrupted.fit()
    assert torch.load(tmp_path / "resumed.pt", weights_only=False)["step"] == 5

    resumed = _trainer(Trainer, clip, cfg, tmp_path / "resumed.pt")
    resumed.fit(resume=True)
    assert resumed.step == straight.step == 12
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


class RecordChange(Trainer):
    """A trainer that notes, after every step, whether the atlases' change has left zero."""

    def train_step(self):
        terms = super().train_step()
        last = [net.mlp.last.weight for net in self.model.scene.dynamics.values()]
        self.changed = [*getattr(self, "changed", []), any(bool(w.abs().sum() > 0) for w in last)]
        return terms


def test_atlases_stay_static_until_their_change_is_due(tiny_hdr_clip, tmp_path, tiny_config):
    clip = tiny_hdr_clip[1]["frames"]
    settings = {"train.steps": 8, "scene.layers": 1, "train.bootstrap_steps": 0, "camera.tone_prefit_steps": 5,
                "scene.atlas_dynamics": True}
    for start, first_changed in ((0.0, 0), (0.5, 4)):
        cfg = tiny_config({**settings, "scene.atlas_dynamics_start": start})
        torch.manual_seed(0)
        plan = resolve(cfg, clip / 255.0)
        shape = ClipShape(*clip.shape[:3], False, atlas_dynamics=True)
        model = VidcamModel(cfg, shape, np.log([1.0, 4.0] * 3) - np.log(2))
        trainer = RecordChange(cfg, plan, model, ClipData(clip, {}, torch.device("cpu"), None, 0), tmp_path / "c.pt")
        trainer.fit()
        assert trainer.changed == [step >= first_changed for step in range(8)], start
        assert model.scene.changing  # rendering shows the change
