"""Reading and writing images as uint8 numpy arrays, with one-line errors.

``read_image`` returns what the rest of srlib works on: (H, W) for grey images, (H, W, 3)
for colour and, in ``mode="auto"``, (H, W, 4) for images with transparency, so that
upscaling code can carry the alpha channel through. Every problem with a file (not an
image, truncated, a decompression bomb, too small) raises ``ImageError`` naming the file.
``write_image`` replaces its target atomically: a reader never sees half a file.
"""
import os
import secrets
import warnings
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
from PIL import Image

# Largest image read_image decodes, in pixels. A 100-megapixel RGB image already needs
# 300 MB as uint8 (and several times that in float during resampling); a small file that
# claims more is far more likely a decompression bomb than a photograph.
MAX_PIXELS = 100_000_000

MODES = ("auto", "RGB", "L", "RGBA")
_GREY_MODES = {"1", "L", "I", "F"}  # plus the "I;16..." family, recognised by prefix


class ImageError(ValueError):
    """A file that cannot be read as an image, with the file and the reason in one line."""


def read_image(path: str | os.PathLike, *, mode: str = "auto", min_size: int | None = None) -> np.ndarray:
    """Read an image file as a uint8 array, decoding it fully so damage is found here.

    mode "auto": grey-like files (1-bit, 8/16-bit grey) give (H, W); colour files
    (RGB, palette, CMYK, YCbCr, ...) give (H, W, 3); files with an alpha channel or a
    transparent palette entry give (H, W, 4). "L", "RGB" and "RGBA" force that layout
    (Pillow's conversions: ITU-R 601 luma for "L", alpha dropped, not composited, for
    "RGB", opaque alpha added for "RGBA"). 16-bit grey is scaled to 8 bits (v / 257,
    rounded). ``min_size`` rejects images whose shorter side is below it.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            # MAX_PIXELS below is the limit; Pillow's own warning threshold is lower.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > MAX_PIXELS:
                    raise ImageError(
                        f"{path}: {width}x{height} pixels exceeds srlib.imageio.MAX_PIXELS "
                        f"({MAX_PIXELS:,}); refusing a possible decompression bomb")
                if min_size is not None and min(width, height) < min_size:
                    raise ImageError(
                        f"{path}: {width}x{height} pixels is too small, "
                        f"both sides must be at least {min_size}")
                im.load()
                return _to_array(im, mode, path)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: refusing a possible decompression bomb ({_first_line(exc)})") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image file Pillow can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: truncated or corrupt image data ({_first_line(exc)})") from exc


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


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 (H, W), (H, W, 3) or (H, W, 4) array; the format follows the suffix.

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
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"{path}: unknown image suffix {path.suffix!r} (use .png, .bmp, .jpg, ...)")

    def save(f: BinaryIO) -> None:
        try:
            Image.fromarray(image).save(f, format=image_format)
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
