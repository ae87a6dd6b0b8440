"""Command line of :mod:`vidcam.testing.real_footage`: clips with truth made from real frames.

    python tools/make_real_truth.py blur|hdr OUT.mp4 [--seed S] [--ratio R | --pattern 1,4,16] [--gt]

Sources default to the checkout's sibling ``../shared/data`` (or $VIDCAM_SHARED_DATA).
"""

import os
import sys
from pathlib import Path

from vidcam.testing.real_footage import DATA_ENV, main

if __name__ == "__main__":
    os.environ.setdefault(DATA_ENV, str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    sys.exit(main())
