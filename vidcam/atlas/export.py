"""``vidcam atlas``: see what each layer learned.

``export_atlas`` writes, for every layer k (0 = background, front-most last):

* ``layer{k}_atlas.png``: the layer's atlas over the region the clip covers, at about the
  frames' pixel density, shown the way the run showed its output (:mod:`vidcam.atlas.display`);
  ``layer{k}_atlas.exr`` the same in linear light (float32);
  ``layer{k}_atlas_preview.png`` with the covered region outlined and the rest dimmed;
* ``layer{k}_alpha.mp4``: the layer's weight in every frame, grey;
* ``layer{k}_mapping.mp4``: a UV-coloured checkerboard painted in atlas space and carried
  back onto the frames through the mapping, blended by the layer's weight;

plus ``contact_sheet.png`` (input frames, per-layer alpha and colour, the atlases) and
``atlas.json`` (:mod:`vidcam.atlas.layout`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from vidcam.atlas.display import DisplayCurve, display_curve, display_frame
from vidcam.atlas.layout import (
    LAYOUT_NAME,
    AtlasLayout,
    Coverage,
    coverage_mask,
    exr_scale,
    measure_coverage,
    plan_layout,
    write_layout,
)
from vidcam.errors import VidcamError
from vidcam.fast_render import FastScene, FastSettings, rendered_frames
from vidcam.io.encode import write_sdr_video
from vidcam.io.images import write_exr, write_png
from vidcam.io.video import read_video
from vidcam.models.model import VidcamModel
from vidcam.plots import image_grid
from vidcam.progress import progress
from vidcam.rendering import in_chunks, render_frame, render_frames, to_uint8
from vidcam.run import ATLAS_DIR, Run, open_run
from vidcam.runlock import note_if_unfinished, reading_run, refuse_existing
from vidcam.upscale import fit_max_side

CHECKER_DARK = 0.45  # brightness of the dark squares relative to the light ones
OUTSIDE_BOX_GREY = 0.5
OUTLINE_COLOUR = (255, 0, 255)
PREVIEW_DIM = 0.5  # texels outside the covered region are dimmed this much in the preview


@torch.no_grad()
def atlas_log_irradiance(model: VidcamModel, layout: AtlasLayout, chunk: int) -> np.ndarray:
    """[height, width, 3] log irradiance of the layer's atlas at every texel centre."""
    atlas = in_chunks(lambda uv: model.scene.atlas_log_irradiance(layout.layer, uv), layout.grid(model.device), chunk)
    return atlas.view(layout.height, layout.width, 3).numpy()


def atlas_picture(model: VidcamModel, layout: AtlasLayout, curve: DisplayCurve, chunk: int) -> np.ndarray:
    """The uint8 RGB picture of a layer's atlas, as exported (and as edits are compared to)."""
    return to_uint8(curve.forward(atlas_log_irradiance(model, layout, chunk)))


def outlined(picture: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The picture, dimmed outside ``mask`` and with the mask's outline drawn."""
    preview = np.where(mask[..., None], picture, (picture * PREVIEW_DIM).astype(np.uint8))
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    thickness = max(1, max(mask.shape) // 512)
    return cv2.drawContours(np.ascontiguousarray(preview), contours, -1, OUTLINE_COLOUR, thickness)


# ----------------------------------------------------------------------------- per-frame pictures


def clip_frames(run: Run) -> np.ndarray:
    """uint8 [N,H,W,3]: the input frames if the input is still at hand, else the learned camera's render."""
    frame = run.model.frame
    source = run.input_path
    if source is not None and source.is_file():
        io = run.cfg.io
        try:
            clip = read_video(source, io.start_frame, io.max_frames, fit_max_side(io))
        except VidcamError:
            clip = None
        if clip is not None and clip.frames.shape[:3] == (frame.n_frames, frame.height, frame.width):
            return clip.frames if clip.frames.dtype == np.uint8 else to_uint8(clip.frames_float())
    return to_uint8(np.stack(list(rendered_frames(run.model, run.cfg.render, camera=True, desc="frames"))))


def alpha_frames(run: Run, layer: int) -> Iterator[np.ndarray]:
    """The layer's weight in each frame as grey uint8 [H,W,3]."""
    scene = run.model.scene

    def weight(xy: Tensor, t: Tensor) -> Tensor:
        return scene.layer_weights(xy, t)[:, layer : layer + 1]

    for alpha in _frames_of(run, weight, lambda fast, t: fast.weights(t)[:, layer : layer + 1], f"layer {layer} alpha"):
        yield np.repeat(to_uint8(alpha), 3, axis=2)


def _frames_of(
    run: Run, exact: Callable[[Tensor, Tensor], Tensor], fast: Callable[[FastScene, int], Tensor], desc: str
) -> Iterator[np.ndarray]:
    """Per frame [H,W,C]: ``fast(scene, t)`` [H*W,C] with the fast renderer when the run's settings
    pick it, else the exact per-pixel ``exact(xy, t)``."""
    rc = run.cfg.render
    if not rc.fast:
        yield from render_frames(run.model, run.chunk, exact, desc)
        return
    scene = FastScene(run.model, FastSettings.from_config(rc), rc.chunk)
    for t in progress(range(run.model.frame.n_frames), desc, unit="frame", leave=False):
        with torch.no_grad():
            yield fast(scene, t).view(*scene.shape, -1).float().cpu().numpy()


def checkerboard(uv: np.ndarray, layout: AtlasLayout, squares: int) -> np.ndarray:
    """Float RGB [..., 3]: UV colours (red = u, green = v) checkered in atlas space; grey off the box."""
    u0, v0, u1, v1 = layout.box
    rel = (uv - np.array([u0, v0])) / np.array([u1 - u0, v1 - v0])  # [0, 1] inside the box
    square = max(u1 - u0, v1 - v0) / squares
    cells = np.floor((uv - np.array([u0, v0])) / square).astype(np.int64)
    light = ((cells[..., 0] + cells[..., 1]) % 2 == 0)[..., None]
    colour = np.stack([rel[..., 0], rel[..., 1], 1 - rel[..., 0]], axis=-1).clip(0, 1)
    pattern = colour * np.where(light, 1.0, CHECKER_DARK)
    inside = np.all((rel >= 0) & (rel <= 1), axis=-1, keepdims=True)
    return np.where(inside, pattern, OUTSIDE_BOX_GREY)


def mapping_frames(run: Run, layout: AtlasLayout, frames: np.ndarray) -> Iterator[np.ndarray]:
    """The checkerboard carried onto each frame through the layer's mapping, blended by its weight."""
    scene, layer = run.model.scene, layout.layer

    def evaluate(xy: Tensor, t: Tensor) -> Tensor:
        return torch.cat([scene.uv(xy, t)[layer], scene.layer_weights(xy, t)[:, layer : layer + 1]], dim=1)

    def evaluate_fast(fast: FastScene, t: int) -> Tensor:
        return torch.cat([fast.uv(t)[layer], fast.weights(t)[:, layer : layer + 1]], dim=1)

    squares = run.cfg.atlas.checker_squares
    for t, out in enumerate(_frames_of(run, evaluate, evaluate_fast, f"layer {layer} mapping")):
        weight = out[..., 2:3]
        yield to_uint8(weight * checkerboard(out[..., :2], layout, squares) + (1 - weight) * frames[t] / 255.0)


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


def _fit_tile(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to fit a width x height tile, centred on white."""
    scale = min(width / image.shape[1], height / image.shape[0])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tile = np.full((height, width, 3), 255, np.uint8)
    y, x = (height - size[1]) // 2, (width - size[0]) // 2
    tile[y : y + size[1], x : x + size[0]] = resized
    return tile


Tile = tuple[np.ndarray, str]  # a picture and its caption


def _layer_rows(run: Run, times: list[int]) -> list[list[Tile]]:
    """Per layer, a row of its alpha and a row of its colour contribution (weight x atlas) at ``times``."""
    model, n_layers = run.model, run.n_layers

    def evaluate(xy: Tensor, t: Tensor) -> Tensor:
        out = model.scene(xy, t)
        contribution = out["weights"][..., None] * out["layer_irradiance"]  # [B,L,3]
        return torch.cat([out["weights"], contribution.flatten(1)], dim=1)

    fast = FastScene(model, FastSettings.from_config(run.cfg.render), run.chunk) if run.cfg.render.fast else None

    @torch.no_grad()
    def evaluate_fast(t: int) -> np.ndarray:
        weights, uv = fast.weights(t), fast.uv(t)
        contribution = [weights[:, k : k + 1] * fast.layer_irradiance(k, uv[k], t) for k in range(n_layers)]
        return torch.cat([weights, *contribution], dim=1).view(*fast.shape, -1).float().cpu().numpy()

    rows: list[list[Tile]] = [[] for _ in range(2 * n_layers)]
    for t in times:
        out = render_frame(model, t, run.chunk, evaluate) if fast is None else evaluate_fast(t)
        for layer in range(n_layers):
            colour = out[..., n_layers + 3 * layer : n_layers + 3 * layer + 3]
            rows[2 * layer].append((to_uint8(out[..., layer]), f"layer {layer} alpha t={t}"))
            rows[2 * layer + 1].append((display_frame(run, colour, t), f"layer {layer} colour t={t}"))
    return rows


def contact_sheet(run: Run, frames: np.ndarray, pictures: list[np.ndarray]) -> np.ndarray:
    """Rows: input frames; per layer its alpha and its colour contribution; then the atlases."""
    frame, cfg = run.model.frame, run.cfg.atlas
    times = sorted({round(t) for t in np.linspace(0, frame.n_frames - 1, cfg.contact_frames)})
    columns = len(times)
    atlases = [(picture, f"layer {k} atlas") for k, picture in enumerate(pictures)]
    rows = [[(frames[t], f"input t={t}") for t in times], *_layer_rows(run, times)]
    rows += [atlases[i : i + columns] for i in range(0, len(atlases), columns)]
    tile_height = max(1, round(cfg.contact_tile_width * frame.height / frame.width))
    blank: Tile = (np.full((1, 1, 3), 255, np.uint8), "")
    tiles = [row[column] if column < len(row) else blank for row in rows for column in range(columns)]
    images = [_fit_tile(_rgb(image), cfg.contact_tile_width, tile_height) for image, _ in tiles]
    return image_grid(images, columns, [label for _, label in tiles])


# ----------------------------------------------------------------------------- export


def atlas_file_names(n_layers: int) -> list[str]:
    """Every file ``export_atlas`` writes (checked before any is written)."""
    names = [LAYOUT_NAME, "contact_sheet.png"]
    for layer in range(n_layers):
        stem = f"layer{layer}_atlas"
        names += [f"{stem}.png", f"{stem}.exr", f"{stem}_preview.png"]
        names += [f"layer{layer}_alpha.mp4", f"layer{layer}_mapping.mp4"]
    return names


def export_atlas(
    run_dir: str | Path, out_dir: str | Path | None = None, device: str | torch.device = "auto", overwrite: bool = False
) -> Path:
    """Write every layer's atlas pictures, alpha and mapping videos, a contact sheet and atlas.json.

    Refuses when any of those files exists already, unless ``overwrite``; refuses while the run trains.
    """
    with reading_run(Path(run_dir)):
        return _export_atlas(run_dir, out_dir, device, overwrite)


def _export_atlas(run_dir: str | Path, out_dir: str | Path | None, device: str | torch.device, overwrite: bool) -> Path:
    run = open_run(run_dir, device)
    out = Path(out_dir) if out_dir is not None else run.folder / ATLAS_DIR
    if out.exists() and not out.is_dir():
        raise VidcamError(f"{out} exists and is not a folder")
    refuse_existing([out / name for name in atlas_file_names(run.n_layers)], overwrite)
    note_if_unfinished(run.folder, run.state["step"], run.cfg.train.steps)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VidcamError(f"cannot create {out}: {exc.strerror or exc}") from None
    curve = display_curve(run)
    coverage = measure_coverage(run.model, run.cfg.atlas, run.chunk)
    layouts = [plan_layout(coverage, layer, run.cfg.atlas) for layer in range(run.n_layers)]
    pictures = [_export_atlas_files(run, layout, curve, coverage, out) for layout in layouts]
    write_layout(out / LAYOUT_NAME, layouts, curve, run)
    frames = clip_frames(run)
    crf = run.cfg.render.video_crf()
    for layout in layouts:
        write_sdr_video(out / f"layer{layout.layer}_alpha.mp4", alpha_frames(run, layout.layer), run.fps, crf)
        write_sdr_video(out / f"layer{layout.layer}_mapping.mp4", mapping_frames(run, layout, frames), run.fps, crf)
    write_png(out / "contact_sheet.png", contact_sheet(run, frames, pictures))
    return out


def _export_atlas_files(
    run: Run, layout: AtlasLayout, curve: DisplayCurve, coverage: Coverage, out: Path
) -> np.ndarray:
    """The layer's atlas PNG, EXR and preview; returns the picture."""
    log_irradiance = atlas_log_irradiance(run.model, layout, run.chunk)
    picture = to_uint8(curve.forward(log_irradiance))
    stem = f"layer{layout.layer}_atlas"
    write_png(out / layout.file, picture)
    write_exr(out / f"{stem}.exr", np.exp(log_irradiance) * exr_scale(run), half=False)
    write_png(out / f"{stem}_preview.png", outlined(picture, coverage_mask(coverage, layout)))
    return picture
