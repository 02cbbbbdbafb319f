"""How fast each network trains on this CPU, and what makes it faster (issue: a training step
that uses the CPU).

For every network at the scale its paper trains first, one run prints side by side:
patches per second of a full training step (patch cutting, forward, MSE, backward, the
recipe's optimizer step) in PyTorch's default layout and in channels-last, on 1 and on 2
threads, and under ``torch.compile`` where asked (``--compile``); the FLOP/s that implies
(3 x the forward's convolution MACs x 2: the backward costs about twice the forward) beside
the rate of a large float32 matrix product on as many threads (what the CPU sustains); the
share of a step spent cutting patches; and one Set5 validation against one T91 epoch of
training (16 patches per image), which sets how often a run can afford to validate.

"before" is what ``srlib train`` did by default (default layout, every epoch validated);
the fastest column is what the recipes use. Asserts nothing: run it on an idle machine.

    python benchmarks/bench_training_step.py [--compile] [--steps 20]
"""
import argparse
import time

import torch

from srlib import data, models, samples, training

# (label, model, scale, options, LR patch side, batch, mixed scales)
NETWORKS = [("SRCNN 9-1-5 x3", "srcnn", 3, {}, 11, 32, ()),
            ("FSRCNN x3", "fsrcnn", 3, {}, 17, 32, ()),
            ("ESPCN x3", "espcn", 3, {}, 17, 32, ()),
            ("SP-VDSR 5x8 x2", "spvdsr", 2, {}, 24, 32, ()),
            ("VDSR 20x64 x2/3/4", "vdsr", 2, {}, 41, 16, (2, 3, 4))]


def images() -> list:
    """T91 when the data are present (what the runs train on), else generated line art."""
    try:
        return data.load_set("T91")
    except (FileNotFoundError, ValueError):
        return samples.line_art_train(32)


def gemm_flops(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an n x n float32 matrix product on ``threads`` threads: the sustainable peak."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def step_rate(dataset, model_name, scale, options, batch, mix, *, channels_last, threads, compile_, steps):
    """(patches per second of whole training steps, seconds per step spent cutting patches)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = models.build(model_name, scale, **options).to(memory_format=fmt)
    optimizer, _, clip = training.RECIPES[model_name](model, None, dataset.patch_size ** 2)
    forward = model.refine if mix else model
    if compile_:
        forward = torch.compile(forward)
    no_autocast = torch.autocast("cpu", enabled=False)
    batches = dataset.batches(batch, seed=0, epoch=0)
    cut = 0.0

    def one_step() -> None:
        nonlocal cut
        start = time.perf_counter()
        lr, hr = next(batches)
        cut += time.perf_counter() - start
        training._step(forward, optimizer, clip, no_autocast, lr.to(memory_format=fmt), hr.to(memory_format=fmt))

    for _ in range(3):  # warm-up: allocations, kernel choices, compilation
        one_step()
    cut = 0.0
    seconds = _seconds(lambda: [one_step() for _ in range(steps)])
    return steps * batch / seconds, cut / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes per network)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per setting")
    args = parser.parse_args()
    train_images = images()
    print(f"{training.provenance(torch.device('cpu'))['device']}, torch {torch.__version__}, "
          f"{len(train_images)} training images")
    peak = {t: gemm_flops(t) for t in (1, 2)}
    print(f"float32 2048^3 matrix product: {peak[1] / 1e9:.0f} GFLOP/s on 1 thread, {peak[2] / 1e9:.0f} on 2")
    settings = [("default", False, 1, False), ("default", False, 2, False),
                ("channels-last", True, 1, False), ("channels-last", True, 2, False)]
    if args.compile:
        settings.append(("channels-last+compile", True, 2, True))
    try:
        set5 = data.load_set("Set5")
    except (FileNotFoundError, ValueError):
        set5 = None
    for label, name, scale, options, patch, batch, mix in NETWORKS:
        dataset = training.PatchDataset(train_images, scale, patch, mix=mix)
        model = models.build(name, scale, **options)
        hr_side = dataset.patch_size * dataset.stride
        flop_per_patch = 3 * 2 * models.macs_per_pixel(model) * hr_side ** 2
        print(f"\n{label}: batch {batch} of {dataset.patch_size}x{dataset.patch_size} input patches, "
              f"{flop_per_patch / 1e6:.1f} MFLOP per patch (fwd + bwd)")
        rates = {}
        for setting, channels_last, threads, compile_ in settings:
            try:
                rate, cut = step_rate(dataset, name, scale, options, batch, mix, channels_last=channels_last,
                                      threads=threads, compile_=compile_, steps=args.steps)
            except Exception as exc:  # torch.compile needs a working C++ toolchain
                print(f"  {setting:>22} {threads} thr: failed ({str(exc).splitlines()[0][:80]})")
                continue
            rates[setting, threads] = rate
            flops = rate * flop_per_patch
            print(f"  {setting:>22} {threads} thr: {rate:8.0f} patches/s, {flops / 1e9:5.1f} GFLOP/s "
                  f"= {flops / peak[threads]:4.0%} of the GEMM rate, cutting {cut * 1e3:.2f} ms/step "
                  f"({cut * rate / batch:.1%} of a step)")
        before = rates.get(("default", 2))
        best_setting = max(rates, key=rates.get)
        print(f"  before (default, 2 threads) {before:.0f} patches/s -> best {best_setting[0]} on "
              f"{best_setting[1]} thread(s) {rates[best_setting]:.0f} patches/s: x{rates[best_setting] / before:.2f}; "
              f"two 1-thread runs side by side: x{2 * rates[best_setting[0], 1] / before:.2f} the patches")
        if set5 is not None and not mix:
            torch.set_num_threads(1)
            pairs = training.validation_pairs(set5, scale)
            seconds = min(_seconds(lambda: training.validate(model, pairs, scale, torch.device("cpu")))
                          for _ in range(2))
            epoch = len(dataset) / rates.get(("channels-last", 1), before)
            print(f"  one Set5 validation {seconds:.2f} s vs one T91 epoch {epoch:.2f} s (1 thread): "
                  f"validating every {max(1, round(10 * seconds / epoch))} epochs keeps it under 10 %")


if __name__ == "__main__":
    main()
