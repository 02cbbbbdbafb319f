"""What the pinned CPU arithmetic of srlib.portable buys and costs, measured in one run.

1. Equality. Two machines are emulated on this one by the settings a processor without
   AVX-512 would make its libraries choose (oneDNN and MKL capped at AVX2, ATen's AVX2 build,
   NumPy without AVX-512) and a different thread count. Each "machine" trains every network
   briefly (``srlib.portable.fingerprint``) in a fresh process, unpinned and pinned. Unpinned,
   the fingerprints differ wherever this CPU has more than AVX2; pinned, they must be equal.
2. Cost. The training step of each network (batch 32, 24x24 LR patches), unpinned with
   torch's default threads (one per core) against pinned (srlib.portable.THREADS), the two
   taking turns in fresh processes; prints the seconds per step and the ratio.
"""
import json
import os
import subprocess
import sys
import time

from srlib import portable

OTHER_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OMP_NUM_THREADS": "1"}
NETWORKS = {"srcnn": (3, {}), "fsrcnn": (3, {}), "espcn": (3, {}), "vdsr": (2, {"depth": 20, "width": 64}),
            "spvdsr": (2, {})}
ROUNDS = 3
FINGERPRINT = "import json; from srlib.portable import fingerprint; print(json.dumps(fingerprint()))"


def run(code: str, machine: dict, pinned: bool) -> str:
    """Run ``code`` in a fresh Python with this CPU's settings or the emulated ones."""
    env = {k: v for k, v in os.environ.items() if k not in portable.ENVIRONMENT and k not in OTHER_CPU}
    env.update(machine)
    prefix = "from srlib import portable; portable.pin(); " if pinned else ""
    if pinned:
        env.update(portable.ENVIRONMENT)
    out = subprocess.run([sys.executable, "-c", prefix + code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def step_seconds(pinned: bool) -> dict[str, float]:
    """Seconds per training step of each network, in a fresh process."""
    code = f"""
import contextlib, json, time
from srlib import models, samples
from srlib.training import PatchDataset, RECIPES, _step
images = samples.line_art_train(4)
times = {{}}
for name, (scale, options) in {NETWORKS!r}.items():
    batches = list(PatchDataset(images, scale, 24).batches(32, 0, 0))[:4]
    model = models.build(name, scale, **options)
    optimizer, _, clip = RECIPES[name](model, None, (24 * scale) ** 2)
    for i, (lr, hr) in enumerate(batches):
        if i == 1:
            start = time.perf_counter()
        _step(model, optimizer, clip, contextlib.nullcontext(), lr, hr)
    times[name] = (time.perf_counter() - start) / (len(batches) - 1)
print(json.dumps(times))
"""
    return json.loads(run(code, {}, pinned))


def main() -> None:
    print("1. Fingerprints of short trainings (srlib.portable.fingerprint), each in a fresh process")
    prints = {}
    for pinned in (False, True):
        for label, machine in (("this CPU", {}), ("emulated AVX2 CPU, 1 core", OTHER_CPU)):
            prints[label, pinned] = run(FINGERPRINT, machine, pinned)
            print(f"  {'pinned  ' if pinned else 'unpinned'} {label:30s} {prints[label, pinned]}")
    for pinned in (False, True):
        a, b = (json.loads(prints[label, pinned]) for label in ("this CPU", "emulated AVX2 CPU, 1 core"))
        same = [name for name in a if a[name] == b[name]]
        print(f"  {'pinned' if pinned else 'unpinned'}: {len(same)} of {len(a)} networks equal on both machines")

    print(f"2. Seconds per training step (batch 32, 24x24 LR patches; unpinned: {os.cpu_count()} threads, "
          f"pinned: {portable.THREADS}), best of {ROUNDS} alternating runs")
    best = {False: {}, True: {}}
    for _ in range(ROUNDS):
        for pinned in (False, True):
            for name, seconds in step_seconds(pinned).items():
                best[pinned][name] = min(best[pinned].get(name, float("inf")), seconds)
    for name in NETWORKS:
        print(f"  {name:7s} unpinned {best[False][name] * 1000:8.1f} ms  pinned {best[True][name] * 1000:8.1f} ms"
              f"  pinned/unpinned {best[True][name] / best[False][name]:.2f}x")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
