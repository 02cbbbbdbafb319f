"""Reading and writing images as uint8 numpy arrays, with one-line errors.

``read_image`` returns what the rest of srlib works on: (H, W) for grey images, (H, W, 3)
for colour and, in ``mode="auto"``, (H, W, 4) for images with transparency, so that
upscaling code can carry the alpha channel through. Every problem with a file (not an
image, truncated, a decompression bomb, too small) raises ``ImageError`` naming the file.
``write_image`` replaces its target atomically: a reader never sees half a file.

Photographs keep what makes them photographs: ``read_image`` turns the pixels upright by
their EXIF orientation (a portrait phone photo comes out portrait), ``read_info`` gives the
ICC profile and EXIF (orientation reset, the pixels being upright) that ``write_image`` puts
back, and says when a file holds more than 8 bits per channel. Animated images are refused
rather than cut to their first frame.
"""
import os
import secrets
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np
from PIL import Image, ImageOps

# Largest image read_image decodes, in pixels. A 100-megapixel RGB image already needs
# 300 MB as uint8 (and several times that in float during resampling); a small file that
# claims more is far more likely a decompression bomb than a photograph.
MAX_PIXELS = 100_000_000

MODES = ("auto", "RGB", "L", "RGBA")
_ORIENTATION = 0x0112  # the EXIF tag; values 5-8 swap width and height
# Largest side each output format can hold (Pillow's writers refuse or wrap beyond it).
MAX_SIDE = {"ICO": 256, "WEBP": 16383, "JPEG": 65500, "GIF": 65535, "BMP": 2 ** 31 - 1, "PNG": 2 ** 31 - 1}
_KEEPS_METADATA = {"PNG", "JPEG", "WEBP", "TIFF"}  # formats Pillow writes ICC profiles and EXIF into
_HAS_QUALITY = {"JPEG", "WEBP"}
# zlib level of the PNGs written: 1 encodes a 4K photograph in 0.8 s against 1.5 s at Pillow's
# default 6, for files about 10 % larger (still lossless).
PNG_LEVEL = 1
_GREY_MODES = {"1", "L", "I", "F"}  # plus the "I;16..." family, recognised by prefix


class ImageError(ValueError):
    """A file that cannot be read as an image, with the file and the reason in one line."""


@dataclass(frozen=True)
class ImageInfo:
    """What a file says about itself, read without decoding its pixels: upright size,
    bits per channel, frames, and the ICC profile and EXIF to carry to an output."""
    width: int
    height: int
    bits: int
    frames: int
    icc_profile: bytes | None
    exif: bytes | None


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """Pillow's image of ``path``, refused above MAX_PIXELS; every problem with the file,
    here or in the caller's block, becomes one ImageError line naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS is the limit
            im = Image.open(path)
        with im:
            width, height = im.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"{path}: {width}x{height} pixels exceeds srlib.imageio.MAX_PIXELS "
                                 f"({MAX_PIXELS:,}); refusing a possible decompression bomb")
            yield im
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: refusing a possible decompression bomb ({_first_line(exc)})") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image file Pillow can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: truncated or corrupt image data ({_first_line(exc)})") from exc


def read_info(path: str | os.PathLike) -> ImageInfo:
    """The ``ImageInfo`` of an image file (header only: cheap even for huge images)."""
    with _opened(Path(path)) as im:
        exif = im.getexif()
        width, height = im.size
        if exif.get(_ORIENTATION, 1) in (5, 6, 7, 8):
            width, height = height, width
        if _ORIENTATION in exif:
            exif[_ORIENTATION] = 1  # read_image returns the pixels upright
        rawmode = im.tile[0][3] if im.tile and isinstance(im.tile[0][3], str) else ""
        bits = 16 if im.mode in ("I", "I;16", "I;16B", "I;16L") or ";16" in rawmode else 8
        return ImageInfo(width, height, bits, getattr(im, "n_frames", 1), im.info.get("icc_profile"),
                         exif.tobytes() if len(exif) else None)


def read_image(path: str | os.PathLike, *, mode: str = "auto", min_size: int | None = None) -> np.ndarray:
    """Read an image file as a uint8 array, decoding it fully so damage is found here.

    mode "auto": grey-like files (1-bit, 8/16-bit grey) give (H, W); colour files
    (RGB, palette, CMYK, YCbCr, ...) give (H, W, 3); files with an alpha channel or a
    transparent palette entry give (H, W, 4). "L", "RGB" and "RGBA" force that layout
    (Pillow's conversions: ITU-R 601 luma for "L", alpha dropped, not composited, for
    "RGB", opaque alpha added for "RGBA"). 16-bit grey is scaled to 8 bits (v / 257,
    rounded). ``min_size`` rejects images whose shorter side is below it. The pixels come
    upright by the EXIF orientation; an animated image (several frames) is refused.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    path = Path(path)
    with _opened(path) as im:
        width, height = im.size
        if min_size is not None and min(width, height) < min_size:
            raise ImageError(f"{path}: {width}x{height} pixels is too small, both sides must be at least {min_size}")
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            raise ImageError(f"{path}: an animated image ({frames} frames); srlib reads still images "
                             f"and will not silently keep only the first frame")
        im.load()
        ImageOps.exif_transpose(im, in_place=True)
        return _to_array(im, mode, path)


def _to_array(im: Image.Image, mode: str, path: Path) -> np.ndarray:
    """Convert a decoded Pillow image to the uint8 layout that ``mode`` asks for."""
    if im.mode == "F":
        raise ImageError(f"{path}: floating-point images are not supported (no agreed 8-bit scale)")
    if im.mode == "I" or im.mode.startswith("I;16"):
        wide = np.asarray(im).astype(np.float64)
        im = Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), "L")
    if mode == "auto":
        if im.has_transparency_data:
            mode = "RGBA"
        elif im.mode in _GREY_MODES:
            mode = "L"
        else:
            mode = "RGB"
    if im.mode != mode:
        im = im.convert(mode)
    return np.asarray(im, dtype=np.uint8).copy()


def output_format(path: str | os.PathLike, width: int | None = None, height: int | None = None) -> str:
    """Pillow's format for ``path``'s suffix, checked (before any work) to hold width x height."""
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        raise ValueError(f"{path}: unknown image suffix {path.suffix!r} (use .png, .bmp, .jpg, ...)")
    limit = MAX_SIDE.get(image_format)
    if width is not None and height is not None and limit is not None and max(width, height) > limit:
        raise ValueError(f"{path}: a {width}x{height} image does not fit the {image_format} format "
                         f"(at most {limit} pixels a side); choose another suffix, e.g. .png")
    return image_format


def write_image(path: str | os.PathLike, image: np.ndarray, *, quality: int | None = None,
                info: ImageInfo | None = None) -> None:
    """Write a uint8 (H, W), (H, W, 3) or (H, W, 4) array; the format follows the suffix.

    ``quality`` (1-100) sets JPEG and WebP compression (default 95, not Pillow's 75); PNGs
    are compressed fast (``PNG_LEVEL``);
    ``info`` (from ``read_info``) carries the source's ICC profile and EXIF into formats
    that hold them (PNG, JPEG, WebP, TIFF).

    The image goes to a temporary file in the same folder, which then replaces ``path``
    in one step, so a failure (bad format, full disk) leaves neither a partial image nor
    the temporary file behind.
    """
    path = Path(path)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"write_image needs a uint8 array, got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ValueError(f"write_image needs an (H, W), (H, W, 3) or (H, W, 4) array, got shape {image.shape}")
    image_format = output_format(path, image.shape[1], image.shape[0])
    options = {}
    if quality is not None and not (isinstance(quality, int) and 1 <= quality <= 100):
        raise ValueError(f"quality must be an integer from 1 to 100, got {quality!r}")
    if image_format in _HAS_QUALITY:
        options["quality"] = 95 if quality is None else quality
    if image_format == "PNG":
        options["compress_level"] = PNG_LEVEL
    if info is not None and image_format in _KEEPS_METADATA:
        options.update({key: value for key, value in (("icc_profile", info.icc_profile), ("exif", info.exif))
                        if value is not None})

    def save(f: BinaryIO) -> None:
        try:
            Image.fromarray(image).save(f, format=image_format, **options)
        except (OSError, ValueError, KeyError) as exc:
            raise ImageError(f"{path}: cannot write {image_format} image ({_first_line(exc)})") from exc

    atomic_write(path, save)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Write through ``write(file)`` into a hidden temporary beside ``path``, then rename it
    in: readers see the old file or the new one, never part of one, and an error (or a kill)
    leaves ``path`` untouched. Used for every file srlib writes."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, so that errors stay one line long."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
