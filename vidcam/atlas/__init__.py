"""Atlases: look at what each layer learned, paint on it, re-render the clip.

* :mod:`vidcam.atlas.display`: the display curve an atlas picture is shown (and read back) through;
* :mod:`vidcam.atlas.layout`: where each layer's picture sits in atlas space, ``atlas.json``;
* :mod:`vidcam.atlas.export`: ``vidcam atlas`` (pictures, mattes, mapping videos, contact sheet);
* :mod:`vidcam.atlas.edit`: ``vidcam edit`` (re-rendering with a painted atlas).
"""

from vidcam.atlas.edit import edit_run, render_edited
from vidcam.atlas.export import export_atlas

__all__ = ["edit_run", "export_atlas", "render_edited"]
