"""Where the benchmarks find their images and weights: $SRGAN_HUB_SHARED, else the `shared` folder beside this
checkout, holding `data/` (benchmark and training images) and `models/` (VGG19 and LPIPS-alex weights)."""

import os
from pathlib import Path


def shared_dir() -> Path:
    return Path(os.environ.get("SRGAN_HUB_SHARED", Path(__file__).resolve().parents[2] / "shared"))
