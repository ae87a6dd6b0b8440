"""The fidelity guard: no frame worse than its input where the scene model fails, the model's gain kept where it holds."""

from __future__ import annotations

import dataclasses
import json
import math

from vidcam.testing import synthetic as make_synthetic
import numpy as np
import pytest
import torch
from torch import Tensor

from vidcam.config import RenderConfig, load_config
from vidcam.fidelity import (
    FidelityGuard,
    FrameRenders,
    InverseTone,
    blend_by_means,
    blur_loss,
    detail_energy,
    fine_to_coarse,
    sharp_by_ratio,
    sharp_frames,
    gaussian_blur,
    guard_irradiance,
    guard_pixels,
    measured_model_error,
    model_weight,
    _psf_blur,
    render_through_camera,
)
from vidcam.io.encode import write_sdr_video
from vidcam.io.video import read_video
from vidcam.metrics import psnr
from vidcam.models.model import ClipShape, VidcamModel
from vidcam.pipeline import enhance
from vidcam.rendering import through_camera, render_frame, to_uint8
from vidcam.training.checkpoint import model_from_checkpoint

TRAINING = {"train.steps": 600, "train.log_every": 50, "mode": "deblur"}  # as tests/test_deblur.py: the 128x72 clip gains about 2 dB
INTRUDER_SIDE = 32
MARGIN_DB = 0.3  # the guard's promise: no frame worse than its input by more than this


def _intruder_frame(clip: dict) -> int:
    """The sharpest frame: there the input is nearly the truth, so losing the intruder costs the model most."""
    return int(np.argmin(clip["blur_px"]))


def _with_intruder(clip: dict) -> dict:
    """A textured square that is in one frame only (recorded and truth alike): no atlas can hold it."""
    clip = dict(clip, frames=clip["frames"].copy(), sharp=clip["sharp"].copy())
    yy, xx = np.mgrid[0:INTRUDER_SIDE, 0:INTRUDER_SIDE]
    checker = np.where(((yy // 4) + (xx // 4)) % 2 == 0, 235, 20).astype(np.uint8)
    patch = np.stack([checker] * 3, axis=-1)  # grey: 4:2:0 video keeps it (a coloured checker's chroma it would not)
    for key in ("frames", "sharp"):
        clip[key][_intruder_frame(clip), 20 : 20 + INTRUDER_SIDE, 50 : 50 + INTRUDER_SIDE] = patch
    return clip


def _scores(outdir, truth: dict):
    """Per frame PSNR against truth: input, model-only render, guarded render (no codec in between)."""
    model, cfg, _ = model_from_checkpoint(outdir / "checkpoint.pt")
    frames = truth["frames"]
    guard = FidelityGuard(model, frames, cfg.render)
    rows = []
    with torch.no_grad():
        for t in range(len(frames)):
            model_only = to_uint8(render_frame(model, t, cfg.render.chunk, through_camera(model)))
            guarded = to_uint8(guard(t, camera=True))
            rows.append([psnr(x / 255.0, truth["sharp"][t] / 255.0) for x in (frames[t], model_only, guarded)])
    print("\nframe input model guarded confidence:")
    for t, row in enumerate(rows):
        print(t, *(f"{v:.2f}" for v in row), guard.frame_stats[t]["confidence"])
    return np.array(rows), guard


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_config):
    base = make_synthetic.make_blur_clip(seed=5, max_blur_px=6.0, n_frames=8, height=72, width=128)
    results = {}
    for name, clip in (("plain", base), ("intruder", _with_intruder(base))):
        path = tmp_path_factory.mktemp("clips") / f"{name}.mp4"
        make_synthetic.write_clip(clip, path, video_crf=0)  # truth and input differ by blur and noise only
        clip = dict(clip, frames=read_video(path).frames)
        outdir = tmp_path_factory.mktemp("runs") / name
        enhance(path, outdir, tiny_config(TRAINING))
        results[name] = (outdir, clip)
    return results


def test_unrepresentable_frame_keeps_its_input_quality(runs):
    outdir, clip = runs["intruder"]
    scores, guard = _scores(outdir, clip)
    input_db, model_db, guarded_db = scores.T
    t = _intruder_frame(clip)
    # the guard keeps every frame near its input ...
    assert np.all(guarded_db >= input_db - MARGIN_DB), np.round(guarded_db - input_db, 2)
    # ... where the clip really defeats the scene model on one frame
    assert model_db[t] < input_db[t] - 0.5  # (measured 0.98-1.3 dB below, with thread count and code version)
    confidence = guard.confidence[t] / 255.0
    intruder = confidence[20 : 20 + INTRUDER_SIDE, 50 : 50 + INTRUDER_SIDE]
    assert intruder.mean() < 0.5 * confidence.mean() + 0.05


def test_representable_clip_still_gains(runs):
    outdir, clip = runs["plain"]
    scores, _ = _scores(outdir, clip)
    input_db, model_db, guarded_db = scores.T
    assert np.all(guarded_db >= input_db - MARGIN_DB), np.round(guarded_db - input_db, 2)
    whole = lambda k: -10 * np.log10(np.mean(10 ** (-scores[:, k] / 10)))  # noqa: E731  clip PSNR from per-frame MSEs
    assert whole(2) > whole(0) + 1.0


def test_run_writes_confidence_video_and_report(runs):
    outdir, clip = runs["intruder"]
    report = json.loads((outdir / "report.json").read_text())["fidelity"]
    n = len(clip["frames"])
    assert len(report["rerender_psnr"]) == len(report["confidence"]) == n
    assert all(0.0 <= c <= 1.0 for c in report["confidence"])
    assert set(report["guarded_frames"]) <= set(range(n))
    confidence = read_video(outdir / "confidence.mp4").frames
    assert confidence.shape == clip["frames"].shape


def test_frames_kept_whole_come_out_as_the_input(runs, tmp_path):
    """Kept whole by the guard, a frame of enhanced.mp4 is the input again, up to a light re-encode:
    through the input's own 4:2:0 planes at the input-look crf, where a plain re-encode from RGB at
    crf 16 (what this writer did before) lost 7 dB against the input on this noisy clip."""
    outdir, clip = runs["plain"]
    kept = json.loads((outdir / "report.json").read_text())["fidelity"]["guarded_frames"]
    assert kept  # the sharpest frame at least (sharp_frames)
    enhanced = read_video(outdir / "enhanced.mp4").frames
    write_sdr_video(tmp_path / "plain.mp4", clip["frames"], 24, crf=16)
    plain = read_video(tmp_path / "plain.mp4").frames
    for t in kept:
        fidelity = psnr(enhanced[t] / 255.0, clip["frames"][t] / 255.0)
        assert fidelity > psnr(plain[t] / 255.0, clip["frames"][t] / 255.0) + 3.0, (t, fidelity)


def _tiny_model(blur: bool = False) -> VidcamModel:
    cfg = load_config("fast", overrides={"camera.tone_prefit_steps": 200})
    model = VidcamModel(cfg, ClipShape(2, 16, 24, blur))
    model.tone.prefit(200)
    return model.eval()


def test_inverse_tone_inverts_the_learned_response():
    model = _tiny_model()
    z = torch.linspace(-3, 3, 101)
    with torch.no_grad():
        pixels = model.tone.curve(z).numpy()
    recovered = InverseTone(model)(pixels)
    assert np.abs(recovered - z.numpy()[:, None]).max() < 0.02


def test_hdr_guard_trusts_the_input_where_the_model_fails_and_the_model_where_clipped():
    model = _tiny_model()
    h, w = 16, 24
    truth = torch.full((h, w, 3), 0.2)
    truth[:, 12:] = 20.0  # clipped in the input
    truth[4:8, 2:6] = 0.6  # a detail the model misses
    model_irradiance = truth.clone()
    model_irradiance[4:8, 2:6] = 0.2
    model_irradiance[:, 12:] = 10.0  # the model's guess where the input is clipped
    with torch.no_grad():
        tone = lambda e: model.tone(e.reshape(-1, 3).log(), torch.zeros(h * w)).reshape(h, w, 3)  # noqa: E731
        observed, recorded = tone(truth), tone(model_irradiance)
    observed[:, 12:] = 1.0
    renders = FrameRenders(model_irradiance, recorded, recorded, observed, 0.0)
    rc = RenderConfig()
    verdict = model_weight(observed, renders, rc)
    out = guard_irradiance(observed, renders, verdict, InverseTone(model), rc)
    assert torch.allclose(out[5:7, 3:5], torch.tensor(0.6), rtol=0.1)  # the input's irradiance
    assert torch.allclose(out[:, 14:], torch.tensor(10.0))  # the model's: the input is clipped
    assert torch.allclose(out[12:, 8:10], torch.tensor(0.2), rtol=0.05)  # both agree


def test_sharp_frame_cannot_claim_a_blur_gain():
    detail = np.array([1.0, 0.4, 1.0, 0.95, 0.2])
    assert blur_loss(detail, 1).tolist() == pytest.approx([0.0, 0.6, 0.0, 0.05, 0.75])
    # kept whole: within 15 % of the most detailed frame one either side (0.95 against 1.0)
    assert sharp_frames(detail[:, None], 1, 0.15).tolist() == [True, False, True, True, False]
    assert sharp_frames(detail[:, None], 1, 0.0).tolist() == [True, False, True, False, False]
    # by tiles: a detailed object in one tile of frame 0 does not make frame 1 look blurred ...
    tiles = np.ones((2, 16))
    tiles[0, 5] = 10.0
    assert sharp_frames(tiles, 1, 0.15).tolist() == [True, True]
    # ... and a frame with half the detail in most tiles is blurred
    tiles[1, :12] = 0.5
    assert sharp_frames(tiles, 1, 0.15).tolist() == [True, False]
    assert detail_energy(np.zeros((8, 8, 3)), 1.0, grid=2).shape == (4,)


def test_sharp_frame_with_less_texture_is_still_found_sharp():
    """A sharp frame showing less texture than its neighbour (part of it low-contrast, as when a
    rider covers the trees) has less detail energy, but the same fine-to-coarse ratio; blur lowers the ratio."""
    rng = np.random.default_rng(1)
    texture = gaussian_blur(torch.from_numpy(rng.random((64, 96, 3), dtype=np.float32)), 0.7).numpy()
    less = texture.copy()
    less[:, :40] = 0.5 + 0.3 * (less[:, :40] - 0.5)
    blurred = gaussian_blur(torch.from_numpy(texture), 2.0).numpy()
    frames = [texture, less, blurred]
    tiles = np.stack([detail_energy(f, 2.0, 4) for f in frames])
    assert sharp_frames(tiles, 2, 0.15).tolist() == [True, False, False]  # detail alone misses the second
    ratio = np.array([fine_to_coarse(f) for f in frames])
    assert sharp_by_ratio(ratio, 2, 0.12).tolist() == [True, True, False]


def test_error_measured_on_a_sharp_frame_bounds_trust_where_blur_hides_it():
    """A render wrong in a patch that the blur of the frame hides from the re-render residual: the
    residual alone trusts the render there; the error measured on a sharp frame nearby does not."""
    rc = RenderConfig()
    h, w = 48, 64
    truth = torch.rand(h, w, 3, generator=torch.Generator().manual_seed(0))
    blurred = gaussian_blur(truth, 2.0)
    wrong = truth.clone()
    wrong[16:32, 20:40] = 1 - wrong[16:32, 20:40]  # the render's error, the same in every frame
    patch = (slice(18, 30), slice(22, 38))
    # the blurred frame: its re-render matches the input (the error is blurred away, the extreme case)
    renders = FrameRenders(wrong, wrong, blurred, gaussian_blur(blurred, 2.0), 0.0)
    # the sharp frame nearby: the input is the truth, so the render's error shows
    measured = measured_model_error(truth, FrameRenders(wrong, wrong, wrong, truth, 0.0), rc)
    assert measured[patch].mean() > 0.05 and measured[:6, :6].max() == 0
    trusting = model_weight(blurred, renders, rc, frame_rule=False)
    floored = model_weight(blurred, renders, rc, frame_rule=False, model_error_floor=measured)
    assert trusting.weight[patch].mean() > 0.9
    assert floored.weight[patch].mean() < 0.2
    assert torch.allclose(floored.weight[:6, :6], trusting.weight[:6, :6])  # where the render is right nothing changes
    error = lambda v: (guard_pixels(blurred, renders, v, rc)[patch] - truth[patch]).square().mean()  # noqa: E731
    assert error(floored) < 0.5 * error(trusting)


def test_trust_falls_at_edges_where_a_long_psf_leaves_the_render_free_to_shift():
    """A blurred frame whose render sits half a pixel off the truth along its blur path, re-rendering the
    input exactly (the shifted path makes up for it): the residual trusts the render everywhere; the
    misregistration term lowers trust at its edges in proportion to the PSF's size, not in flat parts,
    not where the PSF is a point, and never decides the frame rule."""
    rc = RenderConfig()
    h, w = 48, 64
    truth = torch.full((h, w, 3), 0.3)
    truth[:, 32:] = 0.7  # one vertical edge
    shifted = truth.clone()
    shifted[:, 32] = 0.5  # the edge half a pixel off
    observed = gaussian_blur(truth, 2.0)
    edge, flat = (slice(8, 40), slice(30, 35)), (slice(8, 40), slice(2, 8))

    def verdict(psf_variance: float, misregistration: float):
        renders = FrameRenders(shifted, shifted, observed, gaussian_blur(observed, 2.0), 0.0, torch.full((h, w), psf_variance))
        return model_weight(observed, renders, rc, misregistration=misregistration)

    plain, long_psf, longer_psf, point_psf = verdict(3.0, 0.0), verdict(3.0, 0.15), verdict(12.0, 0.15), verdict(0.0, 0.15)
    assert plain.weight[edge].mean() > 0.95
    assert long_psf.weight[edge].mean() < 0.95 * plain.weight[edge].mean()
    assert longer_psf.weight[edge].mean() < long_psf.weight[edge].mean()
    assert torch.allclose(point_psf.weight, plain.weight)
    assert torch.allclose(longer_psf.weight[flat], plain.weight[flat], atol=1e-3)
    assert plain.guarded == long_psf.guarded == longer_psf.guarded
    error = lambda v: (guard_pixels(observed, FrameRenders(shifted, shifted, observed, observed, 0.0), v, rc)[edge] - truth[edge]).square().mean()  # noqa: E731
    assert error(longer_psf) < error(plain)


def _blurred_frame_renders(blur_rms: float, model_rms: float) -> tuple[Tensor, FrameRenders]:
    """A blurred frame's renders with set error levels: its render's sharp-minus-blurred difference
    (the blur error the model sees) ``blur_rms``, its re-render residual ``model_rms``."""
    generator = torch.Generator().manual_seed(3)
    noise = lambda: torch.randn(48, 64, 3, generator=generator)  # noqa: E731
    observed = 0.5 + 0.1 * noise()
    recorded = observed + model_rms * noise()
    sharp = recorded + blur_rms * noise()
    return observed, FrameRenders(sharp, sharp, recorded, observed + blur_rms * noise(), 0.0)


def test_frame_kept_whole_when_the_model_error_dwarfs_the_blur_error():
    """A lightly blurred frame whose render is estimated at about 2.5x the input's blur error: blending
    independent errors would still gain 1.5 dB, so the local rule blends; with the errors correlated
    as on real clips one weight per frame would not gain, and the frame is kept whole. A more heavily
    blurred frame with the same model error still blends."""
    rc = RenderConfig()
    light, light_renders = _blurred_frame_renders(0.02, 0.03)
    kept = model_weight(light, light_renders, rc)
    independent = model_weight(light, light_renders, dataclasses.replace(rc, fidelity_correlation=0.0))
    assert kept.guarded and float(kept.weight.max()) == 0.0
    assert not independent.guarded and float(independent.weight.mean()) > 0.2
    heavy, heavy_renders = _blurred_frame_renders(0.04, 0.03)
    blended = model_weight(heavy, heavy_renders, rc)
    assert not blended.guarded and float(blended.weight.mean()) > 0.4
    # the rule itself: independent errors always gain, fully correlated equal errors never do
    assert blend_by_means(1.0, 1.0, 1.0, 0.0) == pytest.approx(0.5)
    assert blend_by_means(1.0, 1.0, 1.0, 1.0) == pytest.approx(1.0)


def test_guard_measures_the_nearest_sharp_frame_in_order():
    """Deblurring frame by frame, each blurred frame is bounded by the nearest sharp frame's measured
    error (rendered ahead when it comes later), and measurements behind the window are dropped."""
    rng = np.random.default_rng(0)
    frames = np.full((9, 16, 24, 3), 128, np.uint8)
    for t in (0, 6):  # sharp frames: detail; the others flat, as if blurred
        frames[t] = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    model = VidcamModel(load_config("fast"), ClipShape(9, 16, 24, True)).eval()
    rc = RenderConfig(fidelity_neighbours=2)
    guard = FidelityGuard(model, frames, rc)
    with torch.no_grad():
        for t in range(9):
            guard(t, camera=True)
            floor = guard._sharp_frame_error(t)
            nearest = {0: None, 1: 0, 2: 0, 3: None, 4: 6, 5: 6, 6: None, 7: 6, 8: 6}[t]
            if t in (0, 6):
                continue
            if nearest is None:
                assert floor is None, t
            else:
                assert floor is guard._measured[nearest], t
            assert min(guard._measured, default=t) >= t - rc.fidelity_neighbours


def test_a_render_that_resolves_less_than_the_truth_is_weighed_against_the_blur_measured_on_sharp_content():
    """A blurred frame whose render is sharper than the input but softer than the truth. Its own
    sharp-minus-re-blurred render shows only the blur the render resolves, so against a measured
    model-error floor the frame is kept whole; the blur error measured on a sharp frame of like
    content (``content_blur``) is the input's, and the guard blends and gains."""
    rc = RenderConfig()
    texture = lambda seed: gaussian_blur(torch.rand(48, 64, 3, generator=torch.Generator().manual_seed(seed)), 0.6)  # noqa: E731
    truth, sharp_neighbour = texture(0), texture(1)
    observed = gaussian_blur(truth, 2.0)
    sharp = gaussian_blur(truth, 1.2)
    renders = FrameRenders(sharp, sharp, gaussian_blur(sharp, 1.6), gaussian_blur(observed, 2.0), 0.0)
    error = lambda image: float((image - truth).square().mean())  # noqa: E731
    floor = torch.full((48, 64), 0.8 * error(sharp))  # a sharp frame's render measured a little better
    content_blur = float((gaussian_blur(sharp_neighbour, 2.0) - sharp_neighbour).square().mean())
    assert content_blur == pytest.approx(error(observed), rel=0.1)
    alone = model_weight(observed, renders, rc, model_error_floor=floor)
    measured = model_weight(observed, renders, rc, model_error_floor=floor, content_blur=content_blur)
    assert alone.guarded and not measured.guarded
    gain_db = 10 * math.log10(error(observed) / error(guard_pixels(observed, renders, measured, rc)))
    assert gain_db > 0.5
    # a render no better than the input stays unused whatever the blur measured
    bad = torch.full((48, 64), 1.5 * error(observed))
    assert model_weight(observed, renders, rc, model_error_floor=bad, content_blur=content_blur).guarded


def test_guard_measures_a_blurred_frames_psf_on_the_nearest_sharp_input_frame():
    """``content_blur(t)``: what frame t's learned PSF changes in the nearest sharp input frame, less
    noise. On a static scene whose blurred frame is its sharp frame through that PSF, it is the
    blurred frame's true error; none without a sharp frame near, or with the setting off."""
    rng = np.random.default_rng(0)
    sharp_frame = 0.5 + 0.25 * gaussian_blur(torch.from_numpy(rng.random((24, 32, 3), dtype=np.float32)) - 0.5, 0.6)
    model = VidcamModel(load_config("fast"), ClipShape(9, 24, 32, True)).eval()
    with torch.no_grad():
        model.blur.frame_coefficients[2, 0] = torch.tensor([0.5, 0.2])  # frame 2: a path about 5 px long
        (blurred,), _ = _psf_blur(model, 2, [sharp_frame], 4096)
    frames = np.full((9, 24, 32, 3), 128, np.uint8)  # the others flat, as if blurred
    frames[0] = np.round(sharp_frame.numpy() * 255)
    frames[2] = np.round(blurred.numpy() * 255)
    rc = RenderConfig(fidelity_neighbours=3)
    guard = FidelityGuard(model, frames, rc)
    guard._measure_input_blur()
    assert guard.unchanged_frames() == [0]
    truth_error = float(np.mean(((frames[2].astype(np.float32) - frames[0]) / 255) ** 2))
    assert truth_error > 5e-4  # small enough that the noise allowance, 1e-4, shows beyond rel=0.02
    with torch.no_grad():
        assert guard.content_blur(2) == pytest.approx(truth_error - rc.fidelity_noise**2, rel=0.02)
        assert guard.content_blur(5) is None  # frame 0 is 5 frames away
        off = FidelityGuard(model, frames, dataclasses.replace(rc, fidelity_sharp_content=False))
        off._measure_input_blur()
        assert off.content_blur(2) is None


@pytest.mark.parametrize("fast", [True, False])
def test_render_error_is_at_least_what_the_atlases_change_adds(fast):
    """With changing atlases the guard takes the render's error to be at least ``fidelity_change``
    times the local energy of what the change adds to it: nothing while the change is zero, in
    proportion to the setting once it is not, and the scene is left changing."""
    frames = np.random.default_rng(0).integers(0, 256, (9, 16, 24, 3), dtype=np.uint8)
    model = VidcamModel(load_config("fast"), ClipShape(9, 16, 24, True, atlas_dynamics=True)).eval()
    observed = torch.from_numpy(frames[4].astype(np.float32) / 255)

    def change_error(setting: float) -> Tensor:
        guard = FidelityGuard(model, frames, RenderConfig(fast=fast, fidelity_change=setting))
        renders = render_through_camera(model, 4, 4096, observed, guard.render(4))
        return guard.change_error(4, renders)

    with torch.no_grad():
        assert float(change_error(1.0).abs().max()) < 1e-10  # the change starts at exactly zero
        for parameter in model.scene.dynamics.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
        once, twice = change_error(0.5), change_error(1.0)
        assert model.scene.changing
        assert float(once.mean()) > 1e-6
        torch.testing.assert_close(twice, 2 * once)
        guard = FidelityGuard(model, frames, RenderConfig(fast=fast))
        renders = render_through_camera(model, 4, 4096, observed, guard.render(4))
        assert bool((guard._error_floor(4, renders) >= guard.change_error(4, renders)).all())
        assert FidelityGuard(model, frames, RenderConfig(fast=fast, fidelity_change=0))._error_floor(4, renders) is None


@pytest.mark.parametrize("fast", [True, False])
def test_guard_renders_a_sharp_frame_ahead_with_the_runs_renderer(monkeypatch, fast):
    """A blurred frame's error floor comes from a sharp frame the stream has not reached yet; the
    guard renders it as the run renders (fast: baked atlases, not every network at every pixel),
    so the floor is measured on the picture the output is made of."""
    calls = []
    monkeypatch.setattr("vidcam.fidelity.render_frame", lambda *args: calls.append(args))
    monkeypatch.setattr("vidcam.fast_render.render_frame", lambda model, t, chunk: calls.append(t) or np.ones((16, 24, 3), np.float32))
    rng = np.random.default_rng(0)
    frames = np.full((9, 16, 24, 3), 128, np.uint8)
    frames[6] = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)  # the only sharp frame
    model = VidcamModel(load_config("fast"), ClipShape(9, 16, 24, True)).eval()
    guard = FidelityGuard(model, frames, RenderConfig(fidelity_neighbours=2, fast=fast))
    with torch.no_grad():
        guard(4, camera=True, sharp_irradiance=np.ones((16, 24, 3), np.float32))
    assert 6 in guard._measured
    assert calls == ([] if fast else [6])


def test_gaussian_blur_keeps_shape_and_constants():
    image = torch.rand(10, 12, 3)
    assert gaussian_blur(image, 2.0).shape == image.shape
    assert torch.allclose(gaussian_blur(torch.full((10, 12, 1), 0.3), 2.0), torch.tensor(0.3))
    with pytest.raises(ValueError):
        gaussian_blur(torch.rand(10, 12), 2.0)


def test_frame_ranges():
    from vidcam.log import frame_ranges

    assert frame_ranges([5, 0, 1, 2, 7, 8]) == "0-2, 5, 7-8"
    assert frame_ranges([]) == ""


def test_blurred_render_matches_the_models_own_forward_pass():
    """The PSF applied to the sharp render's image agrees with the model's re-render (scene sampled per PSF sample)."""
    from vidcam.fidelity import render_through_camera

    torch.manual_seed(0)
    model = _tiny_model(blur=True)
    with torch.no_grad():
        model.blur.frame_coefficients.mul_(3.0)  # a kernel a few pixels long, not a delta
        for p in model.scene.parameters():  # some texture: the untrained scene is flat
            p.add_(0.1 * torch.randn_like(p))
        renders = render_through_camera(model, 1, 4096, torch.rand(16, 24, 3))
        xy = model.frame.pixel_centres()
        direct = model(xy, torch.ones(len(xy), dtype=torch.long))["rgb"].reshape(16, 24, 3)
    inner = (slice(4, -4), slice(4, -4))  # the border is clamped in the image, free in the scene
    assert (renders.recorded[inner] - direct[inner]).abs().max() < 0.01
    assert (renders.recorded - renders.sharp).abs().max() > 1e-4  # the kernel did blur


def _guard_with_stats(
    blur: bool, rerender_psnr: float, confidence: float, tmp_path, guarded: bool = False, sharp: bool = False
) -> None:
    model = _tiny_model(blur)
    frames = np.zeros((2, 16, 24, 3), np.uint8)
    guard = FidelityGuard(model, frames, RenderConfig())
    for t in range(2):
        guard.frame_stats[t] = {
            "rerender_psnr": rerender_psnr, "confidence": confidence, "expected_gain_db": 0.0, "guarded": guarded, "sharp": sharp
        }
        guard.confidence.append(np.zeros((16, 24), np.uint8))
    guard.write(tmp_path / f"confidence_{blur}_{rerender_psnr}_{guarded}_{sharp}.mp4", 24, 16)


def test_sharp_frames_kept_whole_are_not_reported_as_poorly_explained(tmp_path, capsys):
    """Deblurring, a sharp frame is kept as recorded by design (there is no blur to remove): the
    user is told so, not that the model failed there; a blurred frame kept whole is still reported."""
    _guard_with_stats(True, 32.0, 0.0, tmp_path, guarded=True, sharp=True)
    err = capsys.readouterr().err
    assert "sharp already" in err and "does not explain" not in err
    _guard_with_stats(True, 32.0, 0.0, tmp_path, guarded=True, sharp=False)
    err = capsys.readouterr().err
    assert "does not explain frames 0-1" in err and "whole frames kept: 0-1" in err and "sharp already" not in err


def test_poorly_explained_line_in_hdr_follows_the_rerender_not_the_weight(tmp_path, capsys):
    """In HDR the weight on the model is low wherever the input is well exposed, by design: a clip
    re-rendered at 35 dB gets no warning; one re-rendered at 20 dB does. Deblur warns on the weight."""
    _guard_with_stats(False, 35.0, 0.1, tmp_path)
    assert "does not explain" not in capsys.readouterr().err
    _guard_with_stats(False, 20.0, 0.9, tmp_path)
    assert "does not explain" in capsys.readouterr().err
    _guard_with_stats(True, 35.0, 0.1, tmp_path)
    assert "does not explain" in capsys.readouterr().err
