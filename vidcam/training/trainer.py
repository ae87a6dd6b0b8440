"""The training loop: bootstrap, main loop with scheduled loss weights, checkpoints and resume."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import torch

from vidcam.config import Config
from vidcam.errors import VidcamError
from vidcam.log import log
from vidcam.models.camera import DEFAULT_Z_RANGE
from vidcam.models.encodings import encoding_parameters
from vidcam.models.model import VidcamModel
from vidcam.plan import RunPlan
from vidcam.progress import Progress, progress
from vidcam.training import losses
from vidcam.training.checkpoint import load_checkpoint, save_checkpoint
from vidcam.training.data import ClipData

STEP_SCHEDULE = ((0.8, 0.1), (0.5, 0.3))  # lr_schedule "step": (progress past, lr factor)
PROGRESS_TICKS = 1000  # resolution of the progress bar


class Interrupted(VidcamError):
    exit_code = 130


def linear_decay(weight: float, progress: float, over: float) -> float:
    """``weight`` falling linearly to 0 at ``progress == over``."""
    return weight * max(0.0, 1.0 - progress / over) if over > 0 else 0.0


def adam(groups: list[dict[str, Any]], **settings: Any) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one for the parameters' device (CUDA; CPU since
    torch 2.4), else the default. On 2 CPU cores the default's per-tensor loop took 28 % of a
    training step with a 1024-vertex atlas grid (11 M parameters: 60 ms a step, fused 9 ms)."""
    try:
        return torch.optim.Adam(groups, fused=True, **settings)
    except RuntimeError:  # an older torch without a fused kernel for this device
        return torch.optim.Adam(groups, **settings)


class Trainer:
    def __init__(self, cfg: Config, plan: RunPlan, model: VidcamModel, data: ClipData, checkpoint_path: Path):
        self.cfg, self.plan, self.model, self.data = cfg, plan, model, data
        self.checkpoint_path = checkpoint_path
        self.device = data.device
        grids, others = encoding_parameters(model)
        tc = cfg.train
        self.optimizer = adam(
            [
                {"params": grids, "lr": tc.lr * tc.lr_encoding_scale, "base_lr": tc.lr * tc.lr_encoding_scale},
                {"params": others, "lr": tc.lr, "base_lr": tc.lr},
            ],
            betas=(0.9, 0.99),
            eps=1e-15 if grids else 1e-8,
        )
        self.step = 0
        self.elapsed = 0.0  # seconds spent in the main loop, across resumes
        self.history: list[dict[str, float]] = []
        self.z_range = DEFAULT_Z_RANGE  # log irradiance + log exposure seen in training
        self.autocast = self._autocast_context()
        self.forward = torch.compile(model) if tc.compile else model

    def _autocast_context(self):
        precision = self.cfg.train.precision
        use_bf16 = precision == "bf16" or (precision == "auto" and self.device.type == "cuda")
        if use_bf16:
            return lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext

    # ----- state -----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "plan": self.plan.to_dict(),
            "shape": self.model.meta(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "history": self.history,
            "generator": self.data.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "z_range": self.z_range,
        }

    def save(self) -> None:
        save_checkpoint(self.checkpoint_path, self.state())

    def restore(self) -> None:
        state = load_checkpoint(self.checkpoint_path, self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.elapsed, self.history = state["step"], state["elapsed"], state["history"]
        self.data.generator.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.z_range = tuple(state["z_range"])

    # ----- schedule --------------------------------------------------------------------
    def progress(self) -> float:
        tc = self.cfg.train
        by_steps = self.step / max(tc.steps, 1)
        by_time = self.elapsed / tc.time_budget if tc.time_budget else 0.0
        return min(1.0, max(by_steps, by_time))

    def finished(self) -> bool:
        return self.progress() >= 1.0

    def lr_factor(self, progress: float) -> float:
        tc = self.cfg.train
        warmup = min(1.0, (self.step + 1) / max(tc.warmup_steps, 1))
        if tc.lr_schedule == "constant":
            return warmup
        if tc.lr_schedule == "step":
            return warmup * next((factor for start, factor in STEP_SCHEDULE if progress > start), 1.0)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return warmup * (tc.lr_final_fraction + (1 - tc.lr_final_fraction) * cosine)

    def loss_weights(self, progress: float) -> dict[str, float]:
        lc = self.cfg.loss
        return {
            "color": lc.color,
            "flow": linear_decay(lc.flow, progress, lc.flow_decay),
            "white_balance": lc.white_balance,
            "monotonic": lc.monotonic,
            "rigidity": lc.rigidity
            * (1 - (1 - lc.rigidity_floor) * min(1.0, progress / max(lc.rigidity_decay, 1e-9))),
            "alpha_init": linear_decay(lc.alpha_init, progress, lc.alpha_init_decay),
            "alpha_binary": lc.alpha_binary,
            "atlas_bounds": lc.atlas_bounds,
            "atlas_change": lc.atlas_change,
        }

    # ----- steps -----------------------------------------------------------------------
    def loss_terms(self, weights: dict[str, float]) -> dict[str, torch.Tensor]:
        tc, lc = self.cfg.train, self.cfg.loss
        scene = self.model.scene
        batch = self.data.pixels(tc.batch_size)
        with self.autocast():
            out = self.forward(batch.xy, batch.t)
            terms = {"color": losses.color_loss(out["rgb"], batch.rgb)}
            if weights["flow"] > 0:
                links = self.data.flow_links(tc.flow_batch_size)
                if links is not None:
                    terms["flow"] = losses.flow_loss(scene, links)
            if weights["rigidity"] > 0:
                n = min(tc.reg_batch_size, tc.batch_size)
                step = lc.rigidity_step_px * self.model.frame.pixel_size
                terms["rigidity"] = losses.rigidity_loss(scene, batch.xy[:n], batch.t[:n], step)
        terms["white_balance"] = self.model.tone.white_balance_loss()
        terms["monotonic"] = self.model.tone.monotonic_loss(*self.z_range, lc.monotonic_samples)
        terms["atlas_bounds"] = losses.atlas_bounds_loss(out["uv"].float())
        if "atlas_change_sq" in out:
            terms["atlas_change"] = out["atlas_change_sq"]
        if scene.n_layers > 1:
            terms["alpha_binary"] = losses.alpha_binary_loss(out["weights"])
            if batch.mask is not None and weights["alpha_init"] > 0:
                terms["alpha_init"] = losses.alpha_init_loss(out["weights"], batch.mask)
        self._track_z_range(out["log_irradiance"], batch.t)
        return terms

    def _track_z_range(self, log_irradiance: torch.Tensor, t: torch.Tensor) -> None:
        if self.step % self.cfg.train.log_every:
            return
        z = (log_irradiance + self.model.exposures(t)[:, None]).detach()
        margin = self.cfg.loss.monotonic_margin
        self.z_range = (z.min().item() - margin, z.max().item() + margin)

    def train_step(self) -> dict[str, torch.Tensor]:
        progress = self.progress()
        weights = self.loss_weights(progress)
        factor = self.lr_factor(progress)
        self.data.favour(linear_decay(1.0, progress, self.cfg.train.sharp_first))
        self.model.scene.changing = progress >= self.cfg.scene.atlas_dynamics_start
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        terms = self.loss_terms(weights)
        total = sum(weights[name] * value for name, value in terms.items())
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.step += 1
        return {"total": total, **terms}

    def bootstrap(self) -> None:
        """Fit the tone mapper to its prior and, with masks, the alpha to its initialisation."""
        cc, tc = self.cfg.camera, self.cfg.train
        self.model.tone.prefit(cc.tone_prefit_steps)
        scene = self.model.scene
        if scene.alpha is None or self.data.foreground is None or tc.bootstrap_steps <= 0:
            return
        optimizer = adam([{"params": list(scene.alpha.parameters())}], lr=tc.lr * tc.lr_encoding_scale)
        for _ in progress(range(tc.bootstrap_steps), "bootstrap", unit="step", leave=False):
            batch = self.data.pixels(tc.reg_batch_size)
            with self.autocast():
                weights = scene.layer_weights(batch.xy, batch.t)
            loss = losses.alpha_init_loss(weights.float(), batch.mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    # ----- loop ------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> list[dict[str, float]]:
        tc = self.cfg.train
        if resume and self.checkpoint_path.is_file():
            self.restore()
            log(f"resuming from step {self.step} of {tc.steps} ({self.checkpoint_path})")
        else:
            if resume:
                log(f"--resume: no checkpoint in {self.checkpoint_path.parent} yet (the run stopped before "
                    "training started): training starts afresh")
            started = time.perf_counter()
            self.bootstrap()
            self.elapsed += time.perf_counter() - started  # the time budget bounds the set-up too
            self.save()  # the first checkpoint: a kill from here on resumes instead of starting over
        last_save, last_save_step = time.monotonic(), self.step
        # The bar counts progress (steps or time budget, whichever ends training first), so its ETA holds for both.
        bar = progress(
            desc="train", total=PROGRESS_TICKS, initial=round(self.progress() * PROGRESS_TICKS), show_count=False
        )
        try:
            while not self.finished():
                started = time.perf_counter()
                terms = self.train_step()
                if self.step % tc.log_every == 0 or self.finished():
                    self._log(terms, bar)
                self.elapsed += time.perf_counter() - started
                bar.update(round(self.progress() * PROGRESS_TICKS) - bar.n)
                due_by_time = time.monotonic() - last_save > tc.checkpoint_minutes * 60
                if due_by_time or self.step - last_save_step >= tc.checkpoint_steps:
                    self.save()
                    last_save, last_save_step = time.monotonic(), self.step
        except KeyboardInterrupt:
            bar.close()
            self.save()
            raise Interrupted(
                f"interrupted at step {self.step}; checkpoint saved to {self.checkpoint_path} (continue with --resume)"
            ) from None
        bar.close()
        self.model.scene.changing = True
        self.save()
        return self.history

    def _log(self, terms: dict[str, torch.Tensor], bar: Progress) -> None:
        values = {name: float(value.detach()) for name, value in terms.items()}
        values["psnr"] = -10 * math.log10(max(values["color"], 1e-12))
        values.update(step=self.step, seconds=self.elapsed)
        self.history.append(values)
        bar.set_postfix(step=self.step, loss=f"{values['total']:.4g}", psnr=f"{values['psnr']:.2f}")
