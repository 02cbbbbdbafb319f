"""Host work per training step: srlib.training's host-cut batches against resident patches.

The GPU sprint (issue: the whole reproduction in minutes on one H200) needs steps whose host
work is near zero, since a GPU finishes a small network's step in well under a millisecond. Per
network, on T91 (or 291) at its sprint patch size and batch, one run prints side by side:
  host cut    srlib.training.PatchDataset: a Python loop slices each patch, then a copy;
  resident    srlib.resident.ResidentPatches.cut: two gathers on the device;
  copied      bytes the host path copies to the device per batch (the resident path: none);
  ops/step    operators a whole resident step (cut, forward, backward, Adam) dispatches, counted
              on PyTorch's meta device: the host's only work per step is launching these, and
              none waits for the device (tests/test_sprint.py), so on a GPU it runs ahead.
Timing a step on the meta device would not measure the host's work on a GPU: meta kernels are
partly Python. Asserts nothing.  python benchmarks/bench_resident.py [--steps 50]
"""
import argparse
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from srlib import resident, sprint, training


def per_call(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


class Count(TorchDispatchMode):
    """Counts the operators dispatched while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = training.load_images("T91")
    print(f"T91, {args.steps} batches each, one thread")
    for key in ("espcn-x3", "fsrcnn-x3", "spvdsr-x2", "srcnn955-x3", "vdsr-x234"):
        run = next(r for r in sprint.RUNS if r.key == key)
        host = training.PatchDataset(images, run.scale, run.patch, mix=run.mix, patches_per_image=run.patches_per_image)
        plan = host._plan(0, 0)[:run.batch]
        on_device = resident.ResidentPatches(images, run.scale, run.patch, device="cpu", mix=run.mix,
                                             patches_per_image=run.patches_per_image)
        rows = on_device.plan(0, 0)[:run.batch]
        t_host = per_call(lambda: host._cut(plan), args.steps)
        t_resident = per_call(lambda: on_device.cut(rows), args.steps)
        for name, value in vars(on_device).items():
            if isinstance(value, torch.Tensor):
                setattr(on_device, name, value.to("meta"))
        config = run.config()
        model = resident._build(config, torch.device("meta"), channels_last=False)
        optimizer, _, clip = training.RECIPES[config.recipe or config.model](model, config.lr, config.hr_patch ** 2)
        forward = model.refine if run.mix else model
        meta_rows = rows.to("meta")
        resident.step(forward, optimizer, clip, *on_device.cut(meta_rows))  # Adam's state exists from here
        with Count() as count:
            resident.step(forward, optimizer, clip, *on_device.cut(meta_rows))
        copied = sum(t.numel() * t.element_size() for t in host._cut(plan))
        print(f"{key:>12} batch {run.batch:>3}: host cut {1e3 * t_host:5.2f} ms, copied {copied / 1e6:4.2f} MB | "
              f"resident cut {1e3 * t_resident:5.2f} ms on this CPU, copied 0 | ops/step {count.ops}")


if __name__ == "__main__":
    main()
