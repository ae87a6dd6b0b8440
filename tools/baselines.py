"""Command line of :mod:`vidcam.testing.baselines`: score the classical baselines on synthetic clips.

    python tools/baselines.py assets/demo_hdr.mp4 [assets/demo_blur.mp4 ...]
"""

import sys

from vidcam.testing.baselines import main

if __name__ == "__main__":
    sys.exit(main())
