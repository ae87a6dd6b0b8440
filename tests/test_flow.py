"""Flow: DIS/RAFT accuracy on synthetic motion, RAFT plumbing, original-checkpoint mapping,
exposure matching, forward-backward validity, cache, backend choice, motion analysis."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidcam import motion, raft_weights, resources
from vidcam.config import FlowConfig, MotionConfig, load_config
from vidcam.flow import estimate as flow
from vidcam.flow import visualise
from vidcam.flow.types import FlowPair
from vidcam.errors import VidcamError
from vidcam.io.video import probe

skimage_data = pytest.importorskip("skimage.data")

SHARED = Path(__file__).resolve().parents[2] / "shared"
WEIGHTS = SHARED / "weights"
DAVIS = SHARED / "data" / "davis-bmx-trees"
CROP = (150, 180)  # top-left of the crops taken from 512x512 astronaut (face, suit, rocket: textured)


# --------------------------------------------------------------------------- synthetic pairs


def _astronaut() -> np.ndarray:
    return skimage_data.astronaut().astype(np.float32) / 255


def _affine_pair(matrix: np.ndarray, size: tuple[int, int], image: np.ndarray | None = None):
    """Frames a, b cropped from ``image`` and its affine warp (b(M p) = a(p)), and the true flow a -> b."""
    image = _astronaut() if image is None else image
    warped = cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    (y0, x0), (h, w) = CROP, size
    ys, xs = np.mgrid[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
    target = np.stack([xs, ys, np.ones_like(xs)], -1) @ matrix.T
    truth = target - np.stack([xs, ys], -1)
    crop = (slice(y0, y0 + h), slice(x0, x0 + w))
    return np.clip(image[crop], 0, 1), np.clip(warped[crop], 0, 1), truth.astype(np.float32)


def _shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, dy]], np.float32)


def _sprite_pair(size=(144, 256), box=(56, 60, 40, 40), bg_shift=(1.0, 0.5), fg_shift=(18.0, -10.0)):
    """A textured square (cat fur) moving fast over a slowly panning photo; true flow a -> b."""
    background, texture = _astronaut(), skimage_data.chelsea().astype(np.float32) / 255
    (y0, x0), (h, w) = CROP, size
    by, bx, bh, bw = box

    def render(bs, fs):
        frame = cv2.warpAffine(
            background, _shift(*bs), (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
        )
        frame = frame[y0 : y0 + h, x0 : x0 + w].copy()
        patch = texture[100 : 100 + bh, 150 : 150 + bw]
        place = _shift(bx + fs[0], by + fs[1])
        sprite = cv2.warpAffine(patch, place, (w, h), flags=cv2.INTER_CUBIC)
        alpha = cv2.warpAffine(np.ones((bh, bw), np.float32), place, (w, h))[..., None]
        return np.clip(frame * (1 - alpha) + sprite * alpha, 0, 1)

    truth = np.broadcast_to(np.float32(bg_shift), (h, w, 2)).copy()
    truth[by : by + bh, bx : bx + bw] = fg_shift
    return render((0, 0), (0, 0)), render(bg_shift, fg_shift), truth


def _interior(truth: np.ndarray, margin: int = 8) -> np.ndarray:
    """Pixels away from the border whose true target is also away from it."""
    h, w = truth.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    tx, ty = xs + truth[..., 0], ys + truth[..., 1]
    inside = (tx >= margin) & (tx < w - margin) & (ty >= margin) & (ty < h - margin)
    return inside & (xs >= margin) & (xs < w - margin) & (ys >= margin) & (ys < h - margin)


def _epe(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - truth, axis=-1)[mask].mean())


def _forward(a: np.ndarray, b: np.ndarray, cfg: FlowConfig, **kwargs) -> FlowPair:
    return flow.compute_flows(np.stack([a, b]).astype(np.float32), cfg, progress=False, **kwargs)[1]


# --------------------------------------------------------------------------- DIS accuracy


@pytest.mark.parametrize(
    "matrix",
    [_shift(3.3, -2.7), cv2.getRotationMatrix2D((256, 256), 3.0, 1.04).astype(np.float32)],
    ids=["translation", "rotation+zoom"],
)
def test_dis_recovers_synthetic_motion(matrix):
    a, b, truth = _affine_pair(matrix, (120, 160))
    pair = _forward(a, b, FlowConfig(backend="dis"))
    mask = _interior(truth) & pair.valid_forward[0]
    assert mask.mean() > 0.5
    assert _epe(pair.forward[0], truth, mask) < 0.5
    assert _epe(-pair.backward[0], truth, _interior(truth)) < 1.0  # backward of a small motion ~ -forward


def test_downscaled_flow_is_rescaled_to_full_resolution():
    a, b, truth = _affine_pair(_shift(6.0, -4.0), (120, 160))
    pair = _forward(a, b, FlowConfig(backend="dis", max_side=80))  # computed at 60x80
    assert pair.forward.shape == (1, 120, 160, 2)
    assert _epe(pair.forward[0], truth, _interior(truth, 16)) < 0.75


# --------------------------------------------------------------------------- RAFT plumbing


@pytest.fixture
def random_raft_checkpoint(tmp_path: Path) -> Path:
    """An untrained torchvision raft_small saved as a torchvision-format state dict."""
    torch.manual_seed(0)
    path = tmp_path / "raft_small_random.pth"
    torch.save(raft_weights.build_model("small").state_dict(), path)
    return path


def test_raft_path_shapes_padding_batching_downscale(random_raft_checkpoint, capsys):
    rng = np.random.default_rng(0)
    frames = rng.random((4, 75, 101, 3), dtype=np.float32)  # odd sizes, far below RAFT's 128 minimum
    cfg = FlowConfig(
        backend="raft", raft_checkpoint=str(random_raft_checkpoint), raft_iters=2,
        max_side=90, gaps=[1, 2], batch_size=3,  # 90: downscaled for flow; 3: a ragged last batch
    )  # fmt: skip
    flows = flow.compute_flows(frames, cfg, progress=False)
    assert "flow: raft" in capsys.readouterr().err
    assert sorted(flows) == [1, 2]
    for gap, pair in flows.items():
        assert pair.gap == gap
        for array in (pair.forward, pair.backward):
            assert array.shape == (4 - gap, 75, 101, 2) and array.dtype == np.float32
            assert np.isfinite(array).all()
        for mask in (pair.valid_forward, pair.valid_backward):
            assert mask.shape == (4 - gap, 75, 101) and mask.dtype == bool
        np.testing.assert_array_equal(
            pair.valid_forward, flow.consistency_mask(pair.forward, pair.backward, cfg.consistency_px)
        )


def test_raft_estimator_unpads_to_the_input():
    torch.manual_seed(0)
    net = raft_weights.build_model("small")
    estimate = flow.raft_estimator(net, iters=1, device="cpu")
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 2, 130, 137, 3), dtype=np.float32)  # pads to 136 x 144
    out = estimate(a, b)
    assert out.shape == (2, 130, 137, 2) and out.dtype == np.float32
    # Each pair of the batch is computed independently of the others.
    np.testing.assert_allclose(estimate(a[1:], b[1:])[0], out[1], atol=1e-4)


# --------------------------------------------------------------------------- original checkpoints


def _original_checkpoint(name: str) -> Path:
    path = WEIGHTS / name
    if not path.is_file():
        pytest.skip(f"original RAFT checkpoint {path} not present (see shared/README.md)")
    return path


@pytest.mark.parametrize(("name", "model"), [("raft-small.pth", "small"), ("raft-sintel.pth", "large")])
def test_original_checkpoint_maps_every_tensor(name, model):
    raw = torch.load(_original_checkpoint(name), map_location="cpu", weights_only=True)
    converted = raft_weights.convert_original_state_dict(raw)
    expected = raft_weights.build_model(model).state_dict()
    assert raft_weights.model_of_state_dict(converted) == model
    assert set(converted) == set(expected)
    assert all(converted[k].shape == expected[k].shape for k in expected)
    # Nothing dropped except the original's duplicate norm3 (== downsample.1) entries.
    dropped = len(raw) - len(converted)
    assert dropped == sum(".norm3." in k for k in raw)
    raw_ids = {id(t) for t in raw.values()}
    assert all(id(t) in raw_ids for t in converted.values())


@pytest.fixture(scope="module")
def original_estimators():
    nets = {}
    for model, name in (("small", "raft-small.pth"), ("large", "raft-sintel.pth")):
        source = raft_weights.WeightsSource(model, checkpoint=_original_checkpoint(name))
        nets[model] = flow.raft_estimator(raft_weights.load_model(source), iters=12, device="cpu")
    return nets


def test_original_raft_recovers_translation(original_estimators):
    a, b, truth = _affine_pair(_shift(3.3, -2.7), (128, 160))
    for model, estimate in original_estimators.items():
        assert _epe(estimate(a[None], b[None])[0], truth, _interior(truth)) < 0.5, model


def test_original_raft_large_beats_dis_on_fast_small_object(original_estimators):
    a, b, truth = _sprite_pair()
    mask = _interior(truth)
    raft = _epe(original_estimators["large"](a[None], b[None])[0], truth, mask)
    dis = _epe(flow.dis_estimator()(a[None], b[None])[0], truth, mask)
    assert raft < 0.25 and raft < 0.6 * dis, (raft, dis)


def test_original_raft_on_real_frames(original_estimators):
    files = [DAVIS / "frames" / f"{i:05d}.jpg" for i in (20, 21)]
    if not all(f.is_file() for f in files):
        pytest.skip(f"DAVIS frames not present under {DAVIS}")
    a, b = (cv2.imread(str(f))[..., ::-1].astype(np.float32)[None] / 255 for f in files)
    estimate = original_estimators["small"]
    forward, backward = estimate(a, b), estimate(b, a)
    assert flow.consistency_mask(forward, backward, 1.0).mean() > 0.85
    h, w = a.shape[1:3]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(b[0], xs + forward[0, ..., 0], ys + forward[0, ..., 1], cv2.INTER_LINEAR)
    assert np.abs(warped - a[0]).mean() < 0.5 * np.abs(b[0] - a[0]).mean()


# --------------------------------------------------------------------------- exposure matching


def test_exposure_matching_restores_accuracy_on_short_long_pairs():
    """Short/long exposures (ratio 4) of one linear scene, 10% of the long one saturated."""
    linear = _astronaut() ** 2.2 * 0.35
    moved = cv2.warpAffine(linear, _shift(2.6, -1.3), (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    (y0, x0), (h, w) = CROP, (120, 160)

    def camera(scene, exposure):
        return np.round(np.clip(scene[y0 : y0 + h, x0 : x0 + w] * exposure, 0, 1) ** (1 / 2.2) * 255) / 255

    truth = np.broadcast_to(np.float32([2.6, -1.3]), (h, w, 2))
    mask = _interior(truth)
    long_then_long = _forward(camera(linear, 4), camera(moved, 4), FlowConfig(backend="dis"))
    short, long_ = camera(linear, 1), camera(moved, 4)
    exposures = np.array([1.0, 4.0])
    matched = _forward(short, long_, FlowConfig(backend="dis", exposure_match=True), exposures=exposures)
    unmatched = _forward(short, long_, FlowConfig(backend="dis", exposure_match=False), exposures=exposures)
    same = _epe(long_then_long.forward[0], truth, mask)
    with_matching = _epe(matched.forward[0], truth, mask)
    without = _epe(unmatched.forward[0], truth, mask)
    assert with_matching < same + 0.1
    assert without > 3 * with_matching


def test_match_exposure_brightens_the_darker_frame():
    dark, bright = np.full((2, 2, 3), 0.2, np.float32), np.full((2, 2, 3), 0.5, np.float32)
    a, b = flow.match_exposure(dark, bright, 1.0, 4.0)
    np.testing.assert_allclose(a, (0.2**2.2 * 4) ** (1 / 2.2), rtol=1e-5)
    assert b is bright
    b2, a2 = flow.match_exposure(bright, dark, 4.0, 1.0)
    np.testing.assert_allclose(a2, a)
    assert flow.match_exposure(dark, bright, 2.0, 2.0) == (dark, bright)


# --------------------------------------------------------------------------- consistency


def test_occluded_background_is_invalid():
    a, b, truth = _sprite_pair(bg_shift=(0.0, 0.0), fg_shift=(12.0, 0.0))
    pair = _forward(a, b, FlowConfig(backend="dis"))
    valid = pair.valid_forward[0]
    covered = valid[60:96, 100 + 2 : 112 - 2]  # background right of the square, under it in frame b
    far_background = valid[8:40, 150:240]
    assert covered.mean() < 0.3, covered.mean()
    assert far_background.mean() > 0.9


def test_flow_leaving_the_frame_is_invalid():
    forward = np.zeros((1, 10, 12, 2), np.float32)
    forward[..., 0] = 3.0  # everything moves 3 px right: the last 3 columns leave the frame
    backward = -forward
    valid = flow.consistency_mask(forward, backward, 1.0)[0]
    assert valid[:, :9].all() and not valid[:, 9:].any()


# --------------------------------------------------------------------------- cache


@pytest.fixture
def counting_dis(monkeypatch):
    calls = {"pairs": 0}
    make = flow.dis_estimator

    def counting(*args, **kwargs):
        estimate = make(*args, **kwargs)

        def wrapped(a, b):
            calls["pairs"] += len(a)
            return estimate(a, b)

        return wrapped

    monkeypatch.setattr(flow, "dis_estimator", counting)
    return calls


def test_cache_hits_and_misses(tmp_path, counting_dis, capsys):
    frames = np.stack(_affine_pair(_shift(2.0, 1.0), (48, 64))[:2] * 2).astype(np.float32)  # 4 frames
    cfg = FlowConfig(backend="dis", gaps=[1, 2])
    first = flow.compute_flows(frames, cfg, cache_dir=tmp_path, progress=False)
    assert counting_dis["pairs"] == 2 * (3 + 2)
    assert len(list(tmp_path.glob("flow_*.npz"))) == 1
    capsys.readouterr()

    again = flow.compute_flows(frames, FlowConfig(backend="dis", gaps=[1, 2], batch_size=1), cache_dir=tmp_path)
    assert counting_dis["pairs"] == 10  # nothing computed; batch size does not change the flow
    assert "flow: cached" in capsys.readouterr().err
    for gap in (1, 2):
        np.testing.assert_array_equal(again[gap].forward, first[gap].forward)
        np.testing.assert_array_equal(again[gap].valid_backward, first[gap].valid_backward)

    flow.compute_flows(frames, FlowConfig(backend="dis", gaps=[1, 2], consistency_px=0.5), cache_dir=tmp_path)
    assert counting_dis["pairs"] == 20
    flow.compute_flows(frames, cfg, exposures=np.array([1.0, 2.0, 1.0, 2.0]), cache_dir=tmp_path, progress=False)
    assert counting_dis["pairs"] == 30
    flow.compute_flows(frames[::-1].copy(), cfg, cache_dir=tmp_path, progress=False)
    assert counting_dis["pairs"] == 40
    assert len(list(tmp_path.glob("flow_*.npz"))) == 4


def test_unreadable_cache_is_recomputed(tmp_path, counting_dis):
    frames = np.stack(_affine_pair(_shift(2.0, 1.0), (48, 64))[:2]).astype(np.float32)
    cfg = FlowConfig(backend="dis")
    flow.compute_flows(frames, cfg, cache_dir=tmp_path, progress=False)
    (cache_file,) = tmp_path.glob("flow_*.npz")
    cache_file.write_bytes(b"not a zip")
    pair = flow.compute_flows(frames, cfg, cache_dir=tmp_path, progress=False)[1]
    assert counting_dis["pairs"] == 4 and pair.forward.shape == (1, 48, 64, 2)


# --------------------------------------------------------------------------- backend choice


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty torch hub, no checkpoint setting or variable, no network."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.delenv(raft_weights.CHECKPOINT_ENV, raising=False)
    monkeypatch.setattr(raft_weights, "can_download", lambda url, timeout_s=0: False)
    return hub


def test_auto_falls_back_to_dis_and_says_where_weights_go(no_weights, capsys):
    backend, reason = flow.choose_backend(FlowConfig(backend="auto"))
    assert backend == "dis" and "no RAFT weights" in reason
    err = capsys.readouterr().err
    assert "DIS" in err and str(no_weights / "checkpoints") in err and raft_weights.CHECKPOINT_ENV in err


def test_raft_without_weights_is_an_error(no_weights):
    with pytest.raises(VidcamError, match=raft_weights.CHECKPOINT_ENV):
        flow.choose_backend(FlowConfig(backend="raft", raft_model="small"))


def test_hub_cache_file_and_checkpoint_variable_enable_raft(no_weights, tmp_path, monkeypatch):
    cached = raft_weights.hub_cache_file(raft_weights.torchvision_weights("small"))
    assert cached.parent == no_weights / "checkpoints"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert flow.choose_backend(FlowConfig(backend="auto", raft_model="small"))[0] == "raft"
    cached.unlink()
    checkpoint = tmp_path / "mine.pth"
    checkpoint.write_bytes(b"")
    monkeypatch.setenv(raft_weights.CHECKPOINT_ENV, str(checkpoint))
    assert flow.choose_backend(FlowConfig(backend="auto")) == ("raft", f"checkpoint {checkpoint}")
    monkeypatch.setenv(raft_weights.CHECKPOINT_ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(VidcamError, match="not found"):
        flow.choose_backend(FlowConfig(backend="auto"))


def test_the_plan_expects_raft_only_when_weights_are_on_this_machine(no_weights, tmp_path, monkeypatch):
    """The plan's time estimate, judged without the network: auto is RAFT with a checkpoint at hand,
    DIS otherwise (a download may yet happen, but the plan must not wait on a probe)."""
    monkeypatch.setattr(raft_weights, "can_download", lambda url, timeout_s=0: pytest.fail("the plan probed the network"))
    clip = dataclasses.replace(probe(Path(__file__).parents[1] / "assets" / "demo_blur.mp4"), width=640, height=360, n_frames=24)
    cfg = load_config("fast")
    assert flow.expected_backend(cfg.flow) == "dis"
    dis_seconds = resources.forecast(clip, cfg, workers=1, threads=1).seconds["flow"]
    checkpoint = tmp_path / "mine.pth"
    checkpoint.write_bytes(b"")
    monkeypatch.setenv(raft_weights.CHECKPOINT_ENV, str(checkpoint))
    assert flow.expected_backend(cfg.flow) == "raft"
    small_seconds = resources.forecast(clip, cfg, workers=1, threads=1).seconds["flow"]
    assert small_seconds > 5 * dis_seconds
    large = dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, raft_model="large"))
    assert resources.forecast(clip, large, workers=1, threads=1).seconds["flow"] > 2 * small_seconds  # measured 3x
    assert flow.expected_backend(dataclasses.replace(cfg.flow, backend="dis")) == "dis"
    hdr = dataclasses.replace(cfg, mode="hdr")
    assert flow.expected_backend(cfg.flow, hdr=True) == "dis"
    assert resources.forecast(clip, hdr, workers=1, threads=1).seconds["flow"] == pytest.approx(dis_seconds)


def test_hdr_clips_get_dis_flow_unless_raft_is_asked_for(no_weights, tmp_path, monkeypatch):
    """Flow between a short and a long exposure: auto gives an HDR clip DIS even with RAFT weights
    at hand (RAFT scored 1.4 dB PSNR-mu below it on a real-motion 1:5 clip); flow.backend raft still gets RAFT."""
    checkpoint = tmp_path / "mine.pth"
    checkpoint.write_bytes(b"")
    monkeypatch.setenv(raft_weights.CHECKPOINT_ENV, str(checkpoint))
    assert flow.resolve_backend(FlowConfig(backend="auto")).name == "raft"
    hdr = flow.resolve_backend(FlowConfig(backend="auto"), hdr=True)
    assert hdr.name == "dis" and hdr.reason == flow.HDR_AUTO_REASON
    assert flow.resolve_backend(FlowConfig(backend="raft"), hdr=True).name == "raft"


def test_auto_falls_back_to_dis_when_the_download_fails(no_weights, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(raft_weights, "can_download", lambda url, timeout_s=0: True)
    monkeypatch.setattr(raft_weights, "load_model", lambda source: (_ for _ in ()).throw(OSError("reset")))
    frames = np.stack(_affine_pair(_shift(2.0, 1.0), (48, 64))[:2]).astype(np.float32)
    pair = flow.compute_flows(frames, FlowConfig(backend="auto"), cache_dir=tmp_path / "c", progress=False)[1]
    assert "falling back to DIS" in capsys.readouterr().err
    assert pair.forward.shape == (1, 48, 64, 2)
    with pytest.raises(VidcamError, match="reset"):
        flow.compute_flows(frames, FlowConfig(backend="raft"), progress=False)
    # What was computed is cached under DIS's settings.
    assert len(list((tmp_path / "c").glob("flow_*.npz"))) == 1
    flow.compute_flows(frames, FlowConfig(backend="dis"), cache_dir=tmp_path / "c", progress=False)
    assert "flow: cached" in capsys.readouterr().err


def test_dis_setting_needs_no_weights(no_weights):
    assert flow.choose_backend(FlowConfig(backend="dis"))[0] == "dis"
    with pytest.raises(VidcamError, match="flow.backend"):
        flow.choose_backend(FlowConfig(backend="farneback"))


# --------------------------------------------------------------------------- motion analysis


def _pan_with_square(count=5, size=(60, 80), pan=(2.0, 1.0), square=((20, 40), (30, 50)), motion=(-4.0, 0.0)):
    """Ideal flows: the camera pans by ``pan`` per frame, a square moves by ``motion``."""
    forward = np.broadcast_to(np.float32(pan), (count - 1, *size, 2)).copy()
    (y0, y1), (x0, x1) = square
    forward[:, y0:y1, x0:x1] = motion
    backward = -forward  # ideal enough for the motion analysis below
    valid = np.ones(forward.shape[:3], bool)
    return {1: FlowPair(1, forward, backward, valid, valid.copy())}


def test_dominant_motion_fits_the_camera_and_scores_the_object():
    pair = _pan_with_square()[1]
    homographies, scores = motion.dominant_motion(pair)
    assert homographies.shape == (4, 3, 3) and scores.shape == (4, 60, 80) and scores.dtype == np.float32
    expected = np.array([[1, 0, 2.0], [0, 1, 1.0], [0, 0, 1]])
    np.testing.assert_allclose(homographies / homographies[:, 2:, 2:], np.broadcast_to(expected, (4, 3, 3)), atol=1e-3)
    assert scores[:, 20:40, 30:50].min() > 5.0  # |(-4, 0) - (2, 1)| = 6.1
    assert scores[:, :15].max() < 1e-2


def test_region_motion_on_regions_larger_than_the_ransac_sample():
    """Regions with more pixels than RANSAC is fed are strided: the fit must still work."""
    pair = _pan_with_square(size=(150, 200), square=((5, 145), (5, 195)), motion=(-4.0, 1.5))[1]
    regions = np.zeros((5, 150, 200), bool)
    regions[:, 5:145, 5:195] = True
    assert regions[0].sum() >= 2 * MotionConfig().ransac_max_samples
    motions = motion.region_motion(pair, regions)
    expected = np.array([[1, 0, -4.0], [0, 1, 1.5], [0, 0, 1]])
    np.testing.assert_allclose(motions, np.broadcast_to(expected, (4, 3, 3)), atol=1e-3)


def test_camera_chain_falls_back_to_affine_where_perspective_compounds():
    """A small perspective term per frame, chained over a long pan, sends a frame corner's depth
    through zero; the chain then damps each homography towards its affine part (which agrees with
    the homography to first order at the frame centre) until the chain is within the bound."""
    size, centre = (180, 320), np.array([160.0, 90.0])
    pair = np.array([[1.0, 0.0, 8.0], [0.0, 1.0, 0.0], [1.5e-4, 0.0, 1.0]])
    short = motion.chain_camera(np.stack([pair] * 4), 2, size, 2.0)
    np.testing.assert_allclose(short, motion.chain_to_reference(np.stack([pair] * 4), 2))  # 4 frames: kept
    assert 1.0 < motion.perspective_spread(short, *size) <= 2.0
    long = np.stack([pair] * 40)
    assert motion.perspective_spread(motion.chain_to_reference(long, 20), *size) > 2.0
    chained = motion.chain_camera(long, 20, size, 2.0)
    assert 1.9 < motion.perspective_spread(chained, *size) <= 2.0  # as much perspective as the bound allows
    affine = motion.affine_at(pair, centre)
    step = np.array([1.0, 0.5])
    projected = lambda h, p: (h @ [*p, 1.0])[:2] / (h @ [*p, 1.0])[2]  # noqa: E731
    np.testing.assert_allclose(projected(affine, centre), projected(pair, centre))
    np.testing.assert_allclose(projected(affine, centre + step), projected(pair, centre + step), atol=1e-3)


def test_foreground_from_motion_marks_the_moving_square():
    mask = motion.foreground_from_motion(_pan_with_square())
    assert mask.shape == (5, 60, 80) and mask.dtype == np.float32
    assert mask.min() >= 0 and mask.max() <= 1
    assert mask[:, 24:36, 34:46].min() > 0.9  # every frame, first and last included
    assert mask[:, :12].max() < 0.1 and mask[:, :, 60:].max() < 0.1


def test_foreground_threshold_scales_with_camera_motion():
    # Residual 3 px: foreground when the camera is still, noise when it pans by 60 px.
    still = _pan_with_square(pan=(0.0, 0.0), motion=(3.0, 0.0))
    fast = _pan_with_square(pan=(60.0, 0.0), motion=(63.0, 0.0))
    assert motion.foreground_from_motion(still)[:, 24:36, 34:46].min() > 0.9
    assert motion.foreground_from_motion(fast)[:, 24:36, 34:46].max() < 0.1


# --------------------------------------------------------------------------- visualisation


def test_flow_to_color_follows_the_middlebury_wheel():
    directions = np.float32([[[0, 0], [1, 0], [-1, 0], [0, 1], [2, 0]]])
    colours = visualise.flow_to_color(directions, max_magnitude=1.0)[0].astype(int)
    assert colours.shape == (5, 3)
    np.testing.assert_array_equal(colours[0], [255, 255, 255])  # no motion: white
    assert colours[1, 0] == 255 and colours[1, 1:].max() < 60  # right: red
    assert colours[2, 0] < 10 and colours[2, 2] > 200  # left: cyan/blue
    assert colours[3, 0] > 200 and colours[3, 2] < 10  # down: yellow/orange
    assert colours[4].max() < 255 * 0.8  # beyond max_magnitude: dimmed
    assert visualise.flow_to_color(directions).dtype == np.uint8


def test_export_flow_visualisation_writes_pngs_and_video(tmp_path, monkeypatch):
    written = {}
    fake = types.ModuleType("vidcam.io.encode")
    fake.write_sdr_video = lambda path, frames, fps, **kw: written.update(path=Path(path), frames=frames, fps=fps)
    monkeypatch.setitem(sys.modules, "vidcam.io.encode", fake)
    flows = _pan_with_square(count=3)
    flows[1].valid_forward[0, :5] = False
    visualise.export_flow_visualisation(flows, tmp_path, fps=24)
    pngs = sorted((tmp_path / "flow_k1").glob("*.png"))
    assert [p.name for p in pngs] == ["00000.png", "00001.png"]
    image = cv2.imread(str(pngs[0]))[..., ::-1]
    np.testing.assert_array_equal(image, written["frames"][0])
    assert written["path"] == tmp_path / "flow_k1.mp4" and written["fps"] == 24
    assert written["frames"].shape == (2, 60, 80, 3) and written["frames"].dtype == np.uint8
    assert image[:5].mean() < 0.6 * image[10:].mean()  # invalid rows darkened
