"""Ranking frames by blur, and drawing training pixels from the sharp ones first."""

from __future__ import annotations

import numpy as np
import torch

from vidcam.sharpness import frame_sharpness, sharp_frame_weights, still_frames
from vidcam.training.data import ClipData


def test_sharpness_ranks_frames_by_their_blur(tiny_blur_clip):
    _, truth = tiny_blur_clip
    sharpness = frame_sharpness(truth["frames"].astype(np.float32) / 255)
    blur_px = np.asarray(truth["blur_px"])
    assert np.argmax(sharpness) == np.argmin(blur_px)
    assert np.argmin(sharpness) == np.argmax(blur_px)
    ranks = lambda a: np.argsort(np.argsort(a))  # noqa: E731
    assert np.corrcoef(ranks(sharpness), ranks(-blur_px))[0, 1] > 0.8


def test_frame_weights_are_relative_to_the_sharpest_nearby():
    sharpness = np.array([4.0, 1.0, 2.0, 8.0, 8.0, 2.0])
    weights = sharp_frame_weights(sharpness, window=1, power=2.0)
    np.testing.assert_allclose(weights, [1.0, 1 / 16, 1 / 16, 1.0, 1.0, 1 / 16])


def test_still_frames_are_the_sharp_ones_and_a_long_window_skips_a_run_of_blurred_frames():
    sharpness = np.array([10.0, 9.0, 2.0, 2.5, 3.0, 2.0, 2.0, 2.5, 2.0, 10.0])
    assert still_frames(sharpness, window=8, margin=0.2) == [0, 1, 9]
    assert 4 in still_frames(sharpness, window=2, margin=0.2)  # the least blurred of the run, seen alone


def test_favour_draws_frames_by_weight_then_uniformly():
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    data = ClipData(frames, {}, torch.device("cpu"), seed=0, frame_weights=np.array([1.0, 0.0, 0.0, 3.0]))
    data.favour(1.0)
    counts = torch.bincount(data.pixels(40000).t, minlength=4).float() / 40000
    torch.testing.assert_close(counts, torch.tensor([0.25, 0.0, 0.0, 0.75]), atol=0.01, rtol=0)
    data.favour(0.0)
    counts = torch.bincount(data.pixels(40000).t, minlength=4).float() / 40000
    torch.testing.assert_close(counts, torch.full((4,), 0.25), atol=0.01, rtol=0)
