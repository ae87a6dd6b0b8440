"""``vidcam edit``: re-render the clip with a painted atlas.

The painted picture is composited over the exported one in display space (as an image editor
would), taken back to linear irradiance through the inverse display curve, and sampled in
place of the layer's atlas wherever it was changed. Texels the user left untouched keep the
learned atlas exactly (8-bit pictures clip highlights; the learned atlas does not), so an
unedited picture reproduces the run's own render.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidcam.atlas.display import DisplayCurve
from vidcam.atlas.export import atlas_picture
from vidcam.atlas.layout import AtlasLayout, find_layout, read_layout
from vidcam.errors import VidcamError
from vidcam.fast_render import AtlasOverride, rendered_frames
from vidcam.io.encode import write_hdr10_video, write_sdr_video
from vidcam.io.images import read_png
from vidcam.models.model import VidcamModel
from vidcam.rendering import Evaluate, display_clip, to_uint8
from vidcam.run import Run, open_run
from vidcam.runlock import note_if_unfinished, reading_run, refuse_existing

HALF_CODE = 0.5 / 255  # an edited value this close to the exported one counts as untouched


def check_layer(run: Run, layer: int) -> None:
    if not 0 <= layer < run.n_layers:
        raise VidcamError(f"layer {layer} is out of range: the run has layers 0..{run.n_layers - 1}")


@dataclass
class EditResult:
    sdr: np.ndarray  # uint8 [N,H,W,3], displayed like the run's enhanced.mp4
    hdr: np.ndarray | None  # float32 [N,H,W,3] linear, exposure-normalised (runs with an hdr_scale)


def read_edit(path: Path, layout: AtlasLayout) -> tuple[np.ndarray, np.ndarray]:
    """The edited picture as float RGB [h,w,3] and alpha [h,w,1] in [0, 1]; it must match the export's size."""
    image = read_png(path)
    if image.shape[:2] != (layout.height, layout.width):
        raise VidcamError(
            f"{path} is {image.shape[1]}x{image.shape[0]} but layer {layout.layer}'s atlas is "
            f"{layout.width}x{layout.height}: edit the exported {layout.file} without resizing it"
        )
    peak = float(np.iinfo(image.dtype).max)
    image = image.astype(np.float64) / peak
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] in (1, 2):  # grey, grey + alpha
        image = np.concatenate([image[..., :1].repeat(3, axis=2), image[..., 1:]], axis=2)
    alpha = image[..., 3:4] if image.shape[2] == 4 else np.ones_like(image[..., :1])
    return image[..., :3], alpha


def edit_texture(rgb: np.ndarray, alpha: np.ndarray, original: np.ndarray, curve: DisplayCurve) -> np.ndarray:
    """[4,h,w] float32 for grid_sample: (m x edited irradiance, m), m = 1 where the picture was changed.

    The edit is composited over the exported picture in display space (as an image editor
    would), then taken back to linear irradiance through the inverse display curve.
    """
    before = original.astype(np.float64) / 255
    composite = alpha * rgb + (1 - alpha) * before
    changed = (np.abs(composite - before) > HALF_CODE).any(axis=-1, keepdims=True).astype(np.float64)
    irradiance = np.exp(curve.inverse(composite))
    return np.concatenate([changed * irradiance, changed], axis=-1).transpose(2, 0, 1).astype(np.float32)


def edited_irradiance(model: VidcamModel, layout: AtlasLayout, texture: Tensor) -> Evaluate:
    """evaluate(xy, t) -> [B,3] sharp irradiance with layer ``layout.layer``'s atlas replaced where edited."""
    scene, layer = model.scene, layout.layer

    def evaluate(xy: Tensor, t: Tensor) -> Tensor:
        out = scene(xy, t)
        grid = layout.normalised(out["uv"][layer]).view(1, 1, -1, 2)
        sampled = F.grid_sample(texture, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        sampled = sampled.view(4, -1).t()  # [B,4]: premultiplied irradiance, coverage of the edit
        layers = out["layer_irradiance"].clone()
        layers[:, layer] = sampled[:, :3] + (1 - sampled[:, 3:]) * layers[:, layer]
        return (out["weights"][..., None] * layers).sum(dim=1)

    return evaluate


def load_edit(run: Run, layer: int, atlas_png: Path) -> tuple[AtlasLayout, Tensor]:
    """The layout of the edited layer and its edit texture [1,4,h,w] on the model's device."""
    check_layer(run, layer)
    layouts, curve = read_layout(find_layout(run, atlas_png), run)
    layout = layouts[layer]
    curve.tabulate(run.model)
    rgb, alpha = read_edit(atlas_png, layout)
    original = atlas_picture(run.model, layout, curve, run.chunk)
    texture = edit_texture(rgb, alpha, original, curve)
    return layout, torch.as_tensor(texture, device=run.model.device)[None]


def render_edited(run: Run, layer: int, atlas_png: str | Path) -> EditResult:
    """Every frame of the run re-rendered with ``atlas_png`` as layer ``layer``'s atlas (no files written)."""
    layout, texture = load_edit(run, layer, Path(atlas_png))
    irradiance = edited_irradiance(run.model, layout, texture)
    override = AtlasOverride(layout.layer, layout.normalised, texture)
    camera = run.operator == "camera"
    frames = np.stack(list(rendered_frames(run.model, run.cfg.render, camera, override, irradiance, "edit")))
    if camera:
        return EditResult(to_uint8(frames), None)
    hdr = frames * run.hdr_scale
    return EditResult(display_clip(hdr, run.operator), hdr)


def edit_outputs(output: Path, mode: str) -> list[Path]:
    """The files ``edit_run`` writes: the SDR video, and its HDR10 twin for HDR runs."""
    return [output] + ([output.with_name(f"{output.stem}_hdr10{output.suffix}")] if mode == "hdr" else [])


def edit_run(
    run_dir: str | Path,
    layer: int,
    atlas_png: str | Path,
    output: str | Path | None = None,
    device: str | torch.device = "auto",
    overwrite: bool = False,
) -> Path:
    """Re-render the run with an edited atlas picture; writes an SDR MP4 (and HDR10 in HDR mode).

    Refuses when an output exists already, unless ``overwrite``; refuses while the run trains.
    """
    with reading_run(Path(run_dir)):
        run = open_run(run_dir, device)
        output = Path(output) if output is not None else run.folder / f"edit_layer{layer}.mp4"
        outputs = edit_outputs(output, run.plan.mode)
        refuse_existing(outputs, overwrite)
        note_if_unfinished(run.folder, run.state["step"], run.cfg.train.steps)
        result = render_edited(run, layer, atlas_png)
        rc = run.cfg.render
        audio = run.audio_source
        write_sdr_video(output, result.sdr, run.fps, rc.video_crf(), audio)
        if len(outputs) > 1 and result.hdr is not None:
            write_hdr10_video(outputs[1], result.hdr, run.fps, rc.hdr10_white_nits, rc.hdr10_peak_nits, rc.video_crf(), audio)
    return output
