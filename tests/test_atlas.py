"""Atlas export and editing (vidcam/atlas/) on one tiny run trained once per module."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vidcam import atlas
from vidcam.atlas.display import DisplayCurve, display_curve
from vidcam.atlas.edit import edit_texture
from vidcam.atlas.layout import LAYOUT_NAME, read_layout
from vidcam.cli import main as cli_main
from vidcam.config import AtlasConfig
from vidcam.errors import VidcamError
from vidcam.fast_render import rendered_frames
from vidcam.io.images import read_exr, read_png, write_png
from vidcam.io.video import read_video
from vidcam.pipeline import enhance
from vidcam.rendering import display_sdr, render_frame, to_uint8
from vidcam.run import Run, open_run
from vidcam.testing import synthetic as ms

N, H, W = 6, 36, 64
ATLAS_RUN = {
    "render.fidelity": "off",  # edits re-render the model alone; so must enhanced.mp4 for them to compare
    "render.highlight_fill": False,  # ... without the neighbours' highlights (vidcam.highlights) either
    "train.steps": 300,
    "train.bootstrap_steps": 200,
}
PAINT = (200, 90, 40)  # a mid-tone colour, which the display transform does not clip

pytestmark = pytest.mark.usefixtures("one_thread")




@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_config) -> Path:
    folder = tmp_path_factory.mktemp("atlas")
    clip = folder / "clip.mp4"
    ms.write_clip(ms.make_hdr_clip(seed=0, n_frames=N, height=H, width=W), clip)
    enhance(clip, folder / "run", tiny_config(ATLAS_RUN, small_model=True))
    return folder / "run"


@pytest.fixture(scope="module")
def exported(run_dir) -> Path:
    return atlas.export_atlas(run_dir, device="cpu")


@pytest.fixture(scope="module")
def run(run_dir, exported) -> Run:
    return open_run(run_dir, "cpu")


@pytest.fixture(scope="module")
def reference(run) -> np.ndarray:
    """The run's enhanced frames, rendered the way vidcam.export does (HDR mode: ACES at hdr_scale,
    with the renderer the run's settings pick, as edits are)."""
    assert run.operator == "aces" and run.plan.mode == "hdr"
    hdr = np.stack(list(rendered_frames(run.model, run.cfg.render))) * run.report.hdr_scale
    return np.stack([display_sdr(frame, "aces") for frame in hdr]).astype(np.int32)


@pytest.fixture(scope="module")
def weights(run) -> np.ndarray:
    """[N,H,W,L] layer weights of every pixel."""
    scene = run.model.scene
    return np.stack([render_frame(run.model, t, run.chunk, scene.layer_weights) for t in range(N)])


@pytest.fixture(scope="module")
def uv(run) -> np.ndarray:
    """[N,H,W,L,2] atlas coordinates of every pixel in every layer."""
    scene = run.model.scene

    def evaluate(xy, t):
        return scene.uv(xy, t).permute(1, 0, 2).flatten(1)

    return np.stack([render_frame(run.model, t, run.chunk, evaluate) for t in range(N)]).reshape(N, H, W, -1, 2)


def _layout(exported: Path) -> dict:
    return json.loads((exported / LAYOUT_NAME).read_text())


def test_export_writes_every_file_at_the_right_size(run, exported):
    layout = _layout(exported)
    assert [entry["layer"] for entry in layout["layers"]] == list(range(run.n_layers)) == [0, 1]
    for entry in layout["layers"]:
        k, size = entry["layer"], (entry["height"], entry["width"])
        u0, v0, u1, v1 = entry["box"]
        assert -1 <= u0 < u1 <= 1 and -1 <= v0 < v1 <= 1
        assert read_png(exported / f"layer{k}_atlas.png").shape == (*size, 3)
        assert read_png(exported / f"layer{k}_atlas_preview.png").shape == (*size, 3)
        exr = read_exr(exported / f"layer{k}_atlas.exr")
        assert exr.shape == (*size, 3) and np.isfinite(exr).all() and exr.min() > 0
        for video in ("alpha", "mapping"):
            clip = read_video(exported / f"layer{k}_{video}.mp4")
            assert clip.frames.shape == (N, H, W, 3) and clip.fps == run.fps
    assert read_png(exported / "contact_sheet.png").ndim == 3


def test_atlas_density_matches_the_frames(exported):
    """About one texel per frame pixel: the background box spans about a frame width or more."""
    background = _layout(exported)["layers"][0]
    assert W * 0.8 <= background["width"] <= 4 * W
    assert background["covered_fraction"] > 0.9


def test_layout_covers_what_the_clip_shows(exported, weights, uv):
    for entry in _layout(exported)["layers"]:
        k = entry["layer"]
        seen = weights[..., k] > (AtlasConfig().background_cover if k == 0 else AtlasConfig().foreground_cover)
        assert entry["covered_fraction"] == pytest.approx(seen.mean(), abs=0.01)
        u0, v0, u1, v1 = entry["box"]
        points = uv[..., k, :][seen]
        assert (points.min(axis=0) >= (u0, v0)).all() and (points.max(axis=0) <= (u1, v1)).all()


@pytest.mark.parametrize("side", ["left", "right"])
def test_edit_lands_where_the_mapping_puts_it(run, exported, reference, weights, uv, tmp_path, side):
    """Paint half the background atlas: frame pixels change exactly where their u falls in that half."""
    picture = read_png(exported / "layer0_atlas.png")
    entry = _layout(exported)["layers"][0]
    split = entry["width"] // 2
    painted = picture.copy()
    painted[:, :split] = PAINT if side == "left" else painted[:, :split]
    painted[:, split:] = PAINT if side == "right" else painted[:, split:]
    write_png(tmp_path / "layer0_atlas.png", painted)
    shutil.copy(exported / LAYOUT_NAME, tmp_path / LAYOUT_NAME)
    edited = atlas.render_edited(run, 0, tmp_path / "layer0_atlas.png").sdr.astype(np.int32)
    change = np.abs(edited - reference).max(axis=-1)
    u0, _, u1, _ = entry["box"]
    texel = (u1 - u0) / entry["width"]
    middle = u0 + split * texel
    u, background = uv[..., 0, 0], weights[..., 0] > 0.99
    left, right = background & (u < middle - 1.5 * texel), background & (u > middle + 1.5 * texel)
    kept, changed = (right, left) if side == "left" else (left, right)
    assert kept.sum() > 1000 and changed.sum() > 1000
    assert change[kept].max() <= 1
    assert change[changed].mean() > 20


def test_alpha_video_is_the_layer_weight(exported, weights):
    alpha = read_video(exported / "layer1_alpha.mp4").frames[..., 0].astype(np.float32) / 255
    assert np.abs(alpha - weights[..., 1]).mean() < 0.03


@pytest.mark.parametrize("layer", [0, 1])
def test_unchanged_atlas_reproduces_the_run(run, exported, reference, layer):
    result = atlas.render_edited(run, layer, exported / f"layer{layer}_atlas.png")
    assert result.sdr.shape == reference.shape
    assert np.abs(result.sdr.astype(np.int32) - reference).mean() < 0.05  # codes: identical but for float noise


def test_edit_run_writes_videos_matching_enhanced(run_dir, exported, tmp_path):
    out = atlas.edit_run(run_dir, 0, exported / "layer0_atlas.png", tmp_path / "same.mp4", "cpu")
    edited = read_video(out).frames.astype(np.int32)
    enhanced = read_video(run_dir / "enhanced.mp4").frames.astype(np.int32)
    assert edited.shape == enhanced.shape == (N, H, W, 3)
    assert np.abs(edited - enhanced).mean() < 2  # both through H.264: decoded vs decoded
    assert read_video(tmp_path / "same_hdr10.mp4").n_frames == N


def test_solid_colour_changes_only_the_layer(run, exported, reference, weights, tmp_path):
    picture = read_png(exported / "layer1_atlas.png")
    solid = np.empty((*picture.shape[:2], 4), np.uint8)
    solid[..., :3], solid[..., 3] = PAINT, 255
    write_png(tmp_path / "solid.png", solid)
    shutil.copy(exported / LAYOUT_NAME, tmp_path / LAYOUT_NAME)  # atlas.json beside the edit
    edited = atlas.render_edited(run, 1, tmp_path / "solid.png").sdr.astype(np.int32)
    change = np.abs(edited - reference).max(axis=-1)
    foreground = weights[..., 1]
    assert (foreground > 0.9).sum() > 50 and (foreground < 0.05).sum() > 1000
    # A pixel changes in proportion to the layer's weight there: not at all where it is ~0, and
    # only slightly (a few codes at weight 0.03-0.05, the layer's true share) where it is small.
    assert change[foreground < 0.001].max() <= 1
    assert change[foreground < 0.05].mean() < 0.5
    assert change[foreground > 0.9].mean() > 20
    # The atlas is shown the way the output is, so where the layer is opaque the paint shows as painted.
    opaque = foreground > 0.99
    assert opaque.sum() > 20 and np.abs(edited[opaque] - np.array(PAINT)).mean() < 3


def test_transparent_or_identical_edits_change_nothing(run, exported):
    layouts, curve = read_layout(exported / LAYOUT_NAME)
    curve.tabulate(run.model)
    original = read_png(exported / "layer0_atlas.png")
    rgb = np.broadcast_to(np.array(PAINT) / 255, original.shape)
    clear, opaque = np.zeros((*original.shape[:2], 1)), np.ones((*original.shape[:2], 1))
    assert not edit_texture(rgb, clear, original, curve)[3].any()
    assert not edit_texture(original / 255, opaque, original, curve)[3].any()
    nudged = np.where(original < 255, original + 1, original - 1)
    texture = edit_texture(nudged / 255, opaque, original, curve)
    assert (texture[3] == 1).all()  # an RGB picture replaces the atlas wherever it differs
    assert np.allclose(texture[:3].transpose(1, 2, 0), np.exp(curve.inverse(nudged / 255)), rtol=1e-5)


@pytest.mark.parametrize("kind", ["aces", "camera"])
def test_display_curve_inverts(run, kind):
    curve = display_curve(run) if kind == "aces" else DisplayCurve("camera", 0.3, -8.0, 8.0)
    curve.tabulate(run.model)
    shown = np.random.default_rng(0).uniform(0.01, 0.99, (1000, 3))
    assert np.abs(curve.forward(curve.inverse(shown)) - shown).max() < 1e-3
    z = np.repeat(curve.s[:, None], 3, axis=1) - curve.offset
    slope = np.gradient(curve.values, curve.s, axis=0)
    steep = (slope > 0.05) & (curve.values > 0.01) & (curve.values < 0.99)
    assert steep.sum() > 100
    assert np.abs(curve.inverse(curve.forward(z)) - z)[steep].max() < 0.01


def test_camera_display_round_trips(run_dir, tmp_path):
    """A run shown through its learned camera (the deblur default) exports and edits through the tone curve."""
    copy = tmp_path / "camera_run"
    copy.mkdir()
    shutil.copy(run_dir / "config.yaml", copy / "config.yaml")
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    state["plan"]["operator"] = "camera"  # the plan decides how a run is shown
    torch.save(state, copy / "checkpoint.pt")
    report = json.loads((run_dir / "report.json").read_text())
    report["tonemap"] = "camera"
    report.pop("hdr_scale")
    (copy / "report.json").write_text(json.dumps(report))
    out = atlas.export_atlas(copy, device="cpu")
    assert _layout(out)["display"]["kind"] == "camera"
    run = open_run(copy, "cpu")
    expected = to_uint8(np.stack(list(rendered_frames(run.model, run.cfg.render, camera=True)))).astype(np.int32)
    edited = atlas.render_edited(run, 1, out / "layer1_atlas.png").sdr.astype(np.int32)
    assert np.abs(edited - expected).mean() < 0.5


def test_errors_are_clear(run_dir, exported, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VidcamError, match="no vidcam run"):
        atlas.export_atlas(empty, device="cpu")
    with pytest.raises(VidcamError, match="not found"):
        atlas.edit_run(tmp_path / "missing", 0, exported / "layer0_atlas.png", device="cpu")
    with pytest.raises(VidcamError, match="out of range"):
        atlas.edit_run(run_dir, 2, exported / "layer0_atlas.png", device="cpu")
    wrong = tmp_path / "wrong.png"
    write_png(wrong, np.zeros((10, 12, 3), np.uint8))
    shutil.copy(exported / LAYOUT_NAME, tmp_path / LAYOUT_NAME)
    with pytest.raises(VidcamError, match="12x10"):
        atlas.edit_run(run_dir, 0, wrong, device="cpu")
    assert cli_main(["edit", str(run_dir), "--layer", "0", "--atlas", str(wrong), "--device", "cpu"]) == 2


def test_edit_of_a_run_never_exported_says_what_to_do(run_dir, exported, tmp_path):
    copy = tmp_path / "fresh_run"
    copy.mkdir()
    shutil.copy(run_dir / "checkpoint.pt", copy / "checkpoint.pt")
    picture = tmp_path / "pictures" / "layer0_atlas.png"
    picture.parent.mkdir()
    shutil.copy(exported / "layer0_atlas.png", picture)
    with pytest.raises(VidcamError, match="vidcam atlas"):
        atlas.edit_run(copy, 0, picture, device="cpu")


def test_layout_from_another_run_is_refused(run_dir, exported, tmp_path):
    layout = _layout(exported)
    layout["frames"] = N + 1
    (tmp_path / LAYOUT_NAME).write_text(json.dumps(layout))
    shutil.copy(exported / "layer0_atlas.png", tmp_path / "layer0_atlas.png")
    with pytest.raises(VidcamError, match="another run"):
        atlas.edit_run(run_dir, 0, tmp_path / "layer0_atlas.png", device="cpu")


def test_cli_edit(run_dir, exported, tmp_path):
    video = tmp_path / "cli_edit.mp4"
    args = ["edit", str(run_dir), "--layer", "1", "--atlas", str(exported / "layer1_atlas.png"), "-o", str(video)]
    assert cli_main(args + ["--device", "cpu"]) == 0
    assert read_video(video).n_frames == N
    assert cli_main(["atlas", str(tmp_path), "--device", "cpu"]) == 2  # no run there
