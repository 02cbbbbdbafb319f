"""Pinned CPU arithmetic: the same training, bit for bit, on any x86-64 machine with AVX2.

Training amplifies the last bit of every rounding, and the libraries under PyTorch and NumPy
choose their kernels, and so their rounding, by the processor they find:

- ATen, PyTorch's own kernels, is compiled for SSE, AVX2 and AVX-512 and picks by CPU;
  ``ATEN_CPU_CAPABILITY=avx2`` fixes the AVX2 build (the width of its vectorised sums).
- oneDNN, which runs PyTorch's CPU convolutions, generates its kernels at run time from the
  instruction set, cache sizes and thread count it detects, and offers no setting that makes
  two processors agree. Pinned processes turn it off (and NNPACK, which also picks by CPU), so
  convolutions run as ATen's im2col followed by a matrix product.
- MKL computes those matrix products (and ``srlib.resample``'s) with kernels chosen by
  processor and vendor. Its conditional numerical reproducibility mode
  ``MKL_CBWR=COMPATIBLE`` runs one SSE2 code path with fixed blocking on every Intel and AMD
  processor, for a fixed number of threads.
- NumPy dispatches its ufuncs (``exp``, ``log``, ``sin``...) to AVX-512 variants where it
  can; ``NPY_DISABLE_CPU_FEATURES`` keeps them at x86-64-v3 (AVX2).
- NumPy's own BLAS (OpenBLAS, behind its ``@``) picks kernels by CPU as well, but for the
  small products srlib does with it (colour conversions) its Haswell, SkylakeX and Zen kernels
  give the same bits (checked by forcing ``OPENBLAS_CORETYPE``), so it is left alone.
- Threads: a sum split over threads is added in another order, and MKL's reproducible mode
  holds for a fixed thread count, so pinned processes use exactly two (every machine the book
  targets has two cores; one with a single core runs the same two threads, only slower), and
  ``MKL_DYNAMIC=FALSE`` stops MKL from choosing fewer.

The environment variables act only when set before the libraries load: ``python -m
srlib.portable CMD ...`` runs CMD with them (the Makefile runs papermill and pytest so), and
``pin()`` does the part that lives inside a process. What it costs in speed and the check
that it works are in ``benchmarks/bench_portable.py``. GPUs and other architectures
are not covered: there the chapters' own assertions, with stated tolerances, do the checking.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "MKL_DYNAMIC": "FALSE",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}
"""Variables read by ATen, MKL and NumPy when they first load."""


def environment_pinned() -> bool:
    """Whether this process was started with every variable of ``ENVIRONMENT``."""
    return all(os.environ.get(name) == value for name, value in ENVIRONMENT.items())


THREADS = 2
"""Threads of a pinned process, whatever the machine has."""


def pin() -> None:
    """Pin this process: ``THREADS`` torch threads and convolutions that avoid oneDNN and NNPACK.
    Variables of ``ENVIRONMENT`` not yet set are set too; ATen and MKL still read them if
    they have not computed anything yet, NumPy only at its import."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    torch.set_num_threads(THREADS)
    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)


@contextmanager
def native_kernels(threads: int | None = None) -> Iterator[None]:
    """oneDNN and NNPACK back on inside the block, on ``threads`` threads if given: for timing
    what a user's machine runs, never for numbers that are compared across machines."""
    before = torch.backends.mkldnn.enabled, torch.backends.nnpack.set_flags(True)[0], torch.get_num_threads()
    torch.backends.mkldnn.enabled = True
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before[0]
        torch.backends.nnpack.set_flags(before[1])
        torch.set_num_threads(before[2])


def fingerprint(iterations: int = 4) -> dict[str, str]:
    """A short hash of each network's weights after ``iterations`` training steps on generated
    line art, and of its output: equal fingerprints, equal arithmetic. Compare two machines'
    with ``python -m srlib.portable --fingerprint``."""
    from . import samples
    from .inference import upscale
    from .training import TrainConfig, train

    images = samples.line_art_train(2, size=(96, 128))
    runs = {"srcnn": (3, {}), "fsrcnn": (3, {}), "espcn": (3, {}), "vdsr": (2, {"depth": 5, "width": 16}),
            "spvdsr": (2, {})}
    prints = {}
    for name, (scale, options) in runs.items():
        config = TrainConfig(model=name, scale=scale, options=options, iterations=iterations, patch_size=12,
                             batch_size=16, patches_per_image=8)
        with tempfile.TemporaryDirectory() as out:
            model = train(config, out, train_images=images, progress=False).model
        digest = hashlib.sha256()
        for tensor in model.state_dict().values():
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        digest.update(np.ascontiguousarray(upscale(images[0][1][:40, :48], model)).tobytes())
        prints[name] = digest.hexdigest()[:12]
    return prints


def main(argv: list[str] | None = None) -> None:
    """``python -m srlib.portable CMD [ARGS...]``: run CMD with ``ENVIRONMENT`` set;
    ``--fingerprint``: print this machine's fingerprint (run it under the first form)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--fingerprint"]:
        started_pinned = environment_pinned()
        pin()
        print(" ".join(f"{name}={value}" for name, value in fingerprint().items()),
              "(pinned)" if started_pinned else "(started without the pinned environment)")
        return
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m srlib.portable CMD [ARGS...]  (runs CMD with "
              + " ".join(f"{k}={v!r}" for k, v in ENVIRONMENT.items()) + ")\n"
              "       python -m srlib.portable --fingerprint  (hashes of short trainings)")
        raise SystemExit(0 if argv else 2)
    os.environ.update(ENVIRONMENT)
    try:
        os.execvp(argv[0], argv)
    except OSError as err:
        print(f"srlib.portable: cannot run {argv[0]}: {err.strerror}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
