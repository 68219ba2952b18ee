"""Hostile and unusual inputs through upscale(), srgan-upscale and the app's reader: every one gets a correct
result or a clear error naming the file, and nothing is lost (pixels, bit depth, alpha, output files)."""

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
import torch
from PIL import Image, ImageCms, TiffImagePlugin

from srgan_hub import SRGenerator, upscale
from srgan_hub.imageio import ImageTooLargeError, InvalidImageError, read_planes


@pytest.fixture(scope="module")
def model() -> SRGenerator:
    torch.manual_seed(0)
    return SRGenerator(num_blocks=1, num_channels=8).eval()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, model) -> Path:
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    return folder


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def header_only_png(width: int, height: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A valid PNG header announcing width x height pixels, followed by almost no data: a bomb's shape."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + idat + png_chunk(b"IEND", b"")


def png16(array: np.ndarray, **kwargs) -> bytes:
    height, width, channels = array.shape
    greyscale = channels in (1, 2)
    writer = png.Writer(width, height, greyscale=greyscale, alpha=channels in (2, 4), bitdepth=16, **kwargs)
    out = io.BytesIO()
    writer.write(out, array.reshape(height, width * channels).tolist())
    return out.getvalue()


def tiff(array: np.ndarray, mode: str, **tags) -> bytes:
    info = TiffImagePlugin.ImageFileDirectory_v2()
    for tag, value in tags.items():
        info[{"low": 340, "high": 341}[tag]] = value
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, "TIFF", tiffinfo=info)
    return out.getvalue()


# 1. Bombs and pixel caps


def test_16bit_colour_png_bomb_is_refused_from_its_header():
    with pytest.raises(ImageTooLargeError, match="60000x60000"):
        read_planes(header_only_png(60000, 60000, bit_depth=16))  # would read as "truncated" if it were decoded
    with pytest.raises(ImageTooLargeError, match="8000x8000"):
        read_planes(header_only_png(8000, 8000, bit_depth=16, colour_type=6))


def test_max_pixels_is_the_only_cap():
    """Above Pillow's own 179 Mpx bomb cap, a caller who lifts max_pixels gets the file decoded (here: found
    truncated), not Pillow's refusal."""
    bomb = header_only_png(20000, 20000)  # 400 Mpx
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        read_planes(bomb)
    for limit in (None, 500_000_000):
        with pytest.raises(InvalidImageError, match="truncated") as error:
            read_planes(bomb, max_pixels=limit)
        assert not isinstance(error.value, ImageTooLargeError)


def test_fit_pixels_shrinks_instead_of_refusing_and_keeps_what_the_image_is():
    """Over fit_pixels an image is scaled down to fit, aspect ratio and orientation kept: an 8-bit JPEG while it
    is decoded (with its EXIF rotation applied), a 16-bit RGBA array by box means that keep bit depth and alpha."""
    photo = Image.new("RGB", (1600, 400), (200, 40, 40))
    photo.paste((40, 40, 200), (0, 0, 800, 400))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the blue half ends up on top
    data = io.BytesIO()
    photo.save(data, "JPEG", quality=95, exif=exif)
    with pytest.raises(ImageTooLargeError):
        read_planes(data.getvalue(), max_pixels=100_000)
    planes = read_planes(data.getvalue(), fit_pixels=100_000)
    width, height = planes.size
    assert width * height <= 100_000 and abs(height / width - 4) < 0.05  # upright: 400 x 1600 shown
    top, bottom = planes.colour[: height // 4].mean((0, 1)), planes.colour[-height // 4 :].mean((0, 1))
    assert top[2] > 0.6 > top[0] and bottom[0] > 0.6 > bottom[2]

    wide = np.zeros((300, 600, 4), np.uint16)
    wide[:, ::2, :3], wide[..., 3] = 65535, 30000  # stripes one pixel wide average to mid grey
    planes = read_planes(wide, fit_pixels=600 * 300 // 4)
    assert planes.size == (300, 150) and planes.bits == 16
    assert np.allclose(planes.colour, 0.5, atol=0.01) and np.allclose(planes.alpha, 30000 / 65535, atol=1e-4)
    assert read_planes(wide, fit_pixels=600 * 300).size == (600, 300)  # fits: unchanged


# 2. Float and wide-integer TIFFs


def test_float_tiff_with_nan_and_inf(model, tmp_path):
    values = np.full((16, 16), 0.5, np.float32)
    values[0, :4] = [np.nan, np.inf, -np.inf, 0.25]
    path = tmp_path / "float.tif"
    path.write_bytes(tiff(values, "F"))
    planes = read_planes(path)
    assert np.isfinite(planes.colour).all() and planes.bits == 16
    assert planes.colour[0, :4, 0].tolist() == [0.0, 1.0, 0.0, 0.25]
    out = np.asarray(upscale(path, model), dtype=np.float64) / 65535
    cleaned = np.nan_to_num(values, nan=0, posinf=1, neginf=0)  # what the file's pixels mean
    assert np.abs(out - np.asarray(upscale(cleaned, model), dtype=np.float64) / 255).max() <= 1 / 255


@pytest.mark.parametrize(
    ("array", "mode", "tags", "expected"),
    [
        (np.full((8, 8), 200.0, np.float32), "F", {"low": 0.0, "high": 255.0}, 200 / 255),
        (np.full((8, 8), 100000, np.int32), "I", {"low": 0.0, "high": 200000.0}, 0.5),
        (np.full((8, 8), 30000, np.int32), "I", {}, 30000 / 65535),
    ],
)
def test_wide_tiffs_are_scaled_by_their_declared_range(array, mode, tags, expected):
    planes = read_planes(tiff(array, mode, **tags))
    assert planes.colour[0, 0, 0] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("array", "mode"), [(np.full((8, 8), 200.0, np.float32), "F"), (np.full((8, 8), 100000, np.int32), "I")]
)
def test_wide_tiffs_beyond_their_range_are_refused_not_clipped(array, mode, tmp_path):
    path = tmp_path / "wide.tif"
    path.write_bytes(tiff(array, mode))
    with pytest.raises(InvalidImageError, match=f"{path}: {mode}-mode pixel values span .* outside the range"):
        read_planes(path)


# 5, 6. Alpha and bit depth kept


def test_16bit_gray_alpha_png_stays_16bit_gray_alpha(model):
    array = np.zeros((12, 12, 2), np.uint16)
    array[..., 0] = np.arange(12, dtype=np.uint16)[None, :] * 5000
    array[..., 1] = 65535
    array[:3, :3, 1] = 0
    out = upscale(png16(array), model)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint16 and out.shape == (48, 48, 2)  # gray + alpha
    assert out[0, 0, 1] == 0 and out[-1, -1, 1] == 65535
    assert len(np.unique(out[..., 0])) > 256  # more than 8 bits of gray survive


def test_rgb_png_with_a_trns_colour_key_keeps_its_transparency(model):
    image = Image.new("RGB", (16, 16), (200, 30, 30))
    image.paste((0, 255, 0), (0, 0, 8, 16))
    data = io.BytesIO()
    image.save(data, "PNG", transparency=(0, 255, 0))
    out = upscale(data.getvalue(), model)
    assert out.mode == "RGBA"
    alpha = np.asarray(out.getchannel("A"))
    assert alpha[:, :24].max() == 0 and alpha[:, 40:].min() == 255
    rgb16 = np.zeros((8, 8, 3), np.uint16)
    rgb16[:, 4:] = 40000
    out16 = upscale(png16(rgb16, transparent=(0, 0, 0)), model)  # a 16-bit colour key
    assert out16.shape == (32, 32, 4) and out16[:, :12, 3].max() == 0 and out16[:, 20:, 3].min() == 65535


# 7, 11. Broken metadata and chunks


def test_png_with_an_oversized_icc_chunk_is_a_clear_error(tmp_path):
    path = tmp_path / "huge_icc.png"
    Image.new("RGB", (8, 8)).save(path, icc_profile=os.urandom(10_000_000))
    with pytest.raises(InvalidImageError, match=str(path)):
        read_planes(path)


def test_broken_icc_profile_is_not_copied(model, tmp_path):
    Image.new("RGB", (8, 8), (10, 200, 30)).save(tmp_path / "bad_icc.png", icc_profile=b"not a profile" * 10)
    assert upscale(tmp_path / "bad_icc.png", model).info.get("icc_profile") is None
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (8, 8)).save(tmp_path / "good_icc.png", icc_profile=srgb)
    assert upscale(tmp_path / "good_icc.png", model).info.get("icc_profile") == srgb


def test_png_with_a_bad_idat_checksum_is_refused(tmp_path):
    data = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(data, "PNG")
    broken = bytearray(data.getvalue())
    at = broken.index(b"IDAT")
    broken[at + 4 + int.from_bytes(broken[at - 4 : at], "big")] ^= 0xFF  # the first byte of IDAT's CRC
    (tmp_path / "crc.png").write_bytes(bytes(broken))
    with pytest.raises(InvalidImageError, match=r"crc\.png .*Checksum error in IDAT"):
        read_planes(tmp_path / "crc.png")


# 3, 11. The CLI: no output lost, nothing skipped without a word


def run_cli(*args) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "srgan-upscale"
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    return subprocess.run([str(script), *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def test_cli_outputs_never_collide(model_dir, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    sizes = {"a.png": 8, "a.gif": 9, "x.png": 10, "x.ppm": 11, "sub/x.png": 12}  # the size tells the source
    for name, size in sizes.items():
        Image.new("RGB", (size, size), (120, 60, 30)).save(src / name)
    out = tmp_path / "out"
    result = run_cli(src, "-o", out, "--model", model_dir)
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["a_gif_x4.png", "a_png_x4.png", "sub/x_x4.png", "x_png_x4.png", "x_ppm_x4.png"]
    assert "5 image(s) written" in result.stderr
    expected = {"a_png_x4.png": 8, "a_gif_x4.png": 9, "x_png_x4.png": 10, "x_ppm_x4.png": 11, "sub/x_x4.png": 12}
    assert {name: Image.open(out / name).width // 4 for name in written} == expected


def test_cli_says_what_it_skips_and_accepts_what_pillow_reads(model_dir, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (16, 16), (50, 60, 70)).save(src / "icon.ico")
    Image.new("RGB", (16, 16), (50, 60, 70)).save(src / "targa.tga")
    (src / "vector.svg").write_text("<svg/>")
    (src / "phone.heic").write_bytes(b"\0\0\0\x18ftypheic")
    result = run_cli(src, "-o", tmp_path / "out", "--model", model_dir)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["icon_x4.png", "targa_x4.png"]
    assert "skipped 2 file(s) that are not images Pillow reads: phone.heic, vector.svg" in result.stderr


def test_cli_says_when_a_format_drops_bits_and_names_a_bad_file_once(model_dir, tmp_path):
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(tmp_path / "gray16.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    result = run_cli(
        tmp_path / "gray16.png",
        tmp_path / "broken.png",
        "-o",
        tmp_path / "out",
        "--model",
        model_dir,
        "--format",
        "webp",
    )
    assert result.returncode == 1
    assert "gray16.png is 16-bit; its webp output has 8 bits" in result.stderr
    error = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert error.count("broken.png") == 1
