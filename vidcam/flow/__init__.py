"""Optical flow: estimation and cache (:mod:`vidcam.flow.estimate`), the ``FlowPair`` it
produces (:mod:`vidcam.flow.types`), and its pictures (:mod:`vidcam.flow.visualise`).

Nothing is imported here, so that ``vidcam.flow.types`` stays light for its consumers.
"""
