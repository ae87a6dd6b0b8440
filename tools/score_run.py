"""Score finished `vidcam enhance` runs of synthetic clips against their ground truth.

    python tools/score_run.py RUN_DIR [RUN_DIR ...]

See :mod:`vidcam.testing.scoring`.
"""

import sys
from pathlib import Path

from vidcam.testing.scoring import score_run


def main(argv: list[str]) -> int:
    for run in argv:
        scores = score_run(Path(run))
        print(run, " ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
