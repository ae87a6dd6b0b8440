"""Fitting the scene and camera models to a clip."""
