"""The book's whole paper-scale reproduction as one command of minutes on one GPU: ``srlib sprint``.

    srlib sprint --pack images.tar                 # here: the images, one archive (<= 60 MB)
    srlib sprint --images images.tar --out DIR     # there: train, score, time; DIR.tar.gz back

Every network of the book is trained (``RUNS``: SRCNN 9-5-5, FSRCNN and ESPCN at x2/x3/x4, VDSR
20x64 as one network on x2/x3/x4 mixed, SP-VDSR 5x8 and a deep SP-VDSR 20x64 at x2/x3/x4) with the
data resident on the device (``srlib.resident``), several runs at once in worker processes so that
small networks do not leave the GPU idle. The wall-clock budget (``--minutes``) is shared out by
each run's ``weight``; each run turns its seconds into a number of steps from its own measured
step rate, then follows the fast recipe (one half-cosine) over them. Before the runs, short paired
runs decide TF32, channels-last and bfloat16: an option is used only if it leaves SP-VDSR x2's Set5
PSNR within ``SAME_DB``. Then every network is scored under the protocol on Set5, Set14 and BSD100
and timed on 2160p output frames. DIR holds ``sprint.json`` (every run's configuration, curve,
steps, scores, frames per second, with provenance, the paired checks and the GPU utilisation
sampled during training) and ``runs/<run>/`` (``weights.pt`` and ``history.json``, as ``srlib
train`` writes them: ``scripts/ship_weights.py`` ships one), packed as ``DIR.tar.gz``.

Nothing is chosen on a test set: Set5 validates, the final network of each run is scored. The same
command with ``--tiny`` runs every stage on a few steps, on any device (the tests run it on a CPU).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import tarfile
import threading
import time
from queue import Empty
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.multiprocessing as mp
from PIL import Image

from . import data, inference, reproduce, resident, results, training
from .imageio import atomic_write

SETS = ("T91", "BSD200", "Set5", "Set14", "BSD100")
TEST_SETS = ("Set5", "Set14", "BSD100")
MANIFEST = "MANIFEST.json"
SAME_DB = 0.05  # a speed option is kept when SP-VDSR x2's Set5 PSNR moves less than this
FRAME = (2160, 3840)  # output frames timed: 2160p from 1080p at x2


@dataclass(frozen=True)
class SprintRun:
    """One training run of the sprint; ``weight`` is its share of the training time."""
    key: str
    model: str
    scale: int
    data: str
    patch: int
    batch: int
    weight: float
    options: dict = field(default_factory=dict)
    lr: float | None = None
    recipe: str | None = None
    rescale: tuple[float, ...] = ()
    mix: tuple[int, ...] = ()
    patches_per_image: int = 64

    def config(self) -> training.TrainConfig:
        return training.TrainConfig(model=self.model, scale=self.scale, options=dict(self.options), data=self.data,
                                    patch_size=self.patch, batch_size=self.batch, rescale=self.rescale,
                                    mix_scales=self.mix, recipe=self.recipe, lr=self.lr, iterations=1,
                                    patches_per_image=self.patches_per_image)


def _runs() -> list[SprintRun]:
    runs = []
    for s in (2, 3, 4):
        runs += [
            SprintRun(f"srcnn955-x{s}", "srcnn", s, "291", {2: 17, 3: 11, 4: 8}[s], 128, 1.0,
                      {"variant": "9-5-5"}, lr=1e-3),
            SprintRun(f"fsrcnn-x{s}", "fsrcnn", s, "291", {2: 16, 3: 11, 4: 8}[s], 128, 1.0,
                      rescale=(0.9, 0.8, 0.7, 0.6)),
            SprintRun(f"espcn-x{s}", "espcn", s, "T91", 17, 64, 0.7),
            SprintRun(f"spvdsr-x{s}", "spvdsr", s, "291", 24, 64, 0.7),
            SprintRun(f"spvdsr20x64-x{s}", "spvdsr", s, "291", 24, 64, 2.0, {"depth": 20, "width": 64}, lr=2e-4),
        ]
    runs.append(SprintRun("vdsr-x234", "vdsr", 2, "291", 41, 64, 6.0, lr=2e-4, recipe="spvdsr", mix=(2, 3, 4)))
    return runs


RUNS = _runs()
"""The plan. Adam everywhere with the recipes' layer-wise rates; VDSR and the deep SP-VDSR at
2e-4 (Adam at 1e-3 is unstable for 20 plain layers), VDSR on x2/x3/x4 patches mixed as its paper."""


# --- the images, one archive ----------------------------------------------------------------------

def pack(out: str | os.PathLike, root: str | os.PathLike | None = None, sets: Sequence[str] = SETS) -> dict:
    """Write ``sets`` (under ``root``, default ``data.data_root()``) as one tar: JPEG files as
    they are, every other image as lossless WebP (a third smaller than PNG), and a manifest of
    each image's shape and pixel SHA-256, checked when the archive is read."""
    root = Path(root) if root is not None else data.data_root()
    manifest = {}
    with tarfile.open(out, "w") as tar:
        for name in sets:
            for path in data._image_files(root / name):
                pixels = data._read_opaque(path, None)
                if path.suffix.lower() in (".jpg", ".jpeg"):
                    payload, member = path.read_bytes(), f"{name}/{path.stem}.jpg"
                else:
                    buffer = io.BytesIO()
                    Image.fromarray(pixels).convert("RGB").save(buffer, "WEBP", lossless=True, quality=100, method=6)
                    payload, member = buffer.getvalue(), f"{name}/{path.stem}.webp"
                manifest[member] = {"shape": list(pixels.shape), "sha256": hashlib.sha256(pixels.tobytes()).hexdigest()}
                _add(tar, member, payload)
        _add(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
    return manifest


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def unpack(archive: str | os.PathLike) -> dict[str, list[tuple[str, np.ndarray]]]:
    """The sets of a ``pack`` archive as {set: [(stem, uint8 image)]}, each image checked
    against the manifest; a damaged or altered image is one ValueError line."""
    sets: dict[str, list[tuple[str, np.ndarray]]] = {}
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile(MANIFEST).read())
        for member, expected in manifest.items():
            pixels = np.asarray(Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB"))
            if len(expected["shape"]) == 2:
                pixels = np.ascontiguousarray(pixels[..., 0])
            if hashlib.sha256(pixels.tobytes()).hexdigest() != expected["sha256"]:
                raise ValueError(f"{archive}: {member} does not decode to the pixels it was packed from")
            folder, stem = member.split("/")
            sets.setdefault(folder, []).append((Path(stem).stem, pixels))
    return sets


# --- one worker's runs ------------------------------------------------------------------------------

def _training_images(sets: dict, name: str) -> list:
    return [image for part in data.COMBINED.get(name, (name,)) for image in sets[part]]


def _set_options(options: dict) -> None:
    """TF32 on or off for this process's matrix products and convolutions (CUDA only)."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(options.get("tf32"))


def _one_run(run: SprintRun, seconds: float, sets: dict, device: torch.device, options: dict,
             cache: dict, tiny: bool, out: Path) -> dict:
    """Train ``run`` for about ``seconds`` of this worker's time, score it, time it, save it."""
    started = time.perf_counter()
    _set_options(options)
    if tiny:
        run = replace(run, batch=4, patches_per_image=2)
    config = run.config()
    key = (run.data, run.scale, run.patch, run.rescale, run.mix)
    if key not in cache:
        cache[key] = resident.ResidentPatches(_training_images(sets, run.data), run.scale, run.patch, device=device,
                                              rescale=run.rescale, mix=run.mix,
                                              patches_per_image=run.patches_per_image)
    patches = cache[key]
    val = training.validation_pairs(sets["Set5"], run.scale)
    rate = resident.steps_per_second(patches, run.batch, config, steps=2 if tiny else 30,
                                     channels_last=bool(options.get("channels_last")))
    left = seconds - (time.perf_counter() - started)
    iterations = 3 if tiny else max(10, int(rate * left * 0.9))
    trained = resident.train(config, patches, iterations, val_pairs=val, val_every=0 if tiny else 50,
                             bf16=bool(options.get("bf16")), channels_last=bool(options.get("channels_last")))
    model = trained.model
    found = {"run": asdict(run), "options": options, "steps_per_second": rate, "iterations": trained.iterations,
             "diverged": trained.diverged,
             "training_seconds": trained.seconds, "patches_seen": trained.iterations * run.batch,
             "history": trained.history, "scores": {}, "fps": {}}
    scales = run.mix or (run.scale,)
    for scale in scales:
        network = model if scale == model.scale else _at_scale(model, scale)
        found["scores"][f"x{scale}"] = {name: _brief(reproduce.score(network, _small(sets[name], tiny), scale))
                                        for name in TEST_SETS}
        frame = (48 * scale, 64 * scale) if tiny else FRAME
        lr_frame = (frame[0] // scale, frame[1] // scale)
        found["fps"][f"x{scale}"] = {
            "output_frame": list(frame),
            "fp32": inference.frames_per_second(network, lr_frame, device=device, repeats=1 if tiny else 5),
            "bf16": (inference.frames_per_second(network, lr_frame, device=device, bf16=True, repeats=5)
                     if device.type == "cuda" else None)}
    # a run folder as `srlib train` writes it, so scripts/ship_weights.py can ship it as it ships those
    folder = out / "runs" / run.key
    folder.mkdir(parents=True, exist_ok=True)
    info = {**training.provenance(device), "sprint_options": options}
    inference.save_weights(folder / "weights.pt", model, metadata={
        "training_data": run.data, "validation_data": "Set5", "iterations": trained.iterations,
        "recipe": "srlib sprint: resident data, cosine over the steps", "provenance": info})
    history = {"provenance": info, "config": {**asdict(config), "iterations": trained.iterations},
               "wall_time": trained.seconds, "iterations": trained.iterations,
               "epochs": len(trained.history), "history": trained.history}
    atomic_write(folder / training.HISTORY, lambda f: f.write(json.dumps(training._finite_or_none(history)).encode()))
    found["wall_seconds"] = time.perf_counter() - started
    return found


def _at_scale(model, scale: int):
    """The mixed-scale VDSR at another scale: the same weights, a network built for ``scale``."""
    other = type(model)(scale, **model.options).to(next(model.parameters()).device)
    other.load_state_dict(model.state_dict())
    return other.eval()


def _small(images: list, tiny: bool) -> list:
    """Test images; in ``tiny`` mode two, cropped, so the pipeline runs in seconds."""
    return [(n, image[:96, :96]) for n, image in images[:2]] if tiny else images


def _brief(score: dict) -> dict:
    return {"psnr": score["psnr"], "ssim": score["ssim"], "images": len(score["images"])}


def _worker(queue: list, archive: str, device: str, tiny: bool, out: str, results_queue) -> None:
    """A worker process: its share of the runs, one after another, on one device. A failure is
    sent back as that run's result, so one broken run never loses the others."""
    torch.set_num_threads(1)
    cache: dict = {}
    try:
        sets = unpack(archive)
    except Exception as exc:
        sets, broken = None, f"{type(exc).__name__}: {exc}"
    for run, seconds, options in queue:
        try:
            if sets is None:
                raise RuntimeError(broken)
            found = _one_run(run, seconds, sets, torch.device(device), options, cache, tiny, Path(out))
        except Exception as exc:
            found = {"run": asdict(run), "error": f"{type(exc).__name__}: {exc}"}
        results_queue.put((run.key, found))


def share(runs: Sequence[SprintRun], workers: int, seconds: float, options: dict) -> list[list[tuple]]:
    """Runs dealt to workers, heaviest first to the least loaded, as (run, seconds, options);
    a run's seconds are its weight's part of its worker's time, so all end near ``seconds``."""
    queues: list[list[SprintRun]] = [[] for _ in range(workers)]
    for run in sorted(runs, key=lambda r: -r.weight):
        min(queues, key=lambda q: sum(r.weight for r in q)).append(run)
    return [[(run, seconds * run.weight / sum(r.weight for r in queue), options) for run in queue]
            for queue in queues if queue]


def _in_parallel(queues: list[list[tuple]], archive, device, tiny: bool, out: Path) -> dict:
    """Each queue in its own process (spawned: CUDA needs it); {run key: its results}. A
    process that dies leaves an error as the result of each run it had not reported."""
    context = mp.get_context("spawn")
    results_queue = context.Queue()
    processes = [context.Process(target=_worker, args=(q, str(archive), str(device), tiny, str(out), results_queue))
                 for q in queues]
    for process in processes:
        process.start()
    owner = {run.key: i for i, q in enumerate(queues) for run, _, _ in q}
    found: dict = {}
    while len(found) < len(owner):
        try:
            key, result = results_queue.get(timeout=2)
            found[key] = result
            continue
        except Empty:
            pass
        for i, process in enumerate(processes):
            if not process.is_alive():
                for key in [k for k, w in owner.items() if w == i and k not in found]:
                    found[key] = {"run": asdict(next(r for r, _, _ in queues[i] if r.key == key)),
                                  "error": f"its worker process ended (exit code {process.exitcode})"}
    for process in processes:
        process.join()
    return found


class _Utilisation:
    """GPU utilisation sampled every second by ``nvidia-smi`` while a stage runs (none without it)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        while not self._stop.wait(1.0):
            try:
                self.samples.append(float(subprocess.run(query, capture_output=True, text=True,
                                                         timeout=5).stdout.split()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return

    def __enter__(self) -> "_Utilisation":
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def summary(self) -> dict | None:
        return {"mean_percent": float(np.mean(self.samples)), "samples": len(self.samples)} if self.samples else None


def paired_checks(archive, device: torch.device, seconds: float, tiny: bool, out: Path) -> dict:
    """SP-VDSR x2 trained for ``seconds`` with each speed option off and on, side by side: an
    option is kept when Set5 PSNR moves less than ``SAME_DB`` (bf16 and TF32: CUDA only)."""
    probe = next(r for r in RUNS if r.key == "spvdsr-x2")
    variants = {"baseline": {}, "tf32": {"tf32": True}, "bf16": {"bf16": True}, "channels_last": {"channels_last": True}}
    queues = [[(replace(probe, key=f"check-{name}"), seconds, option)] for name, option in variants.items()]
    found = _in_parallel(queues, archive, device, tiny, out)
    failed = {key: run["error"] for key, run in found.items() if "error" in run}
    if failed:
        raise RuntimeError(f"paired checks failed: {failed}")
    base = found["check-baseline"]["scores"]["x2"]["Set5"]["psnr"]
    checks = {}
    for name in ("tf32", "bf16", "channels_last"):
        psnr = found[f"check-{name}"]["scores"]["x2"]["Set5"]["psnr"]
        checks[name] = {"set5_psnr": psnr, "baseline_set5_psnr": base, "difference_db": psnr - base,
                        "kept": abs(psnr - base) < SAME_DB and (device.type == "cuda" or name == "channels_last")}
    for stale in (out / "runs").glob("check-*"):
        shutil.rmtree(stale)
    return checks


def sprint(archive: str | os.PathLike, out: str | os.PathLike, *, minutes: float = 8.0, workers: int = 6,
           device: str | None = None, runs: Sequence[SprintRun] = RUNS, tiny: bool = False) -> Path:
    """The whole sprint (see the module's text); returns the ``.tar.gz`` of ``out``."""
    started = time.perf_counter()
    out, device = Path(out), training.resolve_device(device)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    checks_seconds = 2.0 if tiny else 20.0
    checks = paired_checks(archive, device, checks_seconds, tiny, out)
    options = {name: True for name, check in checks.items() if check["kept"]}
    # what is left, less a margin for scoring, timing and packing (measured: about a minute)
    seconds = max(1.0, minutes * 60 - (time.perf_counter() - started) - (5 if tiny else 75))
    with _Utilisation() as utilisation:
        found = _in_parallel(share(runs, workers, seconds, options), archive, device, tiny, out)
    record = {"provenance": {**training.provenance(device), "wall_seconds": time.perf_counter() - started,
                             "minutes_budget": minutes, "workers": workers, "tiny": tiny},
              "paired_checks": checks, "options": options, "gpu_utilisation": utilisation.summary(),
              "runs": [found[r.key] for r in runs]}
    atomic_write(out / "sprint.json", lambda f: f.write(json.dumps(training._finite_or_none(record), indent=1).encode()))
    packed = out.with_name(out.name + ".tar.gz")
    with tarfile.open(packed, "w:gz") as tar:
        tar.add(out, arcname=out.name)
    return packed
