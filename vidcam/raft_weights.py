"""RAFT weights: torchvision's own (through its weights API and the torch hub cache) or a
user checkpoint, either torchvision-format or an ORIGINAL one (Teed & Deng, princeton-vl/RAFT).

torchvision's ``raft_large`` / ``raft_small`` were ported from the original code, so the
original state dicts map onto them name by name (:func:`convert_original_state_dict`).
"""

from __future__ import annotations

import os
import re
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import optical_flow

from vidcam.errors import VidcamError

CHECKPOINT_ENV = "VIDCAM_RAFT_CHECKPOINT"
MODELS = ("large", "small")
_DOWNLOAD_PROBE_TIMEOUT_S = 3.0  # a reachability check must not stall the run when offline

# Original name fragment -> torchvision name fragment, applied in order to the key after
# "module." is stripped. Encoders: fnet/cnet -> feature_/context_encoder; each conv+norm
# pair became a Conv2dNormActivation (index 0 conv, 1 norm).
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^fnet\.", "feature_encoder."),
    (r"^cnet\.", "context_encoder."),
    (r"^(\w+_encoder)\.conv1\.", r"\1.convnormrelu.0."),
    (r"^(\w+_encoder)\.norm1\.", r"\1.convnormrelu.1."),
    (r"^(\w+_encoder)\.conv2\.", r"\1.conv."),
    (r"^(\w+_encoder\.layer\d\.\d)\.conv(\d)\.", r"\1.convnormrelu\2.0."),
    (r"^(\w+_encoder\.layer\d\.\d)\.norm([12])\.", r"\1.convnormrelu\2.1."),
    # update block: motion encoder, GRU(s), heads
    (r"^update_block\.encoder\.convc(\d)\.", r"update_block.motion_encoder.convcorr\1.0."),
    (r"^update_block\.encoder\.convf(\d)\.", r"update_block.motion_encoder.convflow\1.0."),
    (r"^update_block\.encoder\.conv\.", "update_block.motion_encoder.conv.0."),
    (r"^update_block\.gru\.conv([zrq])(\d)\.", r"update_block.recurrent_block.convgru\2.conv\1."),
    (r"^update_block\.gru\.conv([zrq])\.", r"update_block.recurrent_block.convgru1.conv\1."),  # small: one GRU
    (r"^update_block\.mask\.0\.", "mask_predictor.convrelu.0."),
    (r"^update_block\.mask\.2\.", "mask_predictor.conv."),
)
# In the original ResidualBlock, ``norm3`` is the same module as ``downsample.1``; it is saved
# twice, torchvision keeps it once.
_ALIAS = re.compile(r"^(\w+_encoder\.layer\d\.\d)\.norm3\.(.+)$")


@dataclass(frozen=True)
class WeightsSource:
    """Where RAFT weights come from: a checkpoint file or torchvision's weights API."""

    model: str  # large | small (architecture the weights are for)
    checkpoint: Path | None = None
    torchvision: optical_flow.Raft_Large_Weights | optical_flow.Raft_Small_Weights | None = None

    def identity(self) -> str:
        """A string that changes whenever the weights can differ (for cache keys)."""
        if self.checkpoint is not None:
            stat = self.checkpoint.stat()
            return f"{self.checkpoint.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        return f"torchvision:{self.torchvision}"


def torchvision_weights(model: str) -> optical_flow.Raft_Large_Weights | optical_flow.Raft_Small_Weights:
    if model not in MODELS:
        raise VidcamError(f"flow.raft_model must be one of {', '.join(MODELS)}, got '{model}'")
    enum = optical_flow.Raft_Large_Weights if model == "large" else optical_flow.Raft_Small_Weights
    return enum.DEFAULT


def hub_cache_file(weights: optical_flow.Raft_Large_Weights | optical_flow.Raft_Small_Weights) -> Path:
    """The file torch.hub looks for before downloading ``weights`` (``<hub dir>/checkpoints/<name>``)."""
    name = os.path.basename(urllib.parse.urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def user_checkpoint(setting: str | None) -> Path | None:
    """The checkpoint named by the setting, else by $VIDCAM_RAFT_CHECKPOINT; it must exist."""
    value = setting or os.environ.get(CHECKPOINT_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        origin = "flow.raft_checkpoint" if setting else f"${CHECKPOINT_ENV}"
        raise VidcamError(f"RAFT checkpoint not found: {path} (from {origin})")
    return path


def can_download(url: str, timeout_s: float = _DOWNLOAD_PROBE_TIMEOUT_S) -> bool:
    """Whether ``url``'s host accepts a connection within ``timeout_s`` (no data is fetched)."""
    parts = urllib.parse.urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def where_to_put_weights(model: str) -> str:
    """One sentence telling a user how to give vidcam RAFT weights."""
    return (
        f"put torchvision's file at {hub_cache_file(torchvision_weights(model))}, or point "
        f"flow.raft_checkpoint / ${CHECKPOINT_ENV} at a RAFT checkpoint (torchvision or original "
        "princeton-vl format, e.g. raft-sintel.pth / raft-small.pth)"
    )


def is_original_state_dict(state: dict[str, torch.Tensor]) -> bool:
    return any(key.removeprefix("module.").startswith(("fnet.", "cnet.")) for key in state)


def convert_original_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an original RAFT state dict to torchvision's names (see :data:`_RENAMES`).

    Duplicate ``norm3`` entries are checked equal to their ``downsample.1`` twin and dropped.
    """
    out: dict[str, torch.Tensor] = {}
    aliases: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        name = key.removeprefix("module.")
        for pattern, repl in _RENAMES:
            name = re.sub(pattern, repl, name)
        alias = _ALIAS.match(name)
        if alias:
            aliases[f"{alias[1]}.downsample.1.{alias[2]}"] = tensor
        else:
            out[name] = tensor
    for name, tensor in aliases.items():
        if name not in out or not torch.equal(out[name], tensor):
            raise VidcamError(f"original RAFT checkpoint: norm3 entry without an equal twin {name}")
    return out


def model_of_state_dict(state: dict[str, torch.Tensor]) -> str:
    """large or small, from the width of the feature encoder's first conv (64 vs 32)."""
    key = "feature_encoder.convnormrelu.0.weight"
    if key not in state:
        raise VidcamError("not a RAFT checkpoint: no feature encoder weights")
    return "large" if state[key].shape[0] == 64 else "small"


def load_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A torchvision-format state dict from a torchvision or original RAFT checkpoint file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors vary by torch version
        raise VidcamError(f"cannot read RAFT checkpoint {path}: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise VidcamError(f"RAFT checkpoint {path} holds no state dict")
    return convert_original_state_dict(state) if is_original_state_dict(state) else state


def build_model(model: str) -> nn.Module:
    """An untrained torchvision RAFT of the given size."""
    return optical_flow.raft_large(weights=None) if model == "large" else optical_flow.raft_small(weights=None)


def load_strict(net: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Load ``state`` requiring every tensor to be present with the model's shape, nothing left over."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or extra or wrong:
        raise VidcamError(
            f"RAFT checkpoint {origin} does not fit torchvision's RAFT: "
            f"{len(missing)} missing (e.g. {missing[:2]}), {len(extra)} unexpected (e.g. {extra[:2]}), "
            f"{len(wrong)} with other shapes (e.g. {wrong[:2]})"
        )
    net.load_state_dict(state, strict=True)


def load_model(source: WeightsSource) -> nn.Module:
    """The RAFT network for ``source``, in eval mode on the CPU."""
    if source.checkpoint is not None:
        state = load_checkpoint(source.checkpoint)
        net = build_model(model_of_state_dict(state))
        load_strict(net, state, str(source.checkpoint))
    else:
        builder = optical_flow.raft_large if source.model == "large" else optical_flow.raft_small
        net = builder(weights=source.torchvision, progress=False)
    return net.eval()
