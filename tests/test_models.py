"""Encodings and the implicit camera model: shapes, invariants and small fitting problems (CPU, seconds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidcam.config import CameraConfig, EncodingConfig, NetConfig, load_config
from vidcam.models.camera import (
    PATH_INIT_PX,
    BlurGenerator,
    Exposures,
    ToneMapper,
    make_blur,
)
from vidcam.models.encodings import (
    MLP,
    DenseGrid2D,
    EncodedMLP,
    HashGrid,
    PositionalEncoding,
    encoding_parameters,
    make_encoding,
)
from vidcam.models.model import ClipShape, VidcamModel
from vidcam.models.scene import Frame, LayeredScene
from vidcam.training.losses import rigidity_loss
from vidcam.training.trainer import adam

FIT_STEPS = 200
FIT_LR = 1e-2
FIT_PSNR = 30.0


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    # The problems here are small: one thread is as fast, and far steadier on a busy machine
    # (with more threads than free cores, OpenMP barriers stall).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def pixel_grid(n: int) -> torch.Tensor:
    """Pixel centres of an n x n image in [-1, 1]^2, [n*n, 2] as (x, y)."""
    ticks = (torch.arange(n) + 0.5) / n * 2 - 1
    gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx, gy], dim=-1).reshape(-1, 2)


def checkerboard(xy: torch.Tensor, cells: int) -> torch.Tensor:
    k = torch.floor((xy + 1) / 2 * cells).long()
    return ((k[:, 0] + k[:, 1]) % 2).float()[:, None]


def fit_psnr(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=FIT_LR)
    for _ in range(FIT_STEPS):
        loss = (model(x) - y).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return -10 * math.log10((model(x) - y).square().mean().item())


# ---------------------------------------------------------------- encodings


def test_positional_encoding_dims_and_values() -> None:
    pe = PositionalEncoding(3, 4)
    assert pe.out_dim == 3 * (1 + 2 * 4)
    x = torch.tensor([[0.25, -0.5, 0.1]])
    out = pe(x)
    assert out.shape == (1, pe.out_dim)
    assert torch.allclose(out[0, :3], x[0])
    # x0 with frequencies 2^k π: sines start at 3, cosines at 3 + 3*4
    for k in range(4):
        arg = 2**k * math.pi * 0.25
        assert out[0, 3 + k].item() == pytest.approx(math.sin(arg), abs=1e-6)
        assert out[0, 15 + k].item() == pytest.approx(math.cos(arg), abs=1e-6)


@pytest.mark.parametrize("in_dim", [2, 3])
def test_hashgrid_shape_and_gradients(in_dim: int) -> None:
    grid = HashGrid(in_dim, levels=6, features=2, log2_table_size=10, base_resolution=4, max_resolution=64)
    x = (torch.rand(100, in_dim) * 2 - 1).requires_grad_(True)
    out = grid(x)
    assert out.shape == (100, 12) and grid.out_dim == 12
    assert grid.table.abs().max() <= 1e-4
    out.square().sum().backward()
    assert grid.table.grad is not None and grid.table.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0  # the atlas needs d(features)/d(uv)


def test_hashgrid_dense_levels_are_collision_free() -> None:
    grid = HashGrid(3, levels=5, features=2, log2_table_size=12, base_resolution=4, max_resolution=32)
    assert 0 < grid.n_dense < grid.levels  # both kinds of level are present
    for level in range(grid.n_dense):
        r = grid.level_resolution[level]
        # one point at the centre of every cell touches every vertex as some corner
        axes = [(torch.arange(n - 1) + 0.5) / (n - 1) * 2 - 1 for n in r]
        pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
        idx, _ = grid.corner_indices(pts)
        vertices = set(idx[level].flatten().tolist())
        assert len(vertices) == math.prod(r)  # distinct vertices -> distinct entries
        lo = grid.level_offsets[level]
        assert min(vertices) == lo and max(vertices) == lo + math.prod(r) - 1


def test_hashgrid_matches_bruteforce_interpolation() -> None:
    grid = HashGrid(3, levels=4, features=2, log2_table_size=8, base_resolution=3, max_resolution=24)
    with torch.no_grad():
        grid.table.normal_()
    x = torch.rand(5, 3) * 2 - 1
    out = grid(x)
    for level in range(grid.levels):
        r = torch.tensor(grid.level_resolution[level])
        pos = (x + 1) / 2 * (r - 1)
        cell = torch.minimum(pos.floor().long(), r - 2)
        frac = pos - cell
        expected = torch.zeros(5, 2)
        for corner in range(8):
            bits = torch.tensor([(corner >> d) & 1 for d in range(3)])
            v = cell + bits
            if level < grid.n_dense:
                i = v[:, 0] + v[:, 1] * r[0] + v[:, 2] * r[0] * r[1]
            else:
                i = (v[:, 0] ^ (v[:, 1] * 2654435761) ^ (v[:, 2] * 805459861)) % grid.table_size
            w = torch.where(bits.bool(), frac, 1 - frac).prod(1, keepdim=True)
            expected += w * grid.table[:, grid.level_offsets[level] + i].t()
        assert torch.allclose(out[:, 2 * level : 2 * level + 2], expected, atol=1e-5)


def test_hashgrid_time_axis_capped_at_frames() -> None:
    n_frames = 5
    cfg = EncodingConfig(kind="hashgrid", levels=4, base_resolution=8, max_resolution=64)
    enc = make_encoding(cfg, 3, n_frames=n_frames)
    assert max(r[2] for r in enc.level_resolution) == n_frames
    assert max(r[0] for r in enc.level_resolution) == cfg.max_resolution
    # one time vertex per frame: between two frames the encoding is linear in t
    t = [2 * f / (n_frames - 1) - 1 for f in (1, 2)]
    xy = torch.rand(50, 2) * 2 - 1
    at = [enc(torch.cat([xy, torch.full((50, 1), v)], 1)) for v in t]
    mid = enc(torch.cat([xy, torch.full((50, 1), sum(t) / 2)], 1))
    assert torch.allclose(mid, (at[0] + at[1]) / 2, atol=1e-7)
    uncapped = make_encoding(cfg, 3)
    assert max(r[2] for r in uncapped.level_resolution) == cfg.max_resolution


def test_hashgrid_fits_checkerboard_where_plain_mlp_cannot() -> None:
    xy = pixel_grid(64)
    target = checkerboard(xy, cells=8)
    grid = torch.nn.Sequential(HashGrid(2, 8, 2, 12, 4, 64), MLP(16, 32, 2, 1))
    assert fit_psnr(grid, xy, target) > FIT_PSNR
    assert fit_psnr(MLP(2, 32, 2, 1), xy, target) < FIT_PSNR


def test_hashgrid_fits_video_checkerboard_in_xyt() -> None:
    n_frames, side = 6, 32
    frames = [torch.cat([pixel_grid(side), torch.full((side * side, 1), 2 * f / (n_frames - 1) - 1)], 1)
              for f in range(n_frames)]
    x = torch.cat(frames)
    target = torch.cat([(checkerboard(pixel_grid(side), 4) + f) % 2 for f in range(n_frames)])
    grid = torch.nn.Sequential(HashGrid(3, 8, 2, 12, 4, side, [None, None, n_frames]), MLP(16, 32, 2, 1))
    assert fit_psnr(grid, x, target) > FIT_PSNR
    assert fit_psnr(MLP(3, 32, 2, 1), x, target) < FIT_PSNR


def test_atlas_dynamics_fit_what_changes_in_place_and_start_at_zero() -> None:
    """A texture whose shading changes frame by frame where it stands: with the mapping held (in
    training, rigidity keeps it from picking other texels to fake a change), static atlases cannot
    fit it, atlases with their change over time can."""
    n_frames, side = 6, 32
    frame = Frame(n_frames, side, side)
    xy = pixel_grid(side).repeat(n_frames, 1)
    t = torch.arange(n_frames).repeat_interleave(side * side)
    bump = torch.exp(-(xy.square().sum(1, keepdim=True)) / 0.1)
    target = 0.5 * checkerboard(xy, 4) - 1 + bump * (t[:, None] / (n_frames - 1) - 0.5) * 2

    def fitted_psnr(dynamics: bool) -> float:
        torch.manual_seed(0)
        cfg = load_config("fast").scene
        cfg.layers = 1
        scene = LayeredScene(cfg, frame, dynamics=dynamics)
        if dynamics:
            assert scene.atlas_change(0, xy[:, None], t).abs().max() == 0  # starts as the static atlas
        opt = torch.optim.Adam([p for name, p in scene.named_parameters() if "mappings" not in name], lr=FIT_LR)
        for _ in range(FIT_STEPS):
            loss = (scene(xy, t)["irradiance"].log() - target).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return -10 * math.log10((scene(xy, t)["irradiance"].log() - target).square().mean().item())

    static, changing = fitted_psnr(False), fitted_psnr(True)
    assert changing > 35.0 and static < 20.0, (static, changing)


def test_densegrid_fits_image_patch() -> None:
    uv = pixel_grid(64)
    disc = ((uv - 0.2).norm(dim=1, keepdim=True) < 0.4).float()
    waves = torch.sin(6 * uv[:, :1]) * torch.cos(9 * uv[:, 1:])
    image = (0.5 + 0.25 * waves + 0.2 * disc) * torch.tensor([1.0, 0.8, 0.6])
    grid = DenseGrid2D(levels=4, features=4, base_resolution=8, max_resolution=64)
    assert [g.shape[-1] for g in grid.grids] == [8, 16, 32, 64] and grid.out_dim == 16
    assert fit_psnr(torch.nn.Sequential(grid, MLP(16, 32, 2, 3)), uv, image) > FIT_PSNR
    assert fit_psnr(MLP(2, 32, 2, 3), uv, image) < FIT_PSNR


def test_densegrid_passes_gradient_to_uv() -> None:
    grid = DenseGrid2D(levels=2, features=2, base_resolution=4, max_resolution=8)
    with torch.no_grad():
        for g in grid.grids:
            g.normal_()
    uv = (torch.rand(10, 2) * 2 - 1).requires_grad_(True)
    grid(uv).sum().backward()
    assert uv.grad is not None and uv.grad.abs().sum() > 0


def test_make_encoding_kinds_and_errors() -> None:
    assert isinstance(make_encoding(EncodingConfig(kind="pe"), 2), PositionalEncoding)
    assert isinstance(make_encoding(EncodingConfig(kind="densegrid"), 2), DenseGrid2D)
    with pytest.raises(ValueError):
        make_encoding(EncodingConfig(kind="densegrid"), 3)
    with pytest.raises(ValueError):
        make_encoding(EncodingConfig(kind="fourier"), 2)


def test_mlp_zero_last_and_encoded_mlp_parameter_split() -> None:
    x = torch.rand(7, 3) * 2 - 1
    assert torch.equal(MLP(3, 16, 2, 4, zero_last=True)(x), torch.zeros(7, 4))
    assert MLP(3, 16, 2, 4)(x).abs().sum() > 0
    net = EncodedMLP(3, 4, NetConfig(EncodingConfig(levels=4, log2_table_size=10), hidden=16, layers=2), n_frames=8)
    assert net(x).shape == (7, 4)
    grids, others = encoding_parameters(net)
    assert [p is net.encoding.table for p in grids] == [True]
    assert {id(p) for p in others} == {id(p) for p in net.mlp.parameters()}


def test_encoded_mlp_under_bf16_autocast() -> None:
    net = EncodedMLP(2, 3, NetConfig(EncodingConfig(kind="densegrid", levels=3, max_resolution=64)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        uv = torch.rand(32, 2, dtype=torch.bfloat16) * 2 - 1
        features = net.encoding(uv)
        out = net(uv)
    assert features.dtype == torch.float32
    assert out.shape == (32, 3) and torch.isfinite(out).all()
    assert out.dtype == torch.float32  # the output layer keeps float32 precision


def test_mlp_output_layer_keeps_float32_precision_under_bf16_autocast() -> None:
    net = EncodedMLP(2, 3, NetConfig(EncodingConfig(kind="densegrid", levels=4, features=4, max_resolution=64), 64, 2))
    with torch.no_grad():
        for grid in net.encoding.grids:
            grid.normal_(0, 0.3)
        net.mlp.last.bias.fill_(4.0)  # a bright log irradiance
    uv = torch.rand(4096, 2) * 2 - 1
    reference = net(uv)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(uv)
    # a bf16 output layer: ~5e-3 mean error at this magnitude (measured); float32 output: ~1e-4
    assert (out - reference).abs().mean() < 1e-3


# ---------------------------------------------------------------- camera


def monotone_balanced(tm: ToneMapper) -> ToneMapper:
    """Make every channel non-decreasing (all weights >= 0) with T(0) = 0.5 exactly."""
    with torch.no_grad():
        for w in tm.weights:
            w.abs_()
        tm.biases[-1].zero_()
        tm.biases[-1].sub_(tm.logits(torch.zeros(1, 3))[0].reshape(3, 1, 1))
    return tm


def test_tonemapper_prefit_is_monotone_and_balanced() -> None:
    tm = ToneMapper(hidden=32, layers=2)
    tm.prefit(steps=300, lr=1e-2)
    z = torch.linspace(-6, 6, 601)
    curve = tm.curve(z).detach()
    assert curve.shape == (601, 3)
    assert (curve[1:] - curve[:-1] >= 0).all()
    assert torch.allclose(curve[300], torch.full((3,), 0.5), atol=0.01)
    assert torch.allclose(curve, ToneMapper.prior(z, 2.2)[:, None].expand(-1, 3), atol=0.02)


def test_tonemapper_batched_channels_equal_per_channel_mlps() -> None:
    tm = ToneMapper(hidden=16, layers=2)
    log_e = torch.randn(20, 3)
    log_t = torch.randn(20)
    out = tm(log_e, log_t)
    assert torch.allclose(out, tm(log_e, log_t[:, None]))
    for c in range(3):
        h = (log_e[:, c] + log_t)[:, None]
        for i, (w, b) in enumerate(zip(tm.weights, tm.biases)):
            h = h @ w[c] + b[c]
            h = torch.relu(h) if i < len(tm.weights) - 1 else h
        assert torch.allclose(out[:, c], torch.sigmoid(h[:, 0]), atol=1e-6)


def test_tonemapper_losses_zero_for_good_curve_positive_for_bad() -> None:
    tm = monotone_balanced(ToneMapper(hidden=16, layers=2))
    assert tm.white_balance_loss().item() < 1e-10
    assert tm.monotonic_loss(-5, 5, 64).item() == 0.0
    with torch.no_grad():  # mirror the curve (decreasing) and move it off balance
        tm.weights[-1].neg_()
        tm.biases[-1].neg_().add_(1.0)
    assert tm.white_balance_loss().item() > 0.01
    assert tm.monotonic_loss(-5, 5, 64).item() > 0.0
    tm.monotonic_loss(-5, 5, 64).backward()
    assert tm.weights[0].grad is not None and tm.weights[0].grad.abs().sum() > 0


def test_exposures_bounded_and_anchored_after_big_step() -> None:
    init = np.log(np.array([1, 4, 1, 4, 1, 4], dtype=np.float32))
    exp = Exposures(init, learn=True, bound_ev=1.0)
    assert torch.allclose(exp.all(), torch.from_numpy(init))
    opt = torch.optim.SGD(exp.parameters(), lr=1e4)
    (exp.all() * torch.tensor([5.0, -1, 2, 3, -4, 1])).sum().backward()
    opt.step()
    moved = exp.all().detach() - torch.from_numpy(init)
    assert moved.abs().max() > 0.1
    assert (moved.abs() <= math.log(2.0) + 1e-5).all()  # 1 EV
    assert moved.mean().abs() < 1e-6
    frames = torch.tensor([0, 5, 5])
    assert torch.equal(exp(frames), exp.all()[frames])


def test_exposures_fixed_have_no_parameters() -> None:
    init = torch.tensor([0.0, 1.0, -1.0])
    exp = Exposures(init, learn=False, bound_ev=3.0)
    assert list(exp.parameters()) == []
    assert torch.equal(exp.all(), init)


def blur_setup(kind: str = "patch", kernel: int = 3, radius: float = 2.5) -> tuple[BlurGenerator, torch.Tensor]:
    cfg = CameraConfig(blur_model=kind, blur_kernel=kernel, blur_radius=radius)
    blur = make_blur(cfg, n_frames=10, pixel_size=2 / 64)
    xyt = torch.rand(200, 3) * 2 - 1
    return blur, xyt


def test_patch_blur_initial_psf_is_nearly_a_delta() -> None:
    blur, xyt = blur_setup("patch")
    offsets_model, weights = blur(xyt)
    assert offsets_model.shape == (200, 9, 2) and weights.shape == (200, 9)
    assert (weights[:, 4] > 0.9).all()
    assert torch.allclose(offsets_model[:, 4], torch.zeros(200, 2), atol=1e-6)
    offsets = blur.offsets_px(xyt)
    spacing, radius = blur.grid_px[5, 0].item(), blur.radius  # the regular grid, squashed into the disc
    expected = torch.full((200, 4), radius * math.tanh(spacing / radius))
    assert torch.allclose(offsets.norm(dim=-1)[:, [1, 3, 5, 7]], expected, atol=0.05)
    (offsets_model.sum() + weights[:, 0].sum()).backward()
    grads = [p.grad for p in blur.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_path_blur_starts_short_and_passes_through_the_pixel_at_mid_exposure() -> None:
    blur, xyt = blur_setup("path")
    offsets, weights = blur.offsets_px(xyt), blur(xyt)[1]
    assert torch.allclose(weights, torch.full((200, 9), 1 / 9))
    length = (offsets[:, -1] - offsets[:, 0]).norm(dim=-1)
    assert torch.allclose(length, torch.full((200,), PATH_INIT_PX), atol=0.02)  # (the disc squash shortens it a little)
    steps = offsets[:, 1:] - offsets[:, :-1]  # a straight, evenly timed path at first
    assert torch.allclose(steps, steps[:, :1].expand_as(steps), atol=0.01)
    with torch.no_grad():
        for p in blur.parameters():
            p.normal_(0, 10)
    offsets = blur.offsets_px(xyt)
    assert offsets.norm(dim=-1).max() > 1.0
    assert torch.equal(offsets[:, 4], torch.zeros(200, 2))


@pytest.mark.parametrize("kind", ["patch", "path"])
def test_blur_weights_normalised_and_samples_bounded_with_wild_networks(kind: str) -> None:
    blur, xyt = blur_setup(kind, kernel=5, radius=2.5)
    with torch.no_grad():
        for p in blur.parameters():
            p.normal_(0, 10)
    offsets_model, weights = blur(xyt)
    assert (weights >= 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(200), atol=1e-5)
    offsets = blur.offsets_px(xyt)
    assert offsets.norm(dim=-1).max() > 1.0  # the networks really moved the samples
    assert (offsets.norm(dim=-1) <= blur.radius + 1e-4).all()
    assert torch.allclose(offsets_model / blur.pixel_size, offsets, atol=1e-3)


@pytest.mark.parametrize("kind", ["patch", "path"])
def test_still_frames_keep_a_point_psf_whatever_the_networks_say(kind: str) -> None:
    cfg = CameraConfig(blur_model=kind, blur_kernel=3, blur_radius=2.5)
    blur = make_blur(cfg, n_frames=10, pixel_size=2 / 64, still_frames=[0, 9])
    with torch.no_grad():
        for p in blur.parameters():
            p.normal_(0, 10)
    xyt = torch.rand(2000, 3) * 2 - 1
    still = torch.isin(blur.frame_index(xyt), torch.tensor([0, 9]))
    assert still.any() and (~still).any()
    offsets = blur.offsets_px(xyt)
    assert offsets[still].abs().max() == 0
    assert offsets[~still].norm(dim=-1).max() > 1.0


def test_camera_runs_in_float32_under_bf16_autocast() -> None:
    tm = ToneMapper(hidden=16, layers=2)
    log_e, log_t = torch.randn(8, 3), torch.randn(8)
    blur, xyt = blur_setup()
    reference = tm(log_e, log_t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = tm(log_e.bfloat16(), log_t)
        offsets, weights = blur(xyt)
    assert out.dtype == torch.float32 and offsets.dtype == torch.float32 and weights.dtype == torch.float32
    assert torch.allclose(out, reference, atol=1e-2)  # only the bf16 input rounding differs


def test_atlas_coordinates_keep_float32_precision_under_bf16_autocast() -> None:
    """bf16 has an 8-bit mantissa: projecting model coordinates (~1) in it is off by ~1 px at 640 px."""
    cfg = load_config("fast")
    model = VidcamModel(cfg, ClipShape(10, 360, 640, True))
    with torch.no_grad():
        for mapping in model.scene.mappings:
            for p in mapping.parameters():
                p.add_(torch.randn_like(p) * 0.05)  # a non-zero learned residual and correction
    xy = torch.rand(2000, 2) * 1.8 - 0.9
    t_index = torch.randint(0, 10, (2000,))
    xyt = model.scene.xyt(xy, t_index)
    offsets = torch.randn(2000, 9, 2) * 3 * model.frame.pixel_size
    mapping = model.scene.mappings[0]
    reference = mapping(xy, xyt, t_index, offsets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = mapping(xy, xyt, t_index, offsets)
    for ref, out in zip(reference, low):
        assert out.dtype == torch.float32
        assert (out - ref).abs().max() / model.frame.pixel_size < 0.1


def test_rigidity_loss_is_float32_under_bf16_autocast() -> None:
    """Finite differences 2 px apart of bf16 hidden layers were ~20 % noise."""
    model = VidcamModel(load_config("fast"), ClipShape(10, 360, 640, False))
    with torch.no_grad():
        for mapping in model.scene.mappings:
            for p in mapping.residual.parameters():
                p.add_(torch.randn_like(p) * 0.02)
    xy = torch.rand(2048, 2) * 1.8 - 0.9
    t_index = torch.randint(0, 10, (2048,))
    step = 2 * model.frame.pixel_size
    reference = rigidity_loss(model.scene, xy, t_index, step)
    assert reference > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = rigidity_loss(model.scene, xy, t_index, step)
    torch.testing.assert_close(low, reference, rtol=1e-5, atol=0)


def test_training_optimiser_uses_the_fused_adam_kernel_and_takes_the_same_step() -> None:
    """torch 2.4+ has a fused CPU Adam (6x faster on an 11 M-parameter atlas grid); it must be the
    one chosen and must step like the reference implementation."""
    torch.manual_seed(0)
    start = [torch.randn(1, 4, 64, 64), torch.randn(64, 64)]
    grads = [torch.randn_like(p) for p in start]
    stepped = []
    for make in (adam, torch.optim.Adam):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        optimiser = make([{"params": params[:1], "lr": 1e-2}, {"params": params[1:], "lr": 1e-3}], betas=(0.9, 0.99), eps=1e-15)
        for _ in range(3):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimiser.step()
        stepped.append(params)
    if tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 4):  # older: adam falls back
        assert adam([{"params": [torch.nn.Parameter(torch.zeros(2))]}]).defaults["fused"] is True
    for ours, reference, before in zip(*stepped, start):
        assert not torch.equal(ours, before)
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
