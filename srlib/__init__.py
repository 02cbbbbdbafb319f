"""srlib: the small library behind the book "Machine Learning Super-Resolution".

Modules, each readable on its own:
  resample  FIR kernels and separable resizing, including MATLAB's ``imresize``
  color     RGB <-> YCbCr (studio and full range) and chroma subsampling
  metrics   PSNR and SSIM under the SR papers' evaluation protocol
  data      benchmark sets (Set5, Set14, BSD100, ...), data root, downloads, LR/HR pairs
  samples   embedded images: freely licensed photographs and generated line art
  imageio   reading and writing images with clear errors
  models    the networks: SRCNN, FSRCNN, ESPCN, VDSR and the article's SP-VDSR
  training  patches, the papers' recipes, a resumable and reproducible training loop
  inference weights files and tiled upscaling of real images
  video     upscaling videos frame by frame (PyAV)
  results   results files with provenance, and the ledger of the article's claims
  reproduce the leaderboard's paper-scale runs of every network, and the papers' numbers
  resident  training with the data resident on the device (no host work per step)
  sprint    every network trained, scored and timed in minutes on one GPU (``srlib sprint``)
  plots     figure helpers shared by the chapters
  cli       the ``srlib`` command
"""
import ctypes
import importlib
import sys


def _reuse_freed_memory() -> None:
    """On glibc, serve large blocks from the heap and keep freed ones for the next request.

    glibc gives each block above 128 KB-32 MB a mapping of its own and unmaps it when freed,
    so every new image or activation pays a page fault per 4 KB on first touch. Measured on a
    2-core EPYC: a 2048^2 Lanczos x2 resize, repeated, 97 -> 28-33 ms; a repeated 1080p SP-VDSR
    upscale 0.40 -> 0.25 s. (Transparent huge pages, srlib's earlier cure, stalled the kernel
    on compaction: a first 1080p upscale took 1.2-1.5 s with them, 0.4-0.5 s without.) The
    cost: freed memory returns to the system only at exit or when over 1 GB lies free at the
    heap's top (peak RSS of a 2 MP upscale 0.6 -> 0.8-1.0 GB; of an 81 MP one unchanged, 2.8).
    Numerics are unchanged; on other C libraries (macOS, musl) this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX: no block in its own mapping
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GB free at the heap's top
    except (OSError, AttributeError):  # not glibc
        pass


_reuse_freed_memory()
__version__ = "0.1.0"
_MODULES = ("resample", "color", "metrics", "data", "samples", "imageio", "models", "training",
            "inference", "video", "results", "reproduce", "resident", "sprint", "plots", "portable", "cli")


def __getattr__(name: str):
    """``srlib.resample`` and the like work after a bare ``import srlib`` (imported on first use)."""
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'srlib' has no attribute {name!r}")

