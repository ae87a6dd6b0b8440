"""Clips with ground truth and the yardsticks vidcam is measured against.

* :mod:`vidcam.testing.synthetic`: deterministic synthetic HDR and shaky clips (the demo
  clips and the test suite's tiny clips), regenerated from a JSON sidecar.
* :mod:`vidcam.testing.baselines`: the classical methods to beat (flow-aligned exposure
  merge, unsharp mask) and the scores used everywhere (PSNR-mu / PSNR-L, PSNR / SSIM).
* :mod:`vidcam.testing.scoring`: a finished run scored against its clip's ground truth.

Importable by tests and benchmarks; ``tools/`` holds their command-line wrappers.
"""
