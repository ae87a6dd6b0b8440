"""vidcam: fit layered neural atlases and an implicit camera to a clip, then render it without the camera's flaws.

The Python API (for notebooks and scripts; the same code as the command line)::

    from vidcam import enhance, render, open_run, Config, load_config

    report = enhance("clip.mp4", "out/clip", preset="fast", **{"train.steps": 500})
    render("out/clip", ev="0:+2")                  # an exposure ramp through the learned camera
    run = open_run("out/clip", "cpu")              # the fitted model, settings, plan and report

``enhance`` fits and writes a run folder and returns its ``Report``; ``render`` re-renders a run
with the exposure, blur or tone operator changed and returns the video written; ``open_run``
loads a run; ``Config`` / ``load_config`` are the typed settings. Problems with the input raise
``VidcamError`` with a one-line message. Importing vidcam is light: torch is loaded on first use
of these names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it, imported on first access.
_EXPORTS = {
    "enhance": "vidcam.api",
    "render": "vidcam.rerender",
    "open_run": "vidcam.run",
    "Config": "vidcam.config",
    "load_config": "vidcam.config",
    "Report": "vidcam.run",
    "Run": "vidcam.run",
    "VidcamError": "vidcam.errors",
}

__all__ = ["Config", "Report", "Run", "VidcamError", "__version__", "enhance", "load_config", "open_run", "render"]

if TYPE_CHECKING:
    from vidcam.api import enhance
    from vidcam.config import Config, load_config
    from vidcam.errors import VidcamError
    from vidcam.rerender import render
    from vidcam.run import Report, Run, open_run


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vidcam' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
