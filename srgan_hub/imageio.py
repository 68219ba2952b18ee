"""Reading any image a user throws at us into float planes, and writing the result back in the same kind.

An image is split into what the network sees and what it must not:
    colour: H x W x 3 float32 in [0, 1] (grayscale is replicated to 3 channels; the model is an RGB model)
    alpha:  H x W float32 in [0, 1], or None
plus how to put the output back together: grayscale or colour, 8 or 16 bits, the ICC profile.
EXIF orientation is applied on reading, so the output is upright and carries no orientation tag.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

Image.init()
# Every extension of a format Pillow can open (PNG, JPEG, WebP, TIFF, BMP, GIF, ICO, TGA, PPM, ...).
IMAGE_EXTENSIONS = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
DEFAULT_MAX_PIXELS = 50_000_000  # input pixels; a decompression bomb is refused before decoding
MIN_SIDE = 4


class InvalidImageError(ValueError):
    """The input is not an image we can read (not an image at all, truncated, corrupt, empty or too small)."""


class ImageTooLargeError(InvalidImageError):
    """The input has more pixels than the configured limit (decompression-bomb guard)."""

    def __init__(self, message: str, width: int = 0, height: int = 0, max_pixels: int | None = None):
        super().__init__(message)
        self.width, self.height, self.max_pixels = width, height, max_pixels


@dataclass
class Planes:
    colour: np.ndarray  # H x W x 3 float32 in [0, 1]
    alpha: np.ndarray | None  # H x W float32 in [0, 1]
    grayscale: bool
    bits: int  # 8 or 16
    icc_profile: bytes | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL reports sizes."""
        return self.colour.shape[1], self.colour.shape[0]

    @property
    def peak(self) -> int:
        """The largest sample value of the image's bit depth: what 1.0 becomes when the output is quantised."""
        return 65535 if self.bits == 16 else 255

    def quantise(self, colour: np.ndarray) -> np.ndarray:
        """[0, 1] float samples -> integers of the image's bit depth."""
        return np.round(np.clip(colour, 0, 1) * self.peak).astype(np.uint16 if self.bits == 16 else np.uint8)


def list_images(folder: str | Path) -> list[Path]:
    """Image files in `folder` (recursively), sorted: those whose extension is a format Pillow opens."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def list_non_images(folder: str | Path) -> list[Path]:
    """The other files in `folder` (recursively), sorted: what `list_images` leaves out."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() not in IMAGE_EXTENSIONS and p.is_file())


# --------------------------------------------------------------------------------------------------------------
# Reading


def read_planes(image, max_pixels: int | None = DEFAULT_MAX_PIXELS, fit_pixels: int | None = None) -> Planes:
    """A path, bytes, PIL image or numpy array (uint8/uint16/float H x W [x 1-4]) -> Planes (Planes pass
    through, size-checked). Over `max_pixels` an image is refused from its header; over `fit_pixels` it is scaled
    down to fit (aspect ratio kept; 8-bit images while they are decoded, so a large JPEG is never whole in memory)."""
    planes = _read_planes(image, max_pixels, fit_pixels)
    return planes if fit_pixels is None else shrink_to_fit(planes, fit_pixels)


def _read_planes(image, max_pixels: int | None, fit_pixels: int | None) -> Planes:
    if isinstance(image, Planes):
        return _check_size(image, max_pixels, "planes")
    if isinstance(image, np.ndarray):
        return _check_size(_planes_from_array(image), max_pixels, "array")
    if isinstance(image, Image.Image):
        return _planes_from_pil(image, max_pixels, "image", fit_pixels)
    if isinstance(image, bytes):
        data, name = image, "<bytes>"
    elif isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"no such image file: {path}")
        data, name = path.read_bytes(), str(path)
    else:
        raise TypeError(f"expected a path, bytes, PIL image or numpy array, got {type(image).__name__}")
    if data[:8] == PNG_SIGNATURE:
        _check_png(data, max_pixels, name)
        if _is_16bit_png_pillow_narrows(data):
            return _check_size(_read_16bit_png(data, name), max_pixels, name)
    try:
        pil = _open_without_pillow_cap(data)
    except UnidentifiedImageError as error:
        raise InvalidImageError(f"{name} is not an image that can be read") from error
    except (OSError, SyntaxError, ValueError) as error:  # e.g. an oversized metadata chunk Pillow refuses
        raise InvalidImageError(f"{name} cannot be read: {error}") from error
    return _planes_from_pil(pil, max_pixels, name, fit_pixels)


def fitted_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """(width, height) scaled down, aspect ratio kept, so that width x height <= max_pixels (unchanged if it fits)."""
    width, height = size
    if width * height <= max_pixels:
        return size
    ratio = (max_pixels / (width * height)) ** 0.5
    return max(1, int(width * ratio)), max(1, int(height * ratio))


def shrink_to_fit(planes: Planes, max_pixels: int) -> Planes:
    """`planes` scaled down with a box filter (each output pixel the mean of the input it covers) to fit
    `max_pixels`; unchanged if they fit."""
    size = fitted_size(planes.size, max_pixels)
    if size == planes.size:
        return planes

    def resize(plane: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(plane, "F").resize(size, Image.Resampling.BOX)).clip(0, 1)

    colour = np.stack([resize(np.ascontiguousarray(planes.colour[..., c])) for c in range(3)], axis=-1)
    alpha = None if planes.alpha is None else resize(planes.alpha)
    return Planes(colour, alpha, planes.grayscale, planes.bits, planes.icc_profile)


_PILLOW_CAP_LOCK = threading.Lock()


def _open_without_pillow_cap(data: bytes) -> Image.Image:
    """Image.open with Pillow's own decompression-bomb cap (179 Mpx) lifted: `max_pixels`, checked on the header
    before anything is decoded, is the one limit, so a caller who trusts a file can raise it."""
    with _PILLOW_CAP_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _planes_from_pil(pil: Image.Image, max_pixels: int | None, name: str, fit_pixels: int | None = None) -> Planes:
    _check_dimensions(pil.width, pil.height, max_pixels, name)  # before decoding: bombs never get decoded
    tiff_tags = dict(getattr(pil, "tag_v2", {}))  # exif_transpose's copy drops them
    try:
        if fit_pixels is not None and pil.mode in ("L", "LA", "RGB", "RGBA", "P"):
            pil.thumbnail(fitted_size(pil.size, fit_pixels), reducing_gap=2.0)  # JPEG: scaled in the DCT
        pil.load()
        pil = ImageOps.exif_transpose(pil)
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data
        raise InvalidImageError(f"{name} is truncated or corrupt: {error}") from error
    icc = _valid_icc_profile(pil.info.get("icc_profile"))
    mode = pil.mode
    if mode in ("RGB", "L") and "transparency" in pil.info:  # a tRNS colour key: that colour is transparent
        pil = pil.convert("RGBA" if mode == "RGB" else "LA")
    elif mode == "P":
        pil = pil.convert("RGBA" if "transparency" in pil.info else "RGB")
    elif mode == "1":
        pil = pil.convert("L")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        pil = pil.convert("RGB")
        icc = None if mode == "CMYK" else icc  # a CMYK profile does not describe the RGB output
    elif mode == "PA":
        pil = pil.convert("RGBA")
    elif mode == "La":
        pil = pil.convert("LA")
    elif mode == "RGBa":
        pil = pil.convert("RGBA")
    elif mode.startswith("I;16") or mode in ("I", "F"):
        plane = _wide_gray_to_unit(pil, tiff_tags, name)
        return _check_size(Planes(_gray3(plane), None, True, 16, icc), max_pixels, name)
    if pil.mode not in ("L", "LA", "RGB", "RGBA"):
        raise InvalidImageError(f"{name}: image mode {pil.mode} is not supported")
    planes = _planes_from_array(np.asarray(pil))
    planes.icc_profile = icc
    return _check_size(planes, max_pixels, name)


def _wide_gray_to_unit(pil: Image.Image, tags: dict, name: str) -> np.ndarray:
    """A 16/32-bit integer or float gray image as values in [0, 1], by its declared range.

    16-bit images span 0-65535. 32-bit integer and float images (TIFF) may declare their range (SMinSampleValue /
    SMaxSampleValue); floats without one are taken as 0-1 and integers as 16-bit, and values beyond the range are
    refused rather than clipped to white. NaN becomes 0, +-inf the ends of the range."""
    pixels = np.asarray(pil, dtype=np.float64)
    low, high = (value[0] if isinstance(value, tuple) else value for value in (tags.get(340), tags.get(341)))
    if pil.mode.startswith("I;16"):
        low, high = 0, 65535
    elif high is None:
        low, high = 0, 1.0 if pil.mode == "F" else 65535
    low = low or 0
    pixels = np.nan_to_num(pixels, nan=low, posinf=high, neginf=low)
    if pixels.min() < low or pixels.max() > high:
        raise InvalidImageError(
            f"{name}: {pil.mode}-mode pixel values span {pixels.min():g}..{pixels.max():g}, outside the range "
            f"{low:g}..{high:g} (the TIFF's SMinSampleValue/SMaxSampleValue, or 0..1 for floats and 0..65535 for "
            "integers when it declares none); rescale it or declare its range"
        )
    return ((pixels - low) / (high - low)).astype(np.float32)


def _valid_icc_profile(icc: bytes | None) -> bytes | None:
    """The ICC profile if it parses, else None: a broken profile is not copied into the output."""
    if not icc:
        return None
    from PIL import ImageCms

    try:
        ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError, ValueError):
        return None
    return icc


def _planes_from_array(array: np.ndarray) -> Planes:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise InvalidImageError(f"expected an H x W or H x W x (1-4) array, got shape {array.shape}")
    if array.dtype == np.uint8:
        bits, values = 8, array.astype(np.float32) / 255
    elif array.dtype == np.uint16:
        bits, values = 16, array.astype(np.float32) / 65535
    elif np.issubdtype(array.dtype, np.floating):
        bits, values = 8, np.clip(np.nan_to_num(array.astype(np.float32)), 0, 1)
    else:
        raise InvalidImageError(f"expected a uint8, uint16 or float array, got {array.dtype}")
    channels = array.shape[2]
    grayscale = channels in (1, 2)
    colour = _gray3(values[..., 0]) if grayscale else values[..., :3]
    alpha = values[..., -1] if channels in (2, 4) else None
    return Planes(np.ascontiguousarray(colour), alpha, grayscale, bits)


def _gray3(plane: np.ndarray) -> np.ndarray:
    return np.repeat(plane[..., None], 3, axis=2)


def _check_dimensions(width: int, height: int, max_pixels: int | None, name: str) -> None:
    if width == 0 or height == 0:
        raise InvalidImageError(f"{name} is empty ({width}x{height} pixels)")
    if min(width, height) < MIN_SIDE:
        raise InvalidImageError(f"{name} is {width}x{height}: too small, both sides must be at least {MIN_SIDE} px")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
            "(raise max_pixels / --max-pixels if you trust this file)",
            width,
            height,
            max_pixels,
        )


def _check_size(planes: Planes, max_pixels: int | None, name: str) -> Planes:
    _check_dimensions(*planes.size, max_pixels, name)
    return planes


# PNGs: every chunk's CRC is checked (Pillow does not check IDAT's), and 16-bit colour or gray+alpha PNGs, which
# Pillow narrows to 8 bits, are decoded by pypng.

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(data: bytes, max_pixels: int | None, name: str) -> None:
    """The header's size against `max_pixels` (before any decoding), then every chunk's checksum."""
    import png

    if len(data) >= 24 and data[12:16] == b"IHDR":
        _check_dimensions(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), max_pixels, name)
    try:
        for _ in png.Reader(bytes=data).chunks():
            pass
    except (png.Error, ValueError, EOFError) as error:  # a checksum mismatch is a png.ChunkError
        raise InvalidImageError(f"{name} is truncated or corrupt: {error}") from error


def _is_16bit_png_pillow_narrows(data: bytes) -> bool:
    # IHDR: width(4) height(4) bit depth(1) colour type(1); types 2 = RGB, 4 = gray + alpha, 6 = RGBA
    return len(data) > 26 and data[24] == 16 and data[25] in (2, 4, 6)


def _read_16bit_png(data: bytes, name: str) -> Planes:
    import png

    try:
        width, height, rows, info = png.Reader(bytes=data).asDirect()  # a tRNS colour key becomes alpha here
        pixels = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    except (png.Error, ValueError) as error:
        raise InvalidImageError(f"{name} is truncated or corrupt: {error}") from error
    planes = _planes_from_array(pixels.reshape(height, width, info["planes"]))
    planes.icc_profile = _valid_icc_profile(info.get("icc_profile"))
    return planes


# --------------------------------------------------------------------------------------------------------------
# Writing


def save_image(result, path: str | Path, icc_profile: bytes | None = None, quality: int = 95) -> None:
    """Save what `upscale` returned: a PIL image (any format PIL writes; JPEG drops alpha onto white) or a uint16
    array (16-bit PNG through pypng)."""
    path = Path(path)
    if isinstance(result, np.ndarray):
        import png

        if path.suffix.lower() != ".png":
            raise ValueError(f"16-bit images can only be saved as PNG, not {path.suffix}")
        height, width, channels = result.shape
        writer = png.Writer(width, height, bitdepth=16, greyscale=channels in (1, 2), alpha=channels in (2, 4))
        with open(path, "wb") as f:
            writer.write(f, result.reshape(height, width * channels).tolist())
        return
    icc = icc_profile or result.info.get("icc_profile")
    options = {"icc_profile": icc} if icc else {}
    if path.suffix.lower() in (".jpg", ".jpeg"):
        if result.mode in ("RGBA", "LA"):
            background = Image.new("RGB", result.size, (255, 255, 255))
            background.paste(result.convert("RGBA"), mask=result.getchannel("A"))
            result = background
        elif result.mode == "I;16":
            result = Image.fromarray((np.asarray(result) // 257).astype(np.uint8))
        options["quality"] = quality
    elif path.suffix.lower() == ".webp":
        if result.mode == "I;16":
            result = Image.fromarray((np.asarray(result) // 257).astype(np.uint8))
        options |= {"lossless": True}
    result.save(path, **options)
