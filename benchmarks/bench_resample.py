"""srlib.resample against Pillow's float path on the same image and kernel, side by side.

Targets: srlib at most half of Pillow's time on one CPU thread (Pillow/srlib >= 2); >= 10x
faster than Pillow on a CUDA device when one is present. On the CPU the two take turns, the
fastest of 15 calls of each counting, so a change in the machine's load hits both. Prints
times and ratios; asserts nothing.

    python benchmarks/bench_resample.py [--threads N]     (default: one thread, as the target)
"""
import argparse
import time

import numpy as np
import torch
from PIL import Image

from srlib.resample import resize

CASES = [("x2 lanczos3", 2.0, "lanczos3", Image.LANCZOS), ("x0.5 bicubic", 0.5, "bicubic", Image.BICUBIC)]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(fn, repeats: int = 5) -> float:
    fn()
    return min(timed(fn) for _ in range(repeats))


def side_by_side(first, second, repeats: int = 15) -> tuple[float, float]:
    """The fastest of ``repeats`` calls of each, taking turns, so a change in load hits both."""
    first(), second()
    times = [(timed(first), timed(second)) for _ in range(repeats)]
    return min(t for t, _ in times), min(t for _, t in times)


def cuda_timed(fn) -> float:
    def synced():
        fn()
        torch.cuda.synchronize()
    return best_of(synced, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    torch.set_num_threads(parser.parse_args().threads)
    image = (np.random.default_rng(0).random((2048, 2048), dtype=np.float32) * 255).astype(np.float32)
    pil = Image.fromarray(image, "F")
    print(f"2048x2048 float32 grey, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for name, scale, kernel, pil_filter in CASES:
        size = (int(2048 * scale),) * 2
        t_pil, t_cpu = side_by_side(lambda: pil.resize(size, pil_filter), lambda: resize(image, scale, kernel=kernel))
        line = f"{name:>13}: Pillow {1e3 * t_pil:7.1f} ms | srlib CPU {1e3 * t_cpu:7.1f} ms  (Pillow/srlib = {t_pil / t_cpu:5.2f}x)"
        if torch.cuda.is_available():
            x = torch.from_numpy(image).cuda()
            t_gpu = cuda_timed(lambda: resize(x, scale, kernel=kernel))
            line += f" | srlib CUDA {1e3 * t_gpu:6.2f} ms  (Pillow/CUDA = {t_pil / t_gpu:6.1f}x)"
        print(line)


if __name__ == "__main__":
    main()
