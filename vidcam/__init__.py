"""vidcam: fit layered neural atlases and an implicit camera to a clip, then render it without the camera's flaws."""

__version__ = "0.1.0"
