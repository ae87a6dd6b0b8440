"""Running clips and windows as tasks: in this process, or as Ray tasks on a local or remote cluster.

Ray is an optional extra (``pip install vidcam[ray]``, about 80 MB of wheel): without it, or with
``parallel.backend: local``, tasks run one after the other here. Without ``parallel.ray_address``
a local Ray is started on this machine. A task gets one GPU when the cluster has GPUs and the run
may use CUDA, else ``parallel.cpus_per_task`` cores and as many torch threads, so a result does
not depend on where it ran (same seed, same thread count). A task whose worker dies is run again
(Ray's ``max_retries``); windows checkpoint into their own folders, so a rerun picks up there.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from typing import Any

from vidcam.config import Config
from vidcam.errors import VidcamError
from vidcam.log import log
from vidcam.progress import is_quiet

Task = tuple[Callable[..., Any], tuple[Any, ...]]  # a picklable top-level function and its arguments


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def wants_ray(cfg: Config, n_tasks: int) -> bool:
    """Whether these tasks go to Ray: always with ``backend: ray`` or an address, else (auto) when
    there is more than one task and Ray is installed (saying once when it is not)."""
    pc = cfg.parallel
    if pc.backend == "local":
        return False
    if pc.backend == "ray" or pc.ray_address:
        if not ray_installed():
            raise VidcamError("Ray is not installed: pip install 'vidcam[ray]' (or drop --ray-address)")
        return True
    if n_tasks < 2:
        return False
    if not ray_installed():
        log(f"Ray is not installed ('pip install vidcam[ray]'): running {n_tasks} tasks one after the other in this process")
        return False
    return True


def concurrency(cfg: Config, n_tasks: int) -> tuple[int, int]:
    """(tasks at once, torch threads per task) these tasks will run with, for the plan printed up
    front: a local Ray runs as many as its CPUs hold, a cluster (an address) is assumed to run them
    all at once, and in-process they run one at a time with the run's threads."""
    from vidcam.threads import planned_threads

    pc = cfg.parallel
    if not wants_ray(cfg, n_tasks):
        return 1, planned_threads(cfg.threads)
    threads = cfg.threads or pc.cpus_per_task
    if pc.ray_address:
        return n_tasks, threads
    return max(1, min(n_tasks, (pc.num_cpus or os.cpu_count() or 1) // pc.cpus_per_task)), threads


def run_tasks(tasks: Sequence[Task], cfg: Config) -> list[Any]:
    """Run every task and return the results in order."""
    if not wants_ray(cfg, len(tasks)):
        return [function(*args) for function, args in tasks]
    return _run_on_ray(tasks, cfg)


def _in_worker(threads: int, quiet: bool, function: Callable[..., Any], *args: Any) -> Any:
    """Body of a Ray task: fixed torch threads, so the result matches an in-process run with them,
    and the driver's ``--quiet``."""
    import torch

    from vidcam.progress import set_quiet

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    set_quiet(quiet)
    return function(*args)


def _run_on_ray(tasks: Sequence[Task], cfg: Config) -> list[Any]:
    import ray

    pc = cfg.parallel
    started_here = not ray.is_initialized()
    if started_here:
        if pc.ray_address:
            log(f"joining the Ray cluster at {pc.ray_address}")
            ray.init(address=pc.ray_address, log_to_driver=True)
        else:
            num_cpus = pc.num_cpus or os.cpu_count() or 1
            log(f"starting a local Ray with {num_cpus} CPU(s) for {len(tasks)} tasks")
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
    try:
        gpus = ray.cluster_resources().get("GPU", 0) if cfg.device != "cpu" else 0
        resources = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": pc.cpus_per_task}
        threads = int(resources["num_cpus"]) if cfg.threads is None else cfg.threads
        remote = ray.remote(max_retries=pc.max_retries, **resources)(_in_worker)
        handles = [remote.remote(threads, is_quiet(), function, *args) for function, args in tasks]
        try:
            return ray.get(handles)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, VidcamError):  # a user error on a worker: the same one line as locally
                raise VidcamError(str(cause)) from None
            raise
    finally:
        if started_here:
            ray.shutdown()
