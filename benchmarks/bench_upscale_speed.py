"""`srlib upscale` against a one-line Pillow upscale, side by side in one run.

Targets (the tool issue), on a 1920x1080 RGB PNG x2 to PNG: the whole `srlib upscale` command
with the fastest network (SP-VDSR) at most 1.5x the Pillow LANCZOS command's wall time, and
``inference.upscale`` of the frame with SP-VDSR at most 250 ms on 2 threads. Prints the median
of a few runs of each command, the import time of the command, and the in-process upscale
time split into the network on the luma and the rest (colour work), measured in fresh
processes alternately with oneDNN's own choice of kernels and capped at AVX2 as the command
runs SP-VDSR (``inference.prefer_avx2_for``). Asserts nothing.

    python benchmarks/bench_upscale_speed.py [--runs 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srlib import inference

PILLOW = "from PIL import Image; import sys; Image.open(sys.argv[1]).resize((3840, 2160), Image.LANCZOS).save(sys.argv[2])"


def frame() -> np.ndarray:
    """A 1080p photograph-like frame: smooth colour waves with sensor-like noise."""
    y, x = np.mgrid[0:1080, 0:1920]
    waves = np.stack([128 + 90 * np.sin(x / 37 + c) + 20 * np.cos(y / 23) for c in range(3)], -1)
    return np.clip(waves + np.random.default_rng(0).normal(0, 8, waves.shape), 0, 255).astype(np.uint8)


def wall(command: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def best(fn, runs: int) -> float:
    fn()
    return min(_timed(fn) for _ in range(runs))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def in_process(runs: int, avx2: bool) -> dict:
    """``inference.upscale`` of the frame and the network alone, best of ``runs``, in this process."""
    torch.set_num_threads(2)
    model, image = inference.load_pretrained("spvdsr", 2), frame()
    if avx2 and not inference.prefer_avx2_for(model):
        raise SystemExit("cannot cap oneDNN at AVX2 here (not x86-64, or ONEDNN_MAX_CPU_ISA already set)")
    whole = best(lambda: inference.upscale(image, model), runs)
    luma = torch.rand(1, 1, 1080, 1920)
    network = best(lambda: inference.upscale_luma(model, luma, tile=inference.auto_tile(model)), runs)
    return {"whole": whole, "network": network}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--in-process", choices=["default", "avx2"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        print(json.dumps(in_process(args.runs, args.in_process == "avx2")))
        return
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "hd.png"
        Image.fromarray(frame()).save(source)
        srlib = [sys.executable, "-m", "srlib", "upscale", str(source), "-o", f"{tmp}/srlib.png", "--scale", "2", "--model", "spvdsr", "--force"]
        pillow = [sys.executable, "-c", PILLOW, str(source), f"{tmp}/pillow.png"]
        times = {"srlib": [], "pillow": []}
        for _ in range(args.runs):  # alternating, so a change in load hits both
            times["srlib"].append(wall(srlib))
            times["pillow"].append(wall(pillow))
        # os._exit: the import alone, without the interpreter's teardown (which the command skips)
        imports = statistics.median(wall([sys.executable, "-c", "import srlib.cli, os; os._exit(0)"])
                                    - wall([sys.executable, "-c", "import os; os._exit(0)"]) for _ in range(3))
    ours, theirs = statistics.median(times["srlib"]), statistics.median(times["pillow"])
    print(f"1920x1080 RGB PNG x2 -> PNG, median of {args.runs}: srlib upscale {ours:.2f} s, Pillow LANCZOS "
          f"{theirs:.2f} s, ratio {ours / theirs:.2f} (target <= 1.5); importing srlib.cli {imports:.2f} s")
    env = {key: value for key, value in os.environ.items() if key != "ONEDNN_MAX_CPU_ISA"}
    results = {"default": [], "avx2": []}
    for _ in range(2):  # fresh processes, alternating: oneDNN fixes its kernels at a process's first convolution
        for kind, found in results.items():
            done = subprocess.run([sys.executable, __file__, "--runs", str(args.runs), "--in-process", kind],
                                  check=True, capture_output=True, text=True, env=env)
            found.append(json.loads(done.stdout))
    for kind, label in (("default", "oneDNN's own kernels"), ("avx2", "capped at AVX2, as srlib upscale runs it")):
        whole = min(r["whole"] for r in results[kind])
        network = min(r["network"] for r in results[kind])
        print(f"inference.upscale, SP-VDSR x2 on 2 threads, {label}: {whole * 1e3:.0f} ms (target <= 250): "
              f"network on the luma {network * 1e3:.0f} ms, colour work and the rest {(whole - network) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
