"""Saving and loading a run's training state; rebuilding its model for rendering and editing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vidcam.config import Config, config_from_dict
from vidcam.errors import VidcamError
from vidcam.io.atomic import atomic_path
from vidcam.models.model import ClipShape, VidcamModel


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise VidcamError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # a truncated or foreign file: say so in one line
        raise VidcamError(f"cannot read checkpoint {path}: {exc}") from None


def model_from_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[VidcamModel, Config, dict]:
    """Rebuild the trained model of a run, in eval mode on ``device``."""
    state = load_checkpoint(path, device)
    cfg = config_from_dict(state["config"])
    shape = dict(state["shape"])
    if "learn_exposure" not in shape:  # saved before the plan decided it: the config held the decision
        shape["learn_exposure"] = cfg.camera.learn_exposure is not False
    model = VidcamModel(cfg, ClipShape(**shape))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg, state
