"""The implicit camera model of Huang et al. (CVPR 2023): tone mapping, exposure and blur.

Log quantities are natural logs. ``z = log irradiance + log exposure time`` is the log
exposure reaching the sensor; the tone mapper turns it into a pixel value in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidcam.config import CameraConfig
from vidcam.models.encodings import EncodedMLP

_EPS = 1e-12  # keeps the radial squash differentiable at an offset of exactly zero (px^2)
DEFAULT_Z_RANGE = (-6.0, 6.0)  # log irradiance + log exposure the tone curve is fitted on before data says otherwise


class ToneMapper(nn.Module):
    """Three per-channel MLPs ``T_c: z -> [0, 1]`` (``layers`` hidden ReLU layers of ``hidden``, sigmoid out).

    The channels are evaluated together: each layer's weights are stored as ``[3, in, out]`` and
    applied with one ``torch.baddbmm``. It always runs in float32 (autocast off): it is tiny, and
    bf16 would quantise the output to ~1/256 and make the finite-difference monotonicity term noise.
    """

    def __init__(self, hidden: int = 128, layers: int = 2):
        super().__init__()
        dims = [1] + [hidden] * layers + [1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
            self.weights.append(nn.Parameter(torch.empty(3, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(3, 1, fan_out).uniform_(-bound, bound)))

    def logits(self, z: Tensor) -> Tensor:
        """Pre-sigmoid outputs ``[B, 3]`` for per-channel inputs ``z`` ``[B, 3]``."""
        with torch.autocast(z.device.type, enabled=False):
            h = z.float().t()[:, :, None]  # [3, B, 1]
            last = len(self.weights) - 1
            for i, (w, b) in enumerate(zip(self.weights, self.biases)):
                h = torch.baddbmm(b, h, w)
                if i < last:
                    h = torch.relu(h)
            return h[:, :, 0].t()

    def forward(self, log_irradiance: Tensor, log_exposure: Tensor) -> Tensor:
        """Pixel values ``[B, 3]`` from log irradiance ``[B, 3]`` and log exposure time ``[B]`` or ``[B, 1]``."""
        z = log_irradiance.float() + log_exposure.float().reshape(-1, 1)
        return torch.sigmoid(self.logits(z))

    def curve(self, z: Tensor) -> Tensor:
        """``T_c(z)`` for every channel: ``z`` ``[M]`` -> ``[M, 3]``."""
        return torch.sigmoid(self.logits(z.float()[:, None].expand(-1, 3)))

    def white_balance_loss(self) -> Tensor:
        """``sum_c (T_c(0) - 0.5)^2``: mid-grey maps to mid-grey in every channel."""
        zero = self.weights[0].new_zeros(1)
        return (self.curve(zero) - 0.5).square().sum()

    def monotonic_loss(self, z_min: float, z_max: float, samples: int) -> Tensor:
        """Mean ``ReLU(-dT/dz)`` over ``samples`` steps of ``[z_min, z_max]``, by finite differences.

        The grid is shifted by one common random fraction of a step each call, so that over
        training a dip narrower than the step cannot hide between fixed sample points.
        """
        step = (z_max - z_min) / samples
        shift = (torch.rand((), device=self.weights[0].device) - 0.5) * step
        z = torch.linspace(z_min, z_max, samples + 1, device=self.weights[0].device) + shift
        t = self.curve(z)
        return torch.relu(-(t[1:] - t[:-1]) / step).mean()

    @staticmethod
    def prior(z: Tensor, gamma: float) -> Tensor:
        """A sigmoid in log exposure whose log-log slope at mid-grey is ``1/gamma``, like a gamma curve.

        ``T(z) = sigmoid(2 z / gamma)``: ``T(0) = 0.5`` and ``d log T / dz = (2/gamma)(1 - T) = 1/gamma`` at 0.
        """
        return torch.sigmoid(2.0 * z / gamma)

    def prefit(
        self,
        steps: int,
        lr: float = 1e-3,
        gamma: float = 2.2,
        z_range: tuple[float, float] = DEFAULT_Z_RANGE,
        batch: int = 256,
    ) -> None:
        """Fit every channel to ``prior(z, gamma)`` on ``z_range`` with its own Adam (in place)."""
        if steps <= 0:
            return
        device = self.weights[0].device
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        lo, hi = z_range
        for _ in range(steps):
            z = torch.rand(batch, device=device) * (hi - lo) + lo
            target = self.prior(z, gamma)[:, None].expand(-1, 3)
            loss = F.mse_loss(self.curve(z), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


class Exposures(nn.Module):
    """Per-frame log exposure times (natural log).

    With ``learn=True`` each frame gets a trained offset from its initial guess. Offsets are
    ``tanh``-squashed, centred (zero mean over frames, so the exposures cannot drift against the
    irradiance scale) and, if centring pushed any past the bound, scaled down together; so every
    frame stays within ``±bound_ev`` EV of its guess and the mean stays exactly at the guesses' mean.
    """

    def __init__(self, init_log_exposure: Tensor | np.ndarray, learn: bool, bound_ev: float):
        super().__init__()
        init = torch.as_tensor(init_log_exposure, dtype=torch.float32).detach().clone().reshape(-1)
        self.register_buffer("init", init)
        self.bound = bound_ev * math.log(2.0)  # EV are log2 units
        self.raw = nn.Parameter(torch.zeros_like(init)) if learn else None

    def all(self) -> Tensor:
        """Log exposure of every frame, ``[N]``."""
        if self.raw is None:
            return self.init
        offset = self.bound * torch.tanh(self.raw)
        offset = offset - offset.mean()
        peak = offset.abs().max()
        offset = offset * torch.clamp(self.bound / peak.clamp_min(_EPS), max=1.0)
        return self.init + offset

    def forward(self, frame_index: Tensor) -> Tensor:
        """Log exposure ``[B]`` of the frames ``frame_index`` (long ``[B]``)."""
        return self.all()[frame_index]


FRAME_LOGIT_SCALE = 10.0  # per-frame blending logits learn this many times faster than their raw values
PATH_DEGREE = 3  # camera path within an exposure: a cubic in time through the pixel at mid-exposure
PATH_INIT_PX = 1.0  # initial path length: a zero-length path has no gradient towards blur


class BlurGenerator(nn.Module):
    """A spatially and temporally varying PSF: ``K`` weighted sample offsets (pixels) per pixel.

    Blurry irradiance at a pixel is ``sum_k w_k r(p + offset_k)``. Subclasses predict the raw
    offsets and the weights from the pixel centre ``(x_n, y_n, t_n)``; every offset is squashed
    radially into the disc of radius ``s`` px: ``p -> p * s tanh(|p|/s) / |p|``. Camera shake
    changes abruptly from frame to frame (a sharp frame next to a blurred one), which the coarse
    time resolution of the networks' encodings cannot follow: per-frame terms carry each frame's
    overall PSF and the networks its variation across the frame.
    """

    def __init__(self, cfg: CameraConfig, n_frames: int, pixel_size: float, still_frames: list[int] | None = None):
        super().__init__()
        self.samples = cfg.blur_kernel**2
        self.radius = cfg.blur_radius
        self.pixel_size = pixel_size
        self.n_frames = n_frames
        moving = torch.ones(n_frames)
        moving[list(still_frames or [])] = 0.0
        self.register_buffer("moving", moving, persistent=False)  # 0: the frame's PSF is held at a delta

    def frame_index(self, xyt: Tensor) -> Tensor:
        """The frame of each point, from its model time ``t_n`` in [-1, 1]."""
        return ((xyt[:, 2].float() + 1) * 0.5 * (self.n_frames - 1)).round().long().clamp(0, self.n_frames - 1)

    def raw_offsets_px(self, xyt: Tensor) -> Tensor:
        raise NotImplementedError

    def weights(self, xyt: Tensor) -> Tensor:
        raise NotImplementedError

    def offsets_px(self, xyt: Tensor) -> Tensor:
        """Sample offsets from the pixel centre in pixels, ``[B, K, 2]``, each within ``radius``."""
        p = self.raw_offsets_px(xyt) * self.moving[self.frame_index(xyt)][:, None, None]
        r = torch.sqrt(p.square().sum(-1, keepdim=True) + _EPS)
        return p * (self.radius * torch.tanh(r / self.radius) / r)

    def forward(self, xyt: Tensor) -> tuple[Tensor, Tensor]:
        """Sample offsets ``[B, K, 2]`` in model units and their weights ``[B, K]`` (sum 1)."""
        return self.offsets_px(xyt) * self.pixel_size, self.weights(xyt)


class PatchBlur(BlurGenerator):
    """The PSF of Huang et al.: an ``n x n`` patch of free sample offsets with softmax weights.

    An offset network predicts a 2-D offset for each sample of the regular ``n x n`` grid
    (``cfg.blur_spacing`` px apart, centred) and a weight network the ``n*n`` blending logits.
    At initialisation the offsets are zero and the logits put ``centre_weight`` on the centre
    sample, so the PSF starts as (nearly) a delta.
    """

    def __init__(self, cfg: CameraConfig, n_frames: int, pixel_size: float, still_frames: list[int] | None = None,
                 centre_weight: float = 0.95):
        super().__init__(cfg, n_frames, pixel_size, still_frames)
        n = cfg.blur_kernel
        ticks = (torch.arange(n, dtype=torch.float32) - (n - 1) / 2) * cfg.blur_spacing
        gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
        self.register_buffer("grid_px", torch.stack([gx, gy], dim=-1).reshape(-1, 2), persistent=False)  # [n*n, 2]
        self.offset_net = EncodedMLP(3, 2 * self.samples, cfg.blur_net, n_frames, zero_last=True)
        self.weight_net = EncodedMLP(3, self.samples, cfg.blur_net, n_frames, zero_last=True)
        self.frame_offsets = nn.Parameter(torch.zeros(n_frames, self.samples, 2))
        self.frame_logits = nn.Parameter(torch.zeros(n_frames, self.samples))
        if self.samples > 1:
            # softmax gives the centre w when its logit exceeds the others (all 0) by log(w (K-1) / (1-w)).
            centre_logit = math.log(centre_weight * (self.samples - 1) / (1 - centre_weight))
            with torch.no_grad():
                self.weight_net.mlp.last.bias[self.samples // 2] = centre_logit

    def raw_offsets_px(self, xyt: Tensor) -> Tensor:
        learned = self.offset_net(xyt).float().reshape(-1, self.samples, 2) + self.frame_offsets[self.frame_index(xyt)]
        # Scaled by the radius so that an optimizer step moves samples by a useful fraction of a pixel.
        return self.grid_px + self.radius * learned

    def weights(self, xyt: Tensor) -> Tensor:
        logits = self.weight_net(xyt).float() + FRAME_LOGIT_SCALE * self.frame_logits[self.frame_index(xyt)]
        return torch.softmax(logits, dim=-1)


class PathBlur(BlurGenerator):
    """Camera shake as a path: ``K = n*n`` equally weighted samples at evenly spaced instants
    ``tau`` in [-1/2, 1/2] of the exposure, at ``p(tau) = s * sum_j c_j (2 tau)^j`` (j = 1..3).

    ``p(0) = 0``: the sharp frame is the scene at mid-exposure, where the pixel itself looks; with
    free offsets and weights (``PatchBlur``) it may settle anywhere under the blur (e.g. its
    centroid, which a curved path leaves). Six numbers per pixel instead of ``3 n^2`` are also
    quicker to learn. The coefficients ``c_j`` (endpoint displacement in radii) come from a
    network plus a per-frame term, which starts as a short path in a random direction: at
    exactly zero length the loss has no gradient towards lengthening it.
    """

    def __init__(self, cfg: CameraConfig, n_frames: int, pixel_size: float, still_frames: list[int] | None = None):
        super().__init__(cfg, n_frames, pixel_size, still_frames)
        two_tau = torch.linspace(-1, 1, self.samples) if self.samples > 1 else torch.zeros(1)
        self.register_buffer("powers", two_tau[:, None] ** torch.arange(1, PATH_DEGREE + 1), persistent=False)  # [K, degree]
        self.coefficient_net = EncodedMLP(3, 2 * PATH_DEGREE, cfg.blur_net, n_frames, zero_last=True)
        angle = torch.rand(n_frames) * 2 * math.pi
        start = torch.zeros(n_frames, PATH_DEGREE, 2)
        start[:, 0] = (PATH_INIT_PX / 2 / cfg.blur_radius) * torch.stack([angle.cos(), angle.sin()], dim=-1)
        self.frame_coefficients = nn.Parameter(start)

    def raw_offsets_px(self, xyt: Tensor) -> Tensor:
        coefficients = self.coefficient_net(xyt).float().reshape(-1, PATH_DEGREE, 2)
        coefficients = coefficients + self.frame_coefficients[self.frame_index(xyt)]
        return self.radius * torch.einsum("kj,bjc->bkc", self.powers, coefficients)

    def weights(self, xyt: Tensor) -> Tensor:
        return xyt.new_full((xyt.shape[0], self.samples), 1.0 / self.samples, dtype=torch.float32)


BLUR_MODELS = {"patch": PatchBlur, "path": PathBlur}


def make_blur(cfg: CameraConfig, n_frames: int, pixel_size: float, still_frames: list[int] | None = None) -> BlurGenerator:
    """The PSF model named by ``cfg.blur_model`` (checked when the config is loaded); ``still_frames``
    keep a delta PSF."""
    return BLUR_MODELS[cfg.blur_model](cfg, n_frames, pixel_size, still_frames)
