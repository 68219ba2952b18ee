"""upscale(): exact tiling, every image kind, BN folding, fp16 fallback, bad input, and the srgan-upscale CLI."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from srgan_hub import SRGenerator, inference, upscale
from srgan_hub.imageio import ImageTooLargeError, InvalidImageError, save_image
from srgan_hub.inference import (
    NoBundledModelError,
    default_device_and_dtype,
    fold_batchnorm,
    load_model,
    prepare_for_inference,
    run_tiled,
    tile_for_memory,
    tile_grid,
    upscale_with_bicubic,
    window_pixels_for_memory,
)

SCALE = 4


def randomise_batchnorm(model: SRGenerator) -> SRGenerator:
    """Non-trivial BN statistics, so folding and tiling are tested on more than identities."""
    generator = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2, generator=generator)
            m.running_var.uniform_(0.5, 2.0, generator=generator)
            m.weight.data.uniform_(0.5, 1.5, generator=generator)
            m.bias.data.uniform_(-0.1, 0.1, generator=generator)
    return model.eval()


@pytest.fixture(scope="module")
def model() -> SRGenerator:
    torch.manual_seed(0)
    return randomise_batchnorm(SRGenerator(num_blocks=3, num_channels=16))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, model) -> Path:
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    return folder


def set5_lr(data_dir, name="baby") -> Image.Image:
    return Image.open(data_dir / "benchmarks" / "LR_x4_matlab_bicubic" / "Set5" / f"{name}.png").convert("RGB")


def tiled_float(net, lr: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    out = torch.full((1, 3, lr.shape[2] * SCALE, lr.shape[3] * SCALE), float("nan"))

    def emit(top, left, sr):
        out[:, :, top : top + sr.shape[2], left : left + sr.shape[3]] = sr

    window_shapes = set()
    hook = net.head.register_forward_pre_hook(lambda module, args: window_shapes.add(tuple(args[0].shape)))
    try:
        with torch.inference_mode():
            run_tiled(net, lr, tile_grid(lr.shape[2], lr.shape[3], tile), overlap, emit)
    finally:
        hook.remove()
    assert len(window_shapes) == 1  # every tile runs in a window of one shape (one set of kernels and buffers)
    return out


@pytest.mark.parametrize(("length", "most"), [(41, 7), (512, 160), (2048, 160), (100, 100), (5, 16)])
def test_tile_grid_splits_evenly_and_covers_once(length, most):
    tiles = tile_grid(length, length + 3, most)
    covered = np.zeros((length, length + 3), dtype=int)
    for top, left, tile_h, tile_w in tiles:
        assert 0 < tile_h <= most and 0 < tile_w <= most
        covered[top : top + tile_h, left : left + tile_w] += 1
    assert (covered == 1).all()
    heights = [tile_h for top, tile_h in sorted({(top, tile_h) for top, _, tile_h, _ in tiles})]
    assert max(heights) - min(heights) < len(heights)  # equal up to rounding: no sliver tile at the end
    assert tile_grid(length, length, 0) == [(0, 0, length, length)]


@pytest.mark.parametrize("source", ["random", "real"])
@pytest.mark.parametrize("tile", [7, 16, 23])
def test_tiled_equals_untiled(model, data_dir, source, tile):
    if source == "random":
        lr = torch.rand(1, 3, 41, 37, generator=torch.Generator().manual_seed(tile))
    else:  # an odd-sized crop of a real image
        lr = torch.from_numpy(np.asarray(set5_lr(data_dir, "bird"))[3:56, 5:50].astype(np.float32) / 255)
        lr = lr.permute(2, 0, 1)[None]
    net = prepare_for_inference(model, torch.device("cpu"), torch.float32)
    with torch.inference_mode():
        whole = net(lr.contiguous(memory_format=torch.channels_last))
    tiled = tiled_float(net, lr, tile, net.receptive_margin)
    assert not torch.isnan(tiled).any()  # every output pixel written
    assert (tiled - whole).abs().max() <= 1e-4
    # and the margin matters: too little context differs (so the check above can fail)
    assert (tiled_float(net, lr, tile, 2) - whole).abs().max() > 1e-3


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("upsampler", ["pixelshuffle", "transpose"])
def test_inference_rewrites_preserve_every_variant(scale, upsampler):
    """BN folding and in-place activations compute the same function."""
    torch.manual_seed(scale)
    model = randomise_batchnorm(SRGenerator(scale=scale, num_blocks=2, num_channels=16, upsampler=upsampler))
    net = prepare_for_inference(model, torch.device("cpu"), torch.float32)
    lr = torch.rand(1, 3, 11, 14)
    with torch.inference_mode():
        assert (net(lr) - model(lr)).abs().max() <= 1e-5


def test_batchnorm_folding_preserves_outputs(model):
    folded = fold_batchnorm(SRGenerator(num_blocks=3, num_channels=16).eval())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    net = prepare_for_inference(model, torch.device("cpu"), torch.float32)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the user's model is untouched
    lr = torch.rand(2, 3, 19, 23)
    with torch.inference_mode():
        assert (net(lr) - model(lr)).abs().max() <= 1e-5


def test_rgb_round_trip_matches_the_network(model, data_dir):
    lr = set5_lr(data_dir, "head")
    out = upscale(lr, model)
    assert out.mode == "RGB" and out.size == (lr.width * SCALE, lr.height * SCALE)
    with torch.inference_mode():
        expected = model(torch.from_numpy(np.asarray(lr, dtype=np.float32) / 255).permute(2, 0, 1)[None])
    expected = np.round(expected[0].permute(1, 2, 0).numpy() * 255)
    assert np.abs(np.asarray(out).astype(float) - expected).max() <= 1


def test_inputs_as_path_bytes_array_and_image_agree(model, data_dir):
    path = data_dir / "benchmarks" / "LR_x4_matlab_bicubic" / "Set5" / "butterfly.png"
    reference = np.asarray(upscale(path, model))
    assert np.array_equal(np.asarray(upscale(str(path), model)), reference)
    assert np.array_equal(np.asarray(upscale(path.read_bytes(), model)), reference)
    assert np.array_equal(np.asarray(upscale(np.asarray(Image.open(path)), model)), reference)


def test_rgba_keeps_alpha_without_dark_halo(model):
    # left half opaque orange, right half fully transparent *black*: the classic halo trap
    rgba = np.zeros((24, 24, 4), dtype=np.uint8)
    rgba[:, :12] = (230, 140, 40, 255)
    out = upscale(Image.fromarray(rgba), model)
    assert out.mode == "RGBA" and out.size == (96, 96)
    pixels = np.asarray(out).astype(float)
    assert pixels[:, :40, 3].min() == 255 and pixels[:, 56:, 3].max() == 0  # alpha upscaled, not invented
    plain = np.asarray(upscale(Image.fromarray(np.full((24, 24, 3), (230, 140, 40), np.uint8)), model)).astype(float)
    edge = slice(36, 48)  # visible pixels next to the transparent region
    naive = np.asarray(upscale(Image.fromarray(rgba[..., :3]), model)).astype(float)
    halo = np.abs(pixels[:, edge, :3] - plain[:, edge]).mean()
    naive_halo = np.abs(naive[:, edge] - plain[:, edge]).mean()
    assert halo < naive_halo / 3  # the visible edge keeps its colour instead of mixing in the hidden black


def test_grayscale_stays_grayscale(model, data_dir):
    gray = set5_lr(data_dir, "bird").convert("L")
    out = upscale(gray, model)
    assert out.mode == "L" and out.size == (gray.width * SCALE, gray.height * SCALE)
    la = Image.merge("LA", [gray, Image.new("L", gray.size, 128)])
    out = upscale(la, model)
    assert out.mode == "LA" and np.asarray(out)[..., 1].min() >= 127


def test_palette_with_transparency_gets_alpha(model, data_dir):
    palette = set5_lr(data_dir, "bird").crop((0, 0, 30, 30)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    out = upscale(buffer.getvalue(), model)
    assert out.mode == "RGBA" and out.size == (120, 120)
    assert (np.asarray(out)[..., 3] == 0).any() and (np.asarray(out)[..., 3] == 255).any()


def test_16bit_gray_png_stays_16bit(model, tmp_path):
    ramp = (np.linspace(0, 65535, 20 * 24).reshape(20, 24)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")
    out = upscale(tmp_path / "gray16.png", model)
    assert out.mode == "I;16" and out.size == (96, 80)
    values = np.asarray(out)
    assert values.max() > 255 and len(np.unique(values)) > 256  # real 16-bit precision, not 8-bit upcast
    save_image(out, tmp_path / "out16.png")
    assert Image.open(tmp_path / "out16.png").mode.startswith("I")


def test_48bit_rgb_png_becomes_16bit_output(model, tmp_path):
    import png

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 65536, size=(12, 10, 3), dtype=np.uint16)
    png.Writer(10, 12, bitdepth=16, greyscale=False).write(
        open(tmp_path / "rgb48.png", "wb"), pixels.reshape(12, 30).tolist()
    )
    out = upscale(tmp_path / "rgb48.png", model)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint16 and out.shape == (48, 40, 3)
    save_image(out, tmp_path / "out48.png")
    width, height, rows, info = png.Reader(filename=str(tmp_path / "out48.png")).asDirect()
    assert (width, height, info["bitdepth"], info["planes"]) == (40, 48, 16, 3)
    # processed in float: the 16-bit input gives a different output than its 8-bit truncation
    eight_bit = np.asarray(upscale((pixels // 257).astype(np.uint8), model)).astype(np.float64) * 257
    assert np.abs(out.astype(np.float64) - eight_bit).max() > 0


def test_cmyk_becomes_rgb(model, data_dir):
    cmyk = set5_lr(data_dir, "woman").convert("CMYK")
    out = upscale(cmyk, model)
    assert out.mode == "RGB" and out.size == (cmyk.width * SCALE, cmyk.height * SCALE)


def test_exif_orientation_is_applied(model, data_dir, tmp_path):
    image = set5_lr(data_dir, "woman")  # 57 x 86, portrait
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = upscale(tmp_path / "rotated.jpg", model)
    assert out.size == (image.height * SCALE, image.width * SCALE)


def test_icc_profile_is_carried(model, data_dir, tmp_path):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    set5_lr(data_dir, "head").save(tmp_path / "icc.png", icc_profile=profile)
    out = upscale(tmp_path / "icc.png", model)
    assert out.info.get("icc_profile") == profile
    save_image(out, tmp_path / "icc_out.png")
    assert Image.open(tmp_path / "icc_out.png").info.get("icc_profile") == profile


def test_half_precision_overflow_falls_back_to_fp32(data_dir):
    torch.manual_seed(0)
    model = SRGenerator(num_blocks=1, num_channels=8).eval()
    with torch.no_grad():  # activations of ~1e6: fine in fp32; +-inf in fp16, which the next conv turns to NaN
        model.head[0].weight.mul_(1e6)
    lr = set5_lr(data_dir, "head").crop((0, 0, 24, 24))
    half = prepare_for_inference(model, torch.device("cpu"), torch.float16)
    with torch.inference_mode():
        raw = half(torch.from_numpy(np.asarray(lr, np.float32) / 255).permute(2, 0, 1)[None])
    assert not torch.isfinite(raw).all()  # the model really overflows in half precision
    out = upscale(lr, model, dtype=torch.float16, device="cpu")
    reference = upscale(lr, model, dtype=torch.float32, device="cpu")
    assert np.array_equal(np.asarray(out), np.asarray(reference))


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (b"this is not an image", InvalidImageError, "not an image"),
        (np.zeros((0, 5, 3), np.uint8), InvalidImageError, "empty"),
        (np.zeros((2, 40, 3), np.uint8), InvalidImageError, "too small"),
        (np.zeros((2, 40, 7), np.uint8), InvalidImageError, "shape"),
    ],
)
def test_bad_input_raises_clear_errors(model, bad, error, message):
    with pytest.raises(error, match=message):
        upscale(bad, model)


def test_truncated_file(model, data_dir):
    data = (data_dir / "benchmarks" / "LR_x4_matlab_bicubic" / "Set5" / "baby.png").read_bytes()
    with pytest.raises(InvalidImageError, match="truncated or corrupt"):
        upscale(data[: len(data) // 2], model)


def test_decompression_bomb_is_refused_before_decoding(model, tmp_path):
    Image.new("RGB", (3000, 3000)).save(tmp_path / "big.png")
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        upscale(tmp_path / "big.png", model, max_pixels=1_000_000)


def test_missing_bundled_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SRGAN_HUB_MODELS", str(tmp_path))
    load_model.cache_clear()
    try:
        with pytest.raises(NoBundledModelError, match="pass a model"):
            upscale(np.zeros((8, 8, 3), np.uint8))
    finally:
        load_model.cache_clear()


WHEEL_CHECK = """
import sys, numpy as np, srgan_hub
from srgan_hub import upscale
from srgan_hub.inference import BUNDLED_MODELS_DIR
print(srgan_hub.__file__, BUNDLED_MODELS_DIR, upscale(np.zeros((8, 8, 3), np.uint8)).size)
"""


@pytest.mark.slow
def test_a_wheel_install_has_a_default_model(tmp_path):
    """`pip install .` (not editable) ships the bundled models inside the package: upscale() works from anywhere."""
    repo = Path(__file__).resolve().parents[1]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(repo), "-w", str(tmp_path / "dist")], check=True
    )
    wheel = next((tmp_path / "dist").glob("srgan_hub-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = os.environ | {"PYTHONPATH": str(tmp_path / "site")}
    env.pop("SRGAN_HUB_MODELS", None)
    result = subprocess.run(
        [sys.executable, "-c", WHEEL_CHECK], cwd=outside, env=env, capture_output=True, text=True, check=True
    )
    package, models, size = result.stdout.split(maxsplit=2)
    assert package.startswith(str(tmp_path / "site")) and models == str(tmp_path / "site" / "srgan_hub" / "bundled")
    assert size.strip() == "(32, 32)"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "srgan-upscale"
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=300, env=os.environ | {"PYTHONWARNINGS": "ignore"}
    )


def test_cli_processes_a_folder_and_reports_the_corrupt_file(model_dir, data_dir, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("baby", "head"):
        set5_lr(data_dir, name).crop((0, 0, 32, 24)).save(inputs / f"{name}.png")
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    result = run_cli(str(inputs), "-o", str(tmp_path / "out"), "--model", str(model_dir), "--format", "jpg")
    assert result.returncode == 1
    assert "broken.png" in result.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["baby_x4.jpg", "head_x4.jpg"]
    assert Image.open(tmp_path / "out" / "baby_x4.jpg").size == (128, 96)


def test_cli_never_overwrites_inputs(model_dir, data_dir, tmp_path):
    set5_lr(data_dir, "head").crop((0, 0, 16, 16)).save(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    result = run_cli(str(tmp_path / "a.png"), "-o", str(tmp_path), "--model", str(model_dir), "--suffix", "")
    assert result.returncode == 1 and "overwrite an input" in result.stderr
    assert (tmp_path / "a.png").read_bytes() == before


def test_cli_globs_and_missing_inputs(model_dir, data_dir, tmp_path):
    for name in ("baby", "bird"):
        set5_lr(data_dir, name).crop((0, 0, 16, 16)).save(tmp_path / f"{name}.png")
    result = run_cli(
        str(tmp_path / "b*.png"),
        str(tmp_path / "nope.png"),
        "-o",
        str(tmp_path / "out"),
        "--model",
        str(model_dir),
        "--tile",
        "8",
    )
    assert result.returncode == 1 and "nope.png" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["baby_x4.png", "bird_x4.png"]


def test_cli_help_documents_every_option():
    result = run_cli("--help")
    assert result.returncode == 0
    for option in ("--output-dir", "--model", "--tile", "--format", "--suffix", "--tile-overlap", "--max-pixels"):
        assert option in result.stdout


def test_precision_follows_the_hardware_unless_forced(monkeypatch):
    monkeypatch.delenv("SRGAN_HUB_PRECISION", raising=False)
    cpu = torch.device("cpu")
    monkeypatch.setattr(inference, "cpu_has_bf16", lambda: True)
    assert default_device_and_dtype("cpu") == (cpu, torch.bfloat16)
    assert default_device_and_dtype("cpu", "fp32") == (cpu, torch.float32)  # the caller's choice wins
    monkeypatch.setenv("SRGAN_HUB_PRECISION", "fp32")
    assert default_device_and_dtype("cpu") == (cpu, torch.float32)  # the environment can force fp32
    assert default_device_and_dtype("cpu", torch.bfloat16) == (cpu, torch.bfloat16)
    monkeypatch.setenv("SRGAN_HUB_PRECISION", "auto")
    monkeypatch.setattr(inference, "cpu_has_bf16", lambda: False)
    assert default_device_and_dtype("cpu") == (cpu, torch.float32)  # emulated bf16 would be 2-3x slower
    with pytest.raises(ValueError, match="precision must be"):
        default_device_and_dtype("cpu", "fp8")


def test_bf16_detection_agrees_with_the_cpu_flags():
    flags = set(
        next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    )
    assert inference.cpu_has_bf16() == bool(flags & {"amx_bf16", "avx512_bf16"})


@pytest.mark.parametrize(
    ("height", "width", "overlap", "budget"), [(50, 70, 5, 900), (41, 41, 3, 400), (9, 200, 2, 300)]
)
def test_tile_plan_is_the_cheapest_grid_within_the_memory_budget(height, width, overlap, budget):
    """Against every grid of equal tiles: every window fits the budget, and none costs less compute."""

    def windows(tile):
        grid = tile_grid(height, width, tile)
        return len(grid), min(grid[0][2] + 2 * overlap, height) * min(grid[0][3] + 2 * overlap, width)

    count, window = windows(tile_for_memory(height, width, overlap, budget))
    assert window <= budget
    feasible = [windows((h, w)) for h in range(1, height + 1) for w in range(1, width + 1)]
    assert count * window == min(n * area for n, area in feasible if area <= budget)


def test_tile_plan_uses_one_pass_when_the_image_fits_and_bf16_halves_the_memory():
    model = SRGenerator()  # the paper's width: 64 channels
    assert tile_for_memory(100, 120, 40, 100 * 120) == (100, 120)
    budget = 100 * 2**20
    fp32, bf16 = (window_pixels_for_memory(model, dtype, budget) for dtype in (torch.float32, torch.bfloat16))
    assert bf16 == 2 * fp32
    assert fp32 * 5 * 64 * 4 * 4 <= budget < (fp32 + 1) * 5 * 64 * 4 * 4  # 5 x 64 x (4 / 2)^2 fp32 values per pixel


def test_outscale_resizes_to_the_documented_size(model, data_dir):
    lr = set5_lr(data_dir, "bird").crop((0, 0, 37, 25))
    assert upscale(lr, model, outscale=2).size == (74, 50)  # exactly half the x4 output per side
    assert upscale(lr, model, outscale=3).size == (111, 75)
    assert upscale(lr, model, outscale=2.5).size == (93, 63)  # round(37 x 2.5 = 92.5) rounds half up
    assert upscale(lr, model, outscale=4).size == upscale(lr, model).size
    deep = upscale(np.full((10, 12, 3), 40000, np.uint16), model, outscale=3)
    assert deep.dtype == np.uint16 and deep.shape == (30, 36, 3)  # 16 bits survive the resize
    with pytest.raises(ValueError, match="outscale must be between 1 and the model's scale 4"):
        upscale(lr, model, outscale=5)


def test_cli_outscale_and_detail(model_dir, data_dir, tmp_path):
    set5_lr(data_dir, "bird").crop((0, 0, 30, 20)).save(tmp_path / "bird.png")
    result = run_cli(
        str(tmp_path / "bird.png"), "-o", str(tmp_path / "out"), "--model", str(model_dir), "--outscale", "2"
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "out" / "bird_x2.png").size == (60, 40)
    result = run_cli(
        str(tmp_path / "bird.png"), "-o", str(tmp_path / "out"), "--model", str(model_dir), "--detail", "0.5"
    )
    assert result.returncode == 2 and "--detail: this generator records no base_model" in result.stderr


@pytest.mark.slow
def test_accelerate_launch_splits_the_inputs_across_processes(model_dir, data_dir, tmp_path):
    """`accelerate launch` of the CLI: two real processes share the inputs, one summary, outputs identical to a
    single process's."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, name in enumerate(("baby", "bird", "butterfly", "head", "woman")):
        set5_lr(data_dir, name).crop((0, 0, 24 + i, 20)).save(inputs / f"{name}.png")
    single = run_cli(str(inputs), "-o", str(tmp_path / "one"), "--model", str(model_dir))
    assert single.returncode == 0, single.stderr
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "srgan_hub.cli"]
    env = os.environ | {"ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    both = subprocess.run(
        [*command, str(inputs), "-o", str(tmp_path / "two"), "--model", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert both.returncode == 0, both.stderr[-3000:]
    assert both.stderr.count("image(s) written") == 1 and "5 image(s) written" in both.stderr
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir()) and len(names) == 5
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_upscale_with_bicubic_gives_both_sides_of_a_comparison_in_the_inputs_kind(model):
    """The demo's one library call: the result, bicubic at the same size and of the same kind (16-bit RGBA stays
    16-bit RGBA), and the facts it shows; the result is what upscale() gives."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65536, (21, 30, 4), dtype=np.uint16)
    shown = upscale_with_bicubic(image, model, outscale=3)
    assert shown.input_size == (30, 21) and shown.output_size == (90, 63)
    assert shown.result.shape == shown.bicubic.shape == (63, 90, 4) and shown.bicubic.dtype == np.uint16
    np.testing.assert_array_equal(shown.result, upscale(image, model, outscale=3))
    assert shown.precision == inference.precision_name(default_device_and_dtype()[1]) and shown.seconds > 0
    flat = np.full((20, 20, 3), 77, dtype=np.uint8)  # bicubic keeps a flat image flat
    assert set(np.unique(np.asarray(upscale_with_bicubic(flat, model, outscale=2).bicubic))) == {77}
    gray = upscale_with_bicubic(Image.fromarray(flat[..., 0], "L"), model)
    assert gray.result.mode == gray.bicubic.mode == "L" and gray.bicubic.size == gray.output_size == (80, 80)
