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

from srgan_hub.evaluate import SHARED_ENV, shared_dir  # noqa: E402


@pytest.fixture(scope="session")
def data_dir() -> Path:
    data = shared_dir() / "data"
    if not data.is_dir():
        pytest.fail(f"test data missing: {data} (set {SHARED_ENV} to the folder that holds data/ and models/)")
    return data
