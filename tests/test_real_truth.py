"""vidcam.testing.real_footage: clips with truth from real frames (skipped without ../shared/data)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidcam.io.video import read_video
from vidcam.testing import real_footage as mrt
from vidcam.testing import imaging
from vidcam.testing import synthetic as ms

DAVIS = mrt.default_source("davis")
pytestmark = pytest.mark.skipif(DAVIS is None or not DAVIS.is_dir(), reason="../shared/data is absent")

SMALL = {"n_frames": 5, "height": 48, "width": 80, "start_frame": 30}


def sharpness(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@pytest.fixture(scope="module")
def blur_clip() -> dict:
    return mrt.make_real_blur_clip(seed=4, max_blur_px=6.0, sharp_fraction=0.4, **SMALL)


def test_blur_clip_is_deterministic_in_memory_and_on_disk(blur_clip, tmp_path):
    again = mrt.make_real_blur_clip(seed=4, max_blur_px=6.0, sharp_fraction=0.4, **SMALL)
    assert again["frames"].tobytes() == blur_clip["frames"].tobytes()
    assert again["sharp"].tobytes() == blur_clip["sharp"].tobytes()
    other_seed = mrt.make_real_blur_clip(seed=5, max_blur_px=6.0, sharp_fraction=0.4, **SMALL)
    assert other_seed["frames"].tobytes() != blur_clip["frames"].tobytes()
    decoded = []
    for name in ("a.mp4", "b.mp4"):
        mrt.write_clip(blur_clip, tmp_path / name)
        decoded.append(read_video(tmp_path / name).frames)
    assert decoded[0].tobytes() == decoded[1].tobytes()
    # The sidecar names the generator, and regenerating from it gives the same clip.
    regenerated = mrt.regenerate(ms.sidecar_paths(tmp_path / "a.mp4")[0])
    assert regenerated["frames"].tobytes() == blur_clip["frames"].tobytes()
    assert regenerated["sharp"].tobytes() == blur_clip["sharp"].tobytes()


def test_blur_clip_sizes_and_blurred_frames_are_blurrier_than_truth(blur_clip):
    frames, sharp, lengths = blur_clip["frames"], blur_clip["sharp"], blur_clip["blur_px"]
    assert frames.shape == sharp.shape == (5, 48, 80, 3) and frames.dtype == np.uint8
    blurred = np.flatnonzero(lengths > 2.0)
    nearly_sharp = np.flatnonzero(lengths < 0.6)
    assert len(blurred) and len(nearly_sharp)
    for i in blurred:
        assert sharpness(frames[i]) < 0.8 * sharpness(sharp[i])
    error = [np.mean((frames[i].astype(float) - sharp[i]) ** 2) for i in range(len(frames))]
    assert max(error[i] for i in nearly_sharp) < min(error[i] for i in blurred)


def test_blur_truth_is_the_real_source_frame():
    # Without shake the truth of frame i is source frame start + i, only resized (canvas_scale 1.2
    # sets the canvas size rather than the reach of the views, so the expected crop is known).
    clip = mrt.make_real_blur_clip(seed=1, max_blur_px=1e-6, sharp_blur_px=1e-6, drift_frac=0.0, jitter_px=0.0,
                                   rotation_deg=0.0, blur_rotation_deg=0.0, canvas_scale=1.2, **SMALL)
    source = cv2.cvtColor(cv2.imread(str(DAVIS / "frames" / "00032.jpg")), cv2.COLOR_BGR2RGB)
    ch, cw = ms.canvas_shape((48, 80), [ms.CameraPose(0.0, 0.0)], 1.2)
    canvas = ms.cover_resize(source.astype(np.float32) / 255.0, ch, cw)
    top, left = (ch - 48) // 2, (cw - 80) // 2
    expected = ms.quantise_8bit(canvas[top : top + 48, left : left + 80])
    assert np.abs(clip["sharp"][2].astype(int) - expected).mean() < 1.0


@pytest.mark.parametrize("pattern", [None, (1.0, 4.0, 16.0)])
def test_hdr_clip_exposures_hold_against_linear_truth(pattern):
    settings = dict(seed=2, exposure_ratio=4.0, pattern=pattern, **SMALL)
    clip = mrt.make_real_hdr_clip(**settings)
    assert clip["frames"].tobytes() == mrt.make_real_hdr_clip(**settings)["frames"].tobytes()
    expected = (1.0, 4.0) if pattern is None else pattern
    assert clip["exposures"].tolist() == [expected[i % len(expected)] for i in range(5)]
    hdr, frames = clip["hdr"], clip["frames"]
    assert hdr.shape == frames.shape == (5, 48, 80, 3) and hdr.dtype == np.float32
    s = clip["settings"]
    for i, exposure in enumerate(clip["exposures"]):
        linear = imaging.hill_crf_inverse(frames[i] / 255.0, s.crf_n, s.crf_k)
        well_exposed = (linear > 0.02) & (linear < 0.9) & (hdr[i] * exposure > 0.02)
        assert well_exposed.mean() > 0.02
        ratio = np.median(linear[well_exposed] / (hdr[i][well_exposed] * exposure))
        assert ratio == pytest.approx(1.0, abs=0.08)
    # The longest exposure clips the boosted highlights that the shortest keeps.
    longest, shortest = int(np.argmax(clip["exposures"])), int(np.argmin(clip["exposures"]))
    assert (frames[longest] == 255).mean() > 0.02 > (frames[shortest] == 255).mean()
    assert hdr.max() > 1.0 / clip["exposures"].max()


def test_scoring_tools_regenerate_real_truth_and_score_per_frame(blur_clip, tmp_path):
    import bench
    from vidcam.testing.scoring import ground_truth, per_frame_scores

    clip_path = tmp_path / "real.mp4"
    mrt.write_clip(blur_clip, clip_path)
    truth = ground_truth(clip_path)  # not the synthetic renderer, which would build another scene
    assert truth["sharp"].tobytes() == blur_clip["sharp"].tobytes()
    frames = read_video(clip_path).frames
    scores = per_frame_scores(frames, truth["sharp"], "blur")["psnr"]
    assert len(scores) == 5
    assert min(scores[i] for i in np.flatnonzero(blur_clip["blur_px"] < 0.6)) > \
        max(scores[i] for i in np.flatnonzero(blur_clip["blur_px"] > 2.0))
    row = bench.Row(str(clip_path), "blur", "blurry input", per_frame={"psnr": scores})
    assert len(bench.per_frame_table([row], "blur").splitlines()) == 2 + 5
