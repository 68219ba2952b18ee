"""Shared test setup: offline Hub/datasets, the shared data folder, and small helpers."""

import os

# Before anything imports huggingface_hub/datasets: no network here, and an uncached repo id would otherwise
# spend ~23 s retrying before it fails.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Outputs compared with the network's own fp32 forward: fp32 unless a test asks for the automatic choice.
os.environ.setdefault("SRGAN_HUB_PRECISION", "fp32")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_ENV = "SRGAN_HUB_SHARED"


def shared_dir() -> Path:
    """The test data: $SRGAN_HUB_SHARED, else the `shared` folder beside this checkout, holding `data/`
    (benchmark and training images) and `models/` (VGG19 and LPIPS-alex weights)."""
    return Path(os.environ.get(SHARED_ENV, Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """`shared/data`; tests that need it skip, with one line that says what is missing, on a clone without it."""
    data = shared_dir() / "data"
    missing = [p for p in (data / "benchmarks", data / "train", data.parent / "models") if not p.is_dir()]
    if missing:
        pytest.skip(
            f"test data missing: {', '.join(map(str, missing))} (README, Development: where to get the images and "
            f"weights; set {SHARED_ENV} to the folder that holds data/ and models/)"
        )
    return data
