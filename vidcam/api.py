"""The Python API behind ``from vidcam import enhance``: the same code path as ``vidcam enhance``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidcam.config import Config, config_from_dict, load_config, set_path
from vidcam.errors import VidcamError
from vidcam.run import CONFIG_NAME, Report, load_run_config


def run_config(
    outdir: Path,
    preset: str,
    config: Config | str | Path | None,
    overrides: dict[str, Any],
    resume: bool,
) -> Config:
    """The settings of a run: a resumed run's saved config, else the preset <- ``config`` (a file,
    or a Config used as the base instead of the preset) <- ``overrides`` (dotted keys or nested)."""
    if resume and (outdir / CONFIG_NAME).is_file():
        return load_run_config(outdir, overrides)
    if isinstance(config, Config):
        cfg = config_from_dict(config.to_dict())  # a copy: the caller's object is left as it was
        for key, value in overrides.items():
            set_path(cfg, key, value)
        return cfg
    return load_config(preset, config, overrides)


def enhance_clips(
    inputs: list[str | Path],
    output: str | Path | None = None,
    *,
    preset: str = "default",
    config: Config | str | Path | None = None,
    resume: bool = False,
    settings: dict[str, Any] | None = None,
) -> list[tuple[Path, Report]]:
    """``vidcam enhance IN [IN ...]``: every clip (a folder stands for the videos in it), each into
    its own run folder (one clip: ``output``; several: ``output/<stem>``); long clips in temporal
    windows; clips and windows as tasks in-process or on Ray. Returns (run folder, report) per clip."""
    from vidcam.batch import enhance_all, expand_inputs, output_folders

    paths = expand_inputs([Path(p) for p in inputs])
    outdirs = output_folders(paths, Path(output) if output is not None else None)
    cfgs = [run_config(outdir, preset, config, dict(settings or {}), resume) for outdir in outdirs]
    return list(zip(outdirs, enhance_all(paths, outdirs, cfgs, resume=resume)))


def enhance(
    input: str | Path,
    output: str | Path | None = None,
    *,
    preset: str = "default",
    config: Config | str | Path | None = None,
    resume: bool = False,
    settings: dict[str, Any] | None = None,
    **overrides: Any,
) -> Report:
    """Fit the model to a clip and write every output, as ``vidcam enhance`` does; returns the report.

    ``output``: the run folder (default ``<input stem>_vidcam`` beside the input). ``preset``:
    fast | default | quality. ``config``: a YAML file merged over the preset, or a ``Config``
    used instead of the preset. Settings on top, as dotted keys or nested mappings, in
    ``settings`` or as keyword arguments::

        enhance("clip.mp4", "out", preset="fast", **{"train.steps": 500})
        enhance("clip.mp4", "out", settings={"train": {"steps": 500}, "mode": "deblur"})

    ``resume``: continue the run in ``output`` (its saved settings, ``settings`` on top).
    With ``render.export_atlas`` the atlases are exported into ``output/atlas``.
    """
    input_path = Path(input)
    if not input_path.exists():
        raise VidcamError(f"file not found: {input_path}")
    if not input_path.is_file():
        raise VidcamError(f"not a file: {input_path}")
    settings = {**(settings or {}), **overrides}
    [(_, report)] = enhance_clips([input_path], output, preset=preset, config=config, resume=resume, settings=settings)
    return report
