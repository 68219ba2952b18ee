"""End-to-end latency of the demo's "upscale" endpoint for a 300x300 photo, against `upscale()` on the same image
in the same run.

    python benchmarks/bench_app.py

Starts the real app on a free port, uploads a 300x300 JPEG (a held-out photograph from the shared data, shrunk
and saved at quality 80, as a phone or web photo arrives) with `gradio_client` and times each request from upload
to the returned files, for every model in the app and
detail 1 / 0.5 at 4x, and 2x; the baseline is a direct `upscale()` call on the decoded image with the same model
and precision (what the request costs beyond the network itself: upload, queue, PNG encoding, download). Run it on
an otherwise idle machine.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from gradio_client import Client, handle_file
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from shared_data import shared_dir  # benchmarks/ is this script's folder

import app  # noqa: E402 (the repository's app.py, as a Space runs it)
from benchmarks.bench_inference import cpu_description  # noqa: E402
from srgan_hub import upscale  # noqa: E402
from srgan_hub.inference import default_device_and_dtype, precision_name  # noqa: E402

SIDE = 300
REPEATS = 3


def photo(folder: Path) -> Path:
    """A SIDE x SIDE JPEG of a photograph kept out of training (ColorfulCups, also an app example)."""
    source = shared_dir() / "data" / "train" / "Photos" / "plasma-workspace-wallpapers__ColorfulCups.png"
    with Image.open(source) as image:
        square = ImageOps.fit(image.convert("RGB"), (SIDE, SIDE), Image.Resampling.LANCZOS)
    path = folder / f"cups_{SIDE}.jpg"
    square.save(path, quality=80)
    return path


def median_seconds(function) -> float:
    function()  # warm-up: oneDNN picks its kernels on a shape's first call
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    precision = precision_name(default_device_and_dtype()[1])
    print(f"CPU: {cpu_description()}; app precision {precision}; {REPEATS} requests each")
    print(f"| {SIDE}x{SIDE} JPEG | detail | output | request (s) | upscale() alone (s) | overhead (s) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        upload = photo(Path(folder))
        for name, model in app.MODELS.items():
            details = (1.0, 0.5) if model.base_model else (1.0,)
            for detail, outscale in [*((d, 4) for d in details), (1.0, 2)]:
                ask = partial(client.predict, handle_file(str(upload)), name, False, detail, outscale)
                request = median_seconds(partial(ask, api_name="/upscale"))
                blend = detail if model.base_model and detail != 1 else None
                alone = median_seconds(partial(upscale, str(upload), model, detail=blend, outscale=outscale))
                print(f"| {name} | {detail:g} | {outscale}x | {request:.2f} | {alone:.2f} | {request - alone:+.2f} |")
    app.demo.close()


if __name__ == "__main__":
    main()
