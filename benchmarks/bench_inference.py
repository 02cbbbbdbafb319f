"""Inference speed of the five networks on one 1920×1080 luma frame (×2 → 3840×2160).

Target (issue 4): SP-VDSR(5×8) at most 150 ms per frame on 2 CPU cores. Prints, per
network, the weights, MACs per output pixel and CPU milliseconds per frame for a plain
``model(lr)`` in PyTorch's default layout (NCHW), then for ``srlib.inference.upscale_luma``
(which runs the weights channels-last on a CPU) in one pass and over 512×512 LR tiles read
with a ``receptive_field`` halo (cache-sized tiles help the narrow networks most); on a
CUDA device also frames per second in float32 and bfloat16 autocast. VDSR, too slow for a
whole frame on a CPU, is timed on a 480×270 crop (480×135 with --quick) and scaled to the
frame's pixel count (marked ≈); tiny crops would mostly time thread hand-offs. Wall time
is the best of a few runs; CPU time, summed over threads, is shown next to it because on
a shared machine it is the steadier of the two. Asserts nothing.
"""
import argparse

import torch

from srlib.inference import best_time, frames_per_second, upscale_luma
from srlib.models import SRNetwork, build, count_parameters, macs_per_pixel

NETWORKS = [("spvdsr", {}), ("espcn", {}), ("fsrcnn", {}), ("srcnn", {}), ("vdsr", {})]
FRAME, CROP, QUICK_CROP = (1080, 1920), (270, 480), (135, 480)
CPU_FULL_FRAME_MACS = 200e9  # above this, time a crop on the CPU


def cpu_ms(model: SRNetwork, size: tuple[int, int], how: str, repeats: int) -> tuple[float, float]:
    """Best wall and CPU milliseconds for a whole frame: ``how`` is "NCHW" (a plain
    ``model(lr)``), "one pass" or "512 tiles" (``upscale_luma``)."""
    lr = torch.rand(1, 1, *size)
    run = {"NCHW": lambda: model(lr), "one pass": lambda: upscale_luma(model, lr, tile=None),
           "512 tiles": lambda: upscale_luma(model, lr, tile=512)}[how]
    with torch.inference_mode():
        wall, cpu = best_time(run, repeats)
    factor = FRAME[0] * FRAME[1] / (size[0] * size[1])
    return 1e3 * wall * factor, 1e3 * cpu * factor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one timed run each, a smaller crop for the slow networks")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("networks", nargs="*", help="which networks to time (default: all five)")
    args = parser.parse_args()
    known = [name for name, _ in NETWORKS]
    if not set(args.networks) <= set(known):
        parser.error(f"unknown network in {args.networks}; choose from {', '.join(known)}")
    repeats = 1 if args.quick else 3
    torch.backends.cudnn.benchmark = True
    print(f"1920x1080 luma x{args.scale}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print("CPU: best wall ms per frame (CPU ms summed over threads)")
    print(f"{'network':>8} {'weights':>8} {'MACs/px':>9} |"
          f" {'model(lr), NCHW':>18} | {'upscale_luma':>18} | {'+ 512 tiles':>18}"
          + (" | CUDA fp32 fps | CUDA bf16 fps" if torch.cuda.is_available() else ""))
    for name, options in NETWORKS:
        if args.networks and name not in args.networks:
            continue
        torch.manual_seed(0)
        model = build(name, args.scale, **options).eval()
        macs = macs_per_pixel(model)
        full = macs * FRAME[0] * FRAME[1] * args.scale ** 2 <= CPU_FULL_FRAME_MACS
        size, mark = (FRAME, " ") if full else (QUICK_CROP if args.quick else CROP, "≈")
        line = f"{name:>8} {count_parameters(model):>8,} {macs:>9,.0f}"
        for how in ("NCHW", "one pass", "512 tiles"):
            wall, cpu = cpu_ms(model, size, how, repeats if full else 1)
            line += f" | {mark}{wall:>7,.0f} ({cpu:>7,.0f})"
        if torch.cuda.is_available():
            fps = [frames_per_second(model, FRAME, device="cuda", bf16=bf16, repeats=repeats) for bf16 in (False, True)]
            line += f" | {fps[0]:>13.1f} | {fps[1]:>13.1f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
