"""Command line of :mod:`vidcam.testing.synthetic`: write a synthetic clip with ground truth.

    python tools/make_synthetic.py hdr|blur OUT.mp4 --seed S --frames N --width W --height H [--gt]
"""

import sys

from vidcam.testing.synthetic import main

if __name__ == "__main__":
    sys.exit(main())
