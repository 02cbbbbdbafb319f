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
import importlib
import os

# Large tensors in transparent huge pages: a fresh 64 MB image otherwise costs ~16,000 page
# faults, measured as half of a 2048^2 resize's time here. Read once, when torch first
# allocates, so it applies only where srlib is imported before torch; numerics are unchanged.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"
_MODULES = ("resample", "color", "metrics", "data", "samples", "imageio", "models", "training",
            "inference", "video", "results", "reproduce", "resident", "sprint", "plots", "portable", "cli")


def __getattr__(name: str):
    """``srlib.resample`` and the like work after a bare ``import srlib`` (imported on first use)."""
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'srlib' has no attribute {name!r}")

