"""Ray: a real local cluster with 2 CPU workers gives the same outputs, bit for bit, as the in-process run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from vidcam.batch import enhance_all
from vidcam.io.images import read_exr
from vidcam.parallel import ray_installed, run_tasks
from vidcam.testing import synthetic

pytestmark = pytest.mark.skipif(not ray_installed(), reason="Ray is not installed (pip install 'vidcam[ray]')")

# One short clip (one task: the whole-clip fit) and one of 10 frames in two windows: three tasks.
# No time budget: it would make the schedule depend on wall time, so no two runs would match.
RUN = {
    "windows.frames": 6, "windows.overlap": 2, "train.steps": 40, "train.bootstrap_steps": 10, "train.time_budget": None, "threads": 1
}
CLUSTER = {"parallel.backend": "ray", "parallel.num_cpus": 2}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for seed, n_frames in ((3, 6), (4, 10)):
        path = folder / f"clip{seed}.mp4"
        synthetic.write_clip(synthetic.make_hdr_clip(seed=seed, n_frames=n_frames, height=36, width=64), path)
        paths.append(path)
    return paths


def _run(clips, root: Path, cfg):
    outdirs = [root / path.stem for path in clips]
    return outdirs, enhance_all(clips, outdirs, [cfg] * len(clips))


def test_ray_workers_give_the_in_process_outputs(clips, tmp_path, tiny_config):
    local_dirs, local_reports = _run(clips, tmp_path / "local", tiny_config(RUN | {"parallel.backend": "local"}))
    ray_dirs, ray_reports = _run(clips, tmp_path / "ray", tiny_config(RUN | CLUSTER))
    assert [r.windows is not None for r in ray_reports] == [False, True]
    assert ray_reports[1].windows["tasks"][0]["threads"] == 1
    for local, remote in zip(local_dirs, ray_dirs):
        exrs = sorted((local / "hdr").glob("*.exr"))
        assert exrs
        for exr in exrs:
            assert np.array_equal(read_exr(exr), read_exr(remote / "hdr" / exr.name)), f"{local.name}/{exr.name}"
    assert ray_reports[1].windows["border_gains"] == local_reports[1].windows["border_gains"]


def _die_once(marker: str) -> int:
    """Kill the worker process the first time (as a crash or an out-of-memory kill would), succeed after."""
    if not os.path.exists(marker):
        Path(marker).write_text("died")
        os._exit(1)
    return os.getpid()


def test_a_task_whose_worker_dies_is_retried(tmp_path, tiny_config):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the test module
    cfg = tiny_config(CLUSTER | {"parallel.max_retries": 1})
    [pid] = run_tasks([(_die_once, (str(tmp_path / "marker"),))], cfg)
    assert pid != os.getpid() and (tmp_path / "marker").is_file()
