"""vidcam.highlights: clipped pixels take the irradiance their flow-linked neighbours measured."""

from __future__ import annotations

import numpy as np
import torch

from vidcam.config import RenderConfig, load_config
from vidcam.fidelity import InverseTone
from vidcam.highlights import HighlightFill, irradiance_ceiling
from vidcam.models.model import ClipShape, VidcamModel
from vidcam.plan import RunPlan

H, W = 12, 20
SHIFT = 3  # px the scene moves right from frame to frame


def _model(log_exposure: np.ndarray) -> VidcamModel:
    cfg = load_config("fast")
    model = VidcamModel(cfg, ClipShape(len(log_exposure), H, W, False, learn_exposure=False), log_exposure)
    model.tone.prefit(200)
    return model.eval()


def _scene(t: int) -> np.ndarray:
    """Linear irradiance of frame t: mid grey with a bright patch (60x the grey) moving right."""
    scene = np.full((H, W, 3), 0.5, np.float32)
    scene[3:8, 4 + SHIFT * t : 9 + SHIFT * t] = 30.0
    return scene


def _record(model: VidcamModel, scene: np.ndarray, t: int) -> np.ndarray:
    with torch.no_grad():
        log_e = model.exposures.all()[t]
        pixels = model.tone(torch.from_numpy(np.log(scene)).reshape(-1, 3), log_e.expand(H * W)).reshape(H, W, 3)
    return np.round(pixels.numpy() * 255).astype(np.uint8)


def _flows(n: int, shift: float, valid: bool = True) -> list[dict]:
    """Gap-1 flow of a scene moving right by ``shift`` px a frame, in ClipData's layout."""
    flow = torch.zeros(2, n - 1, H, W, 2)
    flow[0, ..., 0] = shift
    flow[1, ..., 0] = -shift
    return [{"gap": 1, "flow": flow.half(), "valid": torch.full((2, n - 1, H, W), valid)}]


def _setup():
    log_exposure = np.log(np.array([1.0, 8.0, 1.0])) - np.log(8.0) / 3  # short, long, short
    model = _model(log_exposure)
    frames = np.stack([_record(model, _scene(t), t) for t in range(3)])
    return model, frames


def test_clipped_pixels_take_the_neighbours_measured_irradiance():
    model, frames = _setup()
    assert (frames[1][3:8, 7:12] > 250).all() and (frames[0][3:8, 4:9] < 240).all()  # clipped only in the long frame
    atlas = _scene(1) * 5.0  # an atlas that extrapolates the highlight far too bright
    atlas[frames[1] < 240] = _scene(1)[frames[1] < 240]
    fill = HighlightFill(model, frames, _flows(3, SHIFT), RenderConfig())
    filled = fill(1, atlas)
    patch = (slice(3, 8), slice(8, 11))  # inside the highlight, away from its edges
    # two well-exposed neighbours outweigh the atlas about 10:1 (render.highlight_fill_trust = 0.2)
    assert np.all(np.abs(filled[patch] - 30.0) < 0.15 * np.abs(atlas[patch] - 30.0)), filled[patch]
    unclipped = frames[1].max(-1) < 240
    assert np.array_equal(filled[unclipped], atlas[unclipped])  # the rest is left to the atlas
    assert 0 < fill.summary()["filled"][0] < 0.5  # the highlight's share of the frame's values


def test_without_trusted_links_the_atlas_stays():
    model, frames = _setup()
    atlas = _scene(1) * 5.0
    inconsistent = HighlightFill(model, frames, _flows(3, SHIFT, valid=False), RenderConfig())
    assert np.array_equal(inconsistent(1, atlas), atlas)


def test_the_fill_is_only_for_hdr_irradiance():
    model, frames = _setup()
    flows = _flows(3, SHIFT)
    rc = RenderConfig()

    def plan(mode: str, operator: str) -> RunPlan:
        return RunPlan(mode, mode == "deblur", False, operator, (0.0,) * 3, "user", 2, 8.0)

    assert HighlightFill.for_run(model, frames, flows, rc, plan("hdr", "aces")) is not None
    assert HighlightFill.for_run(model, frames, flows, rc, plan("deblur", "camera")) is None
    assert HighlightFill.for_run(model, frames, None, rc, plan("hdr", "aces")) is None
    off = RenderConfig(highlight_fill=False)
    assert HighlightFill.for_run(model, frames, flows, off, plan("hdr", "aces")) is None


def test_a_clipped_value_is_never_filled_below_its_clip_level():
    model, frames = _setup()
    too_dark = np.full((H, W, 3), 0.01, np.float32)  # an atlas far below what clipped the long frame
    filled = HighlightFill(model, frames, _flows(3, SHIFT, valid=False), RenderConfig())(1, too_dark)
    clipped = frames[1].min(-1) > 250
    with torch.no_grad():
        recorded = model.tone(torch.from_numpy(np.log(filled[clipped])), model.exposures.all()[1].expand(int(clipped.sum())))
    assert clipped.any() and (recorded.numpy() >= RenderConfig().fidelity_clip - 0.01).all()
    unclipped = frames[1].max(-1) < 240
    assert np.array_equal(filled[unclipped], too_dark[unclipped])


def test_hdr_irradiance_is_capped_above_what_the_shortest_exposure_records():
    """The ceiling is the irradiance that clips the shortest exposure, ``highlight_headroom_stops`` higher."""
    model, _ = _setup()
    rc = RenderConfig()
    clips_shortest = np.exp(InverseTone(model)(np.full((1, 3), rc.fidelity_clip, np.float32))[0] - model.exposures.all().min().item())
    assert np.allclose(irradiance_ceiling(model, rc), clips_shortest * 2**rc.highlight_headroom_stops, rtol=1e-4)
    assert np.allclose(irradiance_ceiling(model, RenderConfig(highlight_headroom_stops=1.0)), clips_shortest * 2, rtol=1e-4)
    # the bright patch (60x grey) is recorded by the short frames: the ceiling is above it
    assert (irradiance_ceiling(model, rc) > 30.0).all()
