"""The Gradio demo as visitors and programs meet it: a real server, gradio_client, headless Chromium, load."""

import io
import os
import re
import shutil
import socket
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

os.environ.setdefault("SRGAN_MAX_PIXELS", "90000")  # fixed here, so that the tests' inputs fall on known sides
import app  # noqa: E402
from srgan_hub.metrics import blockiness  # noqa: E402

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    port = free_port()
    app.demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_OPTIONS
    )
    yield f"http://127.0.0.1:{port}/"
    app.demo.close()


@pytest.fixture(scope="module")
def client(server_url) -> Client:
    return Client(server_url, verbose=False)


@pytest.fixture
def set5_crop(data_dir, tmp_path) -> Path:
    path = tmp_path / "bird_crop.png"
    Image.open(data_dir / "benchmarks" / "LR_x4_matlab_bicubic" / "Set5" / "bird.png").crop((10, 10, 58, 50)).save(path)
    return path


def test_upscale_returns_bicubic_and_sr_pngs(client, set5_crop):
    (bicubic, sr), download, info = client.predict(handle_file(str(set5_crop)), api_name="/upscale")
    assert Path(bicubic).suffix == ".png" and Path(sr).suffix == ".png" and Path(download).suffix == ".png"
    with Image.open(sr) as sr_image, Image.open(bicubic) as bicubic_image:
        assert sr_image.format == "PNG" and bicubic_image.format == "PNG"  # lossless, not the WebP default
        assert sr_image.size == (48 * 4, 40 * 4) == bicubic_image.size
        assert not np.array_equal(np.asarray(sr_image), np.asarray(bicubic_image))
    assert Path(download).read_bytes() == Path(sr).read_bytes()
    assert re.fullmatch(r"48x40 → 192x160 px with .+, (fp32|bf16) on CPU, \d+\.\d\d s", info)


def test_detail_and_output_size(client, set5_crop):
    """detail 0 is the PSNR model the GAN was fine-tuned from, 1 the GAN; outscale sets the output size."""
    gan = next(name for name, model in app.MODELS.items() if model.base_model)
    smooth = client.predict(handle_file(str(set5_crop)), gan, False, 0.0, 4, api_name="/upscale")
    sharp = client.predict(handle_file(str(set5_crop)), gan, False, 1.0, 4, api_name="/upscale")
    assert "detail 0," in smooth[2] and "detail 1," in sharp[2]
    assert not np.array_equal(np.asarray(Image.open(smooth[1])), np.asarray(Image.open(sharp[1])))
    (bicubic, sr), _, info = client.predict(handle_file(str(set5_crop)), gan, False, 1.0, 2, api_name="/upscale")
    assert Image.open(sr).size == Image.open(bicubic).size == (96, 80) and "→ 96x80 px" in info


def test_api_is_documented(client):
    info = client.view_api(print_info=False, return_format="dict")
    assert "/upscale" in info["named_endpoints"]
    names = [p["parameter_name"] for p in info["named_endpoints"]["/upscale"]["parameters"]]
    assert names == ["image", "model_name", "downscale_large", "detail", "outscale"]
    default = info["named_endpoints"]["/upscale"]["parameters"][1]["parameter_default"]
    assert default == next(iter(app.MODELS)) and "real-world" in default  # uploads are photos


def test_photo_upload_gets_the_real_world_model(client, tmp_path):
    """A JPEG photo with the default model: the real-world model, which does not carry the JPEG's 8x8 grid into
    the output as the clean-trained SRResNet does."""
    photo = Image.open(app.EXAMPLES_DIR / "photo_bridge.jpg").convert("RGB")
    encoded = tmp_path / "bridge_q30.jpg"
    photo.crop((0, 0, 96, 96)).save(encoded, quality=30)
    (_, real), _, info = client.predict(handle_file(str(encoded)), api_name="/upscale")
    assert "real-world" in info
    clean = next(name for name in app.MODELS if name.startswith("SRResNet x4 (bundled"))
    (_, sharp), _, _ = client.predict(handle_file(str(encoded)), clean, False, 1.0, 4, api_name="/upscale")
    assert blockiness(Image.open(real), 4) < blockiness(Image.open(sharp), 4) - 0.05


def test_non_image_upload_is_an_error_not_a_crash(client, tmp_path, set5_crop):
    fake = tmp_path / "notes.png"
    fake.write_text("definitely not a PNG")
    with pytest.raises(Exception, match="not an image that can be read"):
        client.predict(handle_file(str(fake)), api_name="/upscale")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(set5_crop.read_bytes()[:300])
    with pytest.raises(Exception, match="not an image that can be read: .*truncated"):
        client.predict(handle_file(str(truncated)), api_name="/upscale")
    (_, sr), _, _ = client.predict(handle_file(str(set5_crop)), api_name="/upscale")  # the server is still fine
    assert Path(sr).is_file()


def test_large_input_is_refused_or_downscaled(client, data_dir, tmp_path):
    big = tmp_path / "big.png"
    Image.open(data_dir / "benchmarks" / "Set5" / "baby.png").save(big)  # 512 x 512, above the demo limit
    with pytest.raises(Exception, match="Downscale large inputs"):
        client.predict(handle_file(str(big)), api_name="/upscale")
    (_, sr), _, _ = client.predict(
        handle_file(str(big)),
        app.UNTRAINED if app.UNTRAINED in app.MODELS else next(iter(app.MODELS)),
        True,
        api_name="/upscale",
    )
    with Image.open(sr) as image:
        assert image.width * image.height <= app.MAX_INPUT_PIXELS * 16
        assert image.width == image.height  # aspect ratio kept


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces width x height RGB pixels, with one tiny compressed row: a decompression bomb's
    shape without its size on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_bomb_above_pillows_own_limit_gets_the_apps_message(client, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(30000, 30000))  # 900 Mpx: beyond Pillow's 179 Mpx bomb cap
    with pytest.raises(Exception, match=r"The image is 30000x30000 = 900,000,000 pixels") as error:
        client.predict(handle_file(str(bomb)), api_name="/upscale")
    assert "/tmp" not in str(error.value)  # no server path in the message


def test_pixel_limit_follows_the_hosts_speed():
    model = next(iter(app.MODELS.values()))
    assert app.pixels_per_request(model, seconds=4.0) > 3 * app.pixels_per_request(model, seconds=0.4)


def test_eight_concurrent_clients_five_requests_each(server_url, set5_crop):
    errors, results = [], []

    def visitor():
        try:
            own = Client(server_url, verbose=False)
            for _ in range(5):
                (_, sr), _, _ = own.predict(handle_file(str(set5_crop)), api_name="/upscale")
                results.append(Image.open(sr).size)
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=visitor) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors
    assert results == [(192, 160)] * 40


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_browser_cached_examples_then_detail_and_size(server_url, tmp_path):
    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI (.ci/run installs it with apt)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=flags)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(server_url)
        page.get_by_text("Photos (real JPEGs", exact=False).first.wait_for(timeout=60_000)
        page.get_by_text("Benchmark (x4", exact=False).first.wait_for(timeout=10_000)
        slider_images = page.locator("#slider img")
        sources = "Array.from(document.querySelectorAll('#slider img')).map(img => img.src)"

        # The first photo's cached result is on the page before any click.
        page.wait_for_function(f"{sources}.length >= 2", timeout=60_000)
        preloaded = page.evaluate(sources)
        assert "320x240 → 1280x960" in page.locator("#info").inner_text()

        # A benchmark example (the 4th of 3 photos + 5 benchmark images: baby.png, 128x128) shows its cached
        # result at once, without Upscale.
        page.locator(".gallery-item").nth(3).click()
        page.wait_for_function(f"{sources}.join() !== {','.join(preloaded)!r}", timeout=10_000)
        page.wait_for_function("document.querySelector('#info').innerText.includes('128x128')", timeout=10_000)
        first = page.evaluate(sources)
        assert all(first) and first[0] != first[1]
        page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)

        # A pixel-loss model (no base model to blend with) greys the Detail slider out; the SRGAN brings it back.
        page.locator("#model input").click()
        page.get_by_role("option", name=app.BUNDLED_LABELS["srresnet-x4-real"]).click()
        page.wait_for_function("document.querySelector(\"#detail input[type='range']\").disabled", timeout=10_000)
        page.locator("#model input").click()
        page.get_by_role("option", name=app.BUNDLED_LABELS["srgan-x4"]).click()
        page.wait_for_function("!document.querySelector(\"#detail input[type='range']\").disabled", timeout=10_000)

        # Less detail and a 2x output, upscaled for real: the slider's images change size and content.
        page.locator("#outscale").get_by_text("2", exact=True).click()
        page.locator("#detail input[type='number']").fill("0")
        page.locator("#detail input[type='number']").press("Enter")
        page.get_by_role("button", name="Upscale", exact=True).click()
        page.wait_for_function(f"{sources}[1] !== {first[1]!r}", timeout=120_000)
        second = [slider_images.nth(i).get_attribute("src") for i in range(2)]
        info = page.locator("#info").inner_text()
        sizes = [Image.open(io.BytesIO(page.request.get(src).body())).size for src in (*first, *second)]
        browser.close()
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert sizes[0] == sizes[1] == (512, 512) and sizes[2] == sizes[3] == (256, 256)  # 4x cached, then 2x
    assert "SRGAN x4" in info and "detail 0," in info


def test_exif_rotated_upload_gives_matching_bicubic_and_sr(client, data_dir, tmp_path):
    lr = Image.open(data_dir / "benchmarks" / "LR_x4_matlab_bicubic" / "Set5" / "woman.png").convert("RGB")  # 57x86
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    lr.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    (bicubic, sr), _, _ = client.predict(handle_file(str(tmp_path / "rotated.jpg")), api_name="/upscale")
    with Image.open(bicubic) as b, Image.open(sr) as s:
        assert s.size == b.size == (86 * 4, 57 * 4)  # upright
        # both sides show the same upright picture (a trained model stays close to bicubic)
        assert np.abs(np.asarray(b, float) - np.asarray(s, float)).mean() < 15


def test_16bit_and_float_uploads_keep_their_depth_on_both_sides(client, tmp_path):
    """The app reads uploads as upscale() does: a 48-bit PNG gives 16-bit PNGs, a float TIFF a real bicubic side."""
    import png

    rgb16 = (np.random.default_rng(0).random((20, 24, 3)) * 65535).astype(np.uint16)
    with open(tmp_path / "deep.png", "wb") as f:
        png.Writer(24, 20, bitdepth=16, greyscale=False).write(f, rgb16.reshape(20, -1).tolist())
    (bicubic, sr), _, _ = client.predict(handle_file(str(tmp_path / "deep.png")), api_name="/upscale")
    for path in (bicubic, sr):
        width, height, _, info = png.Reader(filename=path).read()
        assert (width, height, info["bitdepth"], info["planes"]) == (96, 80, 16, 3)
    Image.fromarray(np.full((20, 24), 0.5, np.float32), "F").save(tmp_path / "float.tif")
    (bicubic, _), _, _ = client.predict(handle_file(str(tmp_path / "float.tif")), api_name="/upscale")
    values = png.Reader(filename=bicubic).read()[2]
    assert np.mean([row for row in values]) == pytest.approx(0.5 * 65535, rel=0.01)  # mid-grey, not black


def test_200_requests_leave_no_temp_files_or_memory_behind(client, set5_crop):
    """A soak: after 200 requests the app's own output folders have not grown (the newest KEPT_OUTPUTS are kept;
    gradio's copies in its cache are emptied by the delete_cache the app sets), and the server's RSS is within
    150 MB of what it was after the first 10."""
    import psutil

    def requests(count: int) -> None:
        for _ in range(count):
            client.predict(handle_file(str(set5_crop)), api_name="/upscale")

    def own_files() -> int:
        return sum(1 for p in app.OUTPUT_ROOT.rglob("*") if p.is_file())

    assert app.demo.delete_cache == (app.CACHE_SECONDS, app.CACHE_SECONDS)
    requests(10)
    files_after_10, rss_after_10 = own_files(), psutil.Process().memory_info().rss
    requests(190)
    assert own_files() == files_after_10 <= 2 * (app.KEPT_OUTPUTS + 1)  # two PNGs a request
    assert psutil.Process().memory_info().rss - rss_after_10 < 150 * 2**20


def test_an_upload_is_decoded_once_on_its_way_through(client, tmp_path, monkeypatch):
    """The demo's path is one library call: the upload is opened once, also when it is shrunk to the limit."""
    photo = tmp_path / "photo.jpg"
    Image.fromarray((np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8)).save(photo, quality=90)
    opened, open_image = [], Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *args, **kw: opened.append(fp) or open_image(fp, *args, **kw))
    model = app.UNTRAINED if app.UNTRAINED in app.MODELS else next(iter(app.MODELS))
    for downscale in (False, True):
        opened.clear()
        if not downscale:  # 120,000 pixels: refused from the header
            with pytest.raises(Exception, match="Downscale large inputs"):
                client.predict(handle_file(str(photo)), model, downscale, api_name="/upscale")
        else:
            client.predict(handle_file(str(photo)), model, downscale, api_name="/upscale")
        assert len(opened) == 1
