"""Benchmark image sets: where they live, what they hold, how to fetch them, LR/HR pairs.

Every set is a folder ``<data_root()>/<name>`` of original high-resolution images
(``Set5/baby_GT.bmp``, ``BSD100/101085.png``, ...). ``DATASETS`` records, for each set,
its role and, where srlib knows them, the exact files (name, sha256, size, public URL),
read from ``datasets.json``. ``download`` fetches such a set and checks every byte;
``fetch`` downloads whichever of a chapter's sets are missing, with a progress bar (what a
chapter does on Colab); ``load_set`` reads a set; ``make_pair`` builds the protocol's LR
input from an HR image.
"""
import hashlib
import http.client
import json
import os
import urllib.request
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from . import resample
from .imageio import ImageError, atomic_write, read_image

ENV_VAR = "SRLIB_DATA"
DEFAULT_ROOT = Path("~/.cache/srlib/data")
# Training sets made of registered ones: "291", VDSR's (Kim et al. 2016), is T91 and BSD200.
COMBINED = {"291": ("T91", "BSD200")}
IMAGE_SUFFIXES = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".webp"}


class DatasetNotFound(FileNotFoundError):
    """A benchmark set that is not on disk; the message says how to get it."""


class DownloadError(OSError):
    """A download that failed or whose bytes do not match the registry; nothing was kept."""


@dataclass(frozen=True)
class DataFile:
    """One file of a set, with what its bytes must hash to and where to fetch them."""
    name: str
    sha256: str
    size: int
    url: str


@dataclass(frozen=True)
class Dataset:
    """A benchmark set. ``files`` is empty when srlib has no verified file list for it:
    such a set is fetched by hand from ``source`` (an archive or the page linking it)."""
    name: str
    role: str  # "test", "train" or "train/valid"
    description: str
    source: tuple[str, ...]
    files: tuple[DataFile, ...]


def _read_registry() -> dict[str, Dataset]:
    """Build ``DATASETS`` from the JSON file shipped next to this module."""
    raw = json.loads(Path(__file__).with_name("datasets.json").read_text(encoding="utf-8"))
    return {name: Dataset(name=name, role=entry["role"], description=entry["description"],
                          source=tuple(entry["source"]),
                          files=tuple(DataFile(**f) for f in entry["files"]))
            for name, entry in raw.items()}


DATASETS: dict[str, Dataset] = _read_registry()


def data_root() -> Path:
    """The folder holding one sub-folder per set: $SRLIB_DATA, else ~/.cache/srlib/data."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_ROOT).expanduser()


def _lookup(name: str) -> Dataset | None:
    """The registered set called ``name`` (case-insensitive), or None."""
    by_lower = {key.lower(): dataset for key, dataset in DATASETS.items()}
    return by_lower.get(name.lower())


def missing(names: Sequence[str]) -> list[str]:
    """The registered sets among ``names`` that ``data_root()`` lacks, or lacks files of
    (present files are not re-hashed: a cheap check before deciding what to run)."""
    absent = []
    for name in names:
        dataset = _lookup(name)
        if dataset is None:
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
        folder = data_root() / dataset.name
        if not folder.is_dir() or not all((folder / f.name).is_file() for f in dataset.files):
            absent.append(dataset.name)
    return absent


def load_set(name_or_dir: str | os.PathLike, *, min_size: int | None = None) -> list[tuple[str, np.ndarray]]:
    """Read a set as [(file stem, uint8 image)] sorted by file name.

    A registered name (Set5, BSD100, ...) is looked up under ``data_root()`` and must hold
    every registered file (the name wins over a folder so named: write ``./Set5`` for
    that); anything else is taken as a folder of images. Grey images stay
    (H, W); colour images are (H, W, 3). ``min_size`` is passed on to ``read_image``.
    """
    dataset = _lookup(name_or_dir) if isinstance(name_or_dir, str) else None
    if dataset is not None:
        folder = data_root() / dataset.name
        if not folder.is_dir():
            raise DatasetNotFound(
                f"{dataset.name} not found in {folder}: set {ENV_VAR} to the folder that holds "
                f"{dataset.name}/, or run `srlib download {dataset.name}`")
        if dataset.files:
            paths = [folder / f.name for f in dataset.files]
            missing = [p.name for p in paths if not p.is_file()]
            if missing:
                raise DatasetNotFound(
                    f"{dataset.name} in {folder} lacks {len(missing)} of its {len(paths)} files "
                    f"(e.g. {missing[0]}); run `srlib download {dataset.name}`")
        else:
            paths = _image_files(folder)
    else:
        folder = Path(name_or_dir)
        if not folder.is_dir():
            raise DatasetNotFound(
                f"{name_or_dir}: neither a known dataset ({', '.join(DATASETS)}) nor a folder")
        paths = _image_files(folder)
    if not paths:
        raise DatasetNotFound(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return [(path.stem, _read_opaque(path, min_size)) for path in sorted(paths, key=lambda p: p.name)]


def _image_files(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, ignoring hidden ones (e.g. temporaries)."""
    return [p for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]


def _read_opaque(path: Path, min_size: int | None) -> np.ndarray:
    """Read a benchmark image as grey or RGB; an alpha channel is accepted only if opaque."""
    image = read_image(path, min_size=min_size)
    if image.ndim == 3 and image.shape[2] == 4:
        if (image[..., 3] != 255).any():
            raise ImageError(f"{path}: has transparent pixels; a benchmark image must be opaque")
        image = image[..., :3]
    return image


def fetch(names: Sequence[str], *, base_url: str | None = None) -> list[Path]:
    """Download the sets among ``names`` that ``data_root()`` lacks (once: present sets are
    not fetched again), showing the bytes as they arrive; returns every set's folder."""
    absent = missing(names)
    total = sum(entry.size for name in absent for entry in DATASETS[name].files)
    with tqdm(total=total, unit="B", unit_scale=True, desc=", ".join(absent) or "data",
              disable=not absent) as bar:
        for name in absent:
            download(name, base_url=base_url, progress=bar.update)
    return [data_root() / _lookup(name).name for name in names]


def download(name: str, root: str | os.PathLike | None = None, *, base_url: str | None = None,
             progress: Callable[[int], object] | None = None) -> Path:
    """Fetch a registered set into ``<root>/<name>`` (root defaults to ``data_root()``).

    Every file is checked against the registry's size and sha256 before it is moved into
    place; a file that fails the check is refused with ``DownloadError`` and leaves
    nothing behind. Files already present and intact are kept. ``base_url`` replaces the
    registry's URLs by ``<base_url>/<file name>`` (a mirror, or a local test server);
    ``progress(n)`` is told of every n bytes received. Returns the set's folder.
    """
    dataset = _lookup(name)
    if dataset is None:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    folder = Path(root if root is not None else data_root()).expanduser() / dataset.name
    if not dataset.files:
        raise ValueError(
            f"{dataset.name} has no verified file list in srlib; get it by hand from "
            f"{' and '.join(dataset.source)} and put its images in {folder}")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for entry in dataset.files:
            target = folder / entry.name
            if target.is_file() and _is_intact(target, entry):
                continue
            url = f"{base_url.rstrip('/')}/{entry.name}" if base_url else entry.url
            _fetch(url, target, entry, progress)
    except BaseException:
        if created:
            with suppress(OSError):
                folder.rmdir()  # only succeeds when nothing was fetched
        raise
    return folder


def _is_intact(path: Path, entry: DataFile) -> bool:
    """Whether the file on disk has the registered size and sha256."""
    if path.stat().st_size != entry.size:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest() == entry.sha256


def _fetch(url: str, target: Path, entry: DataFile, progress: Callable[[int], object] | None = None) -> None:
    """Stream ``url`` into a temporary file beside ``target``, verify it, then move it in."""

    def stream(out) -> None:
        digest, size = hashlib.sha256(), 0
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                while chunk := response.read(1 << 16):
                    size += len(chunk)
                    if size > entry.size:
                        raise DownloadError(f"{url}: longer than the expected {entry.size} bytes; refused")
                    digest.update(chunk)
                    out.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, DownloadError):
                raise
            raise DownloadError(f"{url}: download failed ({str(exc) or type(exc).__name__})") from exc
        if size != entry.size:
            raise DownloadError(f"{url}: got {size} of {entry.size} bytes (truncated); refused")
        if digest.hexdigest() != entry.sha256:
            raise DownloadError(f"{url}: sha256 {digest.hexdigest()[:16]}... differs from the "
                                f"registered {entry.sha256[:16]}... (corrupted); refused")

    atomic_write(target, stream)


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom and right edges so both sides are multiples of ``scale`` (protocol step 1)."""
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, not {scale!r}")
    scale = int(scale)
    height, width = image.shape[:2]
    if height < scale or width < scale:
        raise ValueError(f"a {height}x{width} image is smaller than the scale {scale}")
    return image[: height - height % scale, : width - width % scale]


def make_pair(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's (LR, HR): modcrop the HR image, then MATLAB-bicubic shrink it by ``scale``."""
    hr = modcrop(hr, scale)
    return resample.imresize(hr, 1 / int(scale)), hr
