"""The paper-scale runs behind the leaderboard: every network at ×2, ×3 and ×4 with its
paper's recipe, trained, scored on the benchmark sets, timed and shipped as pretrained weights.

``RUNS`` is the whole plan, one ``TrainConfig`` per run, built from one line per network in
``NETWORKS``. ``run(name, out_root)`` carries one run through: train (resuming from
``out_root/<name>``), evaluate the final network under the protocol on Set5, Set14, BSD100
(and Urban100 when it is under the data root), time it on a 2160p output frame, then write
``results/leaderboard/<name>.json`` (scores, history, training time, throughput,
provenance), the weights ``srlib/pretrained/<name>.pt`` and their manifest entry. Set5
is the only validation set; the final network is evaluated, nothing is selected on a test set.
``PUBLISHED`` holds the papers' numbers the leaderboard shows beside ours.

The budgets are meant for one data-centre GPU; ``srlib reproduce --dry-run`` prints them
with the number of iterations and the convolution work each implies. ``bf16`` and
``channels_last`` are off in every run: switch one on only after training that run for a
short budget on the GPU with and without it and finding the same Set5 PSNR.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import data, inference, models, results, training
from .imageio import atomic_write

SCALES = (2, 3, 4)
LEADERBOARD_DIR = results.RESULTS_DIR / "leaderboard"
DEFAULT_OUT = results.ROOT / "_build" / "reproduce"
TEST_SETS = ("Set5", "Set14", "BSD100")
OPTIONAL_TEST_SETS = ("Urban100",)  # scored when <data root>/Urban100 holds images
FRAME = (2160, 3840)  # output frame timed: 2160p, from a 1080p input at ×2, 720p at ×3, 540p at ×4
CPU_TIMING_MACS = 50e9  # a frame costing more is timed on the CPU as a crop of about this much work
TRAINING_IMAGES = {"291": 291, "T91": 91}  # images in each training set, for the iteration estimate
TRAINING_DATA = {"291": "291 (T91 + BSD200)", "T91": "T91"}


# --- the plan -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Network:
    """One network's recipe at every scale: all but the LR patch side is shared by the scales."""
    key: str
    label: str
    model: str
    options: dict
    paper: str | None  # the network's name in PUBLISHED, None for the article's own
    data: str
    patch: dict[int, int]  # scale -> LR patch side
    batch_size: int
    patches_per_image: int
    epochs: int
    rescale: tuple[float, ...] = ()
    recipe: str | None = None
    note: str = ""


NETWORKS = (
    Network("srcnn", "SRCNN 9-5-5", "srcnn", {"variant": "9-5-5"}, "srcnn", "291", {2: 17, 3: 11, 4: 8}, 128, 128, 300,
            note="HR patches ≈ 33 px and batch 128 as the paper; Adam 1e-4 / 1e-5 (last layer), constant; 291 "
                 "stands in for the paper's ImageNet (T91 is too small for 9-5-5)"),
    Network("fsrcnn", "FSRCNN (56, 12, 4)", "fsrcnn", {}, "fsrcnn", "291", {2: 16, 3: 11, 4: 8}, 128, 32, 200,
            rescale=(0.9, 0.8, 0.7, 0.6),
            note="every image also shrunk by 0.9-0.6 as the paper; Adam 1e-3 (convolutions) / 1e-4 (deconvolution), "
                 "constant; 291 stands in for T91 + General-100; each scale from scratch (the paper fine-tuned ×2 "
                 "and ×4 from ×3)"),
    Network("espcn", "ESPCN", "espcn", {}, "espcn", "T91", {2: 17, 3: 17, 4: 17}, 64, 128, 400,
            note="HR patches 17r × 17r on the paper's 91 images; Adam 1e-3, last layer 10× slower, decaying "
                 "2% an epoch to 1/100 (the paper's 0.01 → 0.0001)"),
    Network("vdsr", "VDSR 20×64", "vdsr", {}, "vdsr", "291", {2: 20, 3: 14, 4: 10}, 64, 128, 80,
            note="the paper's recipe: HR patches ≈ 41 px, batch 64, SGD 0.1 ÷ 10 every 20 epochs, momentum 0.9, "
                 "weight decay 1e-4, adjustable clipping θ = 0.01, 80 epochs; one network per scale (the paper "
                 "mixed the scales)"),
    Network("spvdsr", "SP-VDSR 5×8", "spvdsr", {"depth": 5, "width": 8}, None, "291", {2: 24, 3: 16, 4: 12},
            64, 32, 500,
            note="the article's network on the protocol's bicubic pairs; Adam 1e-3 decaying 0.5% an epoch, "
                 "at its 1e-4 floor from epoch 460"),
    Network("spvdsr-deep", "SP-VDSR 20×64", "spvdsr", {"depth": 20, "width": 64}, None, "291", {2: 20, 3: 14, 4: 10},
            64, 32, 500,
            note="the deep variant the article leaves as future work, on VDSR's data and patches with SP-VDSR's "
                 "recipe (VDSR's SGD 0.1 diverges on it within ten steps)"),
)


@dataclass(frozen=True)
class Run:
    """One entry of the plan: a network at one scale with its full training configuration."""
    name: str
    network: Network
    config: training.TrainConfig

    @property
    def label(self) -> str:
        return f"{self.network.label} ×{self.config.scale}"


def _config(network: Network, scale: int) -> training.TrainConfig:
    """The TrainConfig of ``network`` at ``scale``: validated on Set5 and checkpointed about 60 times."""
    every = max(1, network.epochs // 60)
    return training.TrainConfig(
        model=network.model, scale=scale, options=dict(network.options), data=network.data, val="Set5",
        patch_size=network.patch[scale], patches_per_image=network.patches_per_image,
        batch_size=network.batch_size, rescale=network.rescale, epochs=network.epochs, recipe=network.recipe,
        seed=0, val_every=every, checkpoint_every=every, bf16=False, channels_last=False)


RUNS: dict[str, Run] = {f"{n.key}-x{s}": Run(f"{n.key}-x{s}", n, _config(n, s)) for n in NETWORKS for s in SCALES}
"""Run name (``<network key>-x<scale>``) -> Run, networks in NETWORKS order, scales ascending."""


def select(patterns: Sequence[str] = ()) -> list[str]:
    """The run names matching any of ``patterns`` (names or shell patterns like ``vdsr-*``), in
    plan order; all runs for no pattern. A pattern matching nothing is a ValueError."""
    for pattern in patterns:
        if not fnmatch.filter(RUNS, pattern):
            raise ValueError(f"no run matches {pattern!r}; runs: {', '.join(RUNS)}")
    return [name for name in RUNS if not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def estimated_iterations(config: training.TrainConfig) -> int:
    """Iterations the budget allows, counting every image of the training set as big enough
    for a patch (a few small ones may be left out)."""
    if config.data not in TRAINING_IMAGES:
        raise ValueError(f"no image count for training set {config.data!r}; known: {', '.join(TRAINING_IMAGES)}")
    images = TRAINING_IMAGES[config.data]
    pairs = images * (1 + len(config.rescale)) * max(1, len(config.mix_scales))
    per_epoch = math.ceil(pairs * config.patches_per_image / config.batch_size)
    return min(n for n in (config.epochs and config.epochs * per_epoch, config.iterations) if n)


def training_macs(config: training.TrainConfig, iterations: int) -> float:
    """Convolution multiply-accumulates of ``iterations`` training steps: three times the
    forward pass (forward, gradient of the input, gradient of the weights)."""
    network = models.build(config.model, config.scale, **config.options)
    hr_pixels = config.hr_patch ** 2
    return 3 * models.macs_per_pixel(network, (16, 16)) * hr_pixels * config.batch_size * iterations


def describe(names: Sequence[str]) -> str:
    """The runs as a table: network, scale, data, patch, batch, budget, and each recipe's note."""
    lines = [f"{'run':<16} {'network':<22} {'data':<5} {'LR patch':>8} {'batch':>5} {'patches/img':>11} {'epochs':>6}"]
    notes = {}
    for name in names:
        run, c = RUNS[name], RUNS[name].config
        lines.append(f"{name:<16} {run.label:<22} {c.data:<5} {c.patch_size:>8} {c.batch_size:>5} "
                     f"{c.patches_per_image:>11} {c.epochs:>6}")
        notes.setdefault(run.network.label, run.network.note)
    return "\n".join(lines + [""] + [f"{label}: {note}" for label, note in notes.items()])


def plan(names: Sequence[str], out_root: str | os.PathLike = DEFAULT_OUT,
         results_dir: str | os.PathLike = LEADERBOARD_DIR) -> str:
    """What ``srlib reproduce`` would do, without training: per run its budget, the iterations
    it implies, the training work in PMAC (10^15 multiply-accumulates) and its state (done,
    resumes at iteration N, or new)."""
    lines = [f"{'run':<16} {'budget':>11} {'≈ iterations':>12} {'work PMAC':>9}  state"]
    total = 0.0
    for name in names:
        config = RUNS[name].config
        iterations = estimated_iterations(config)
        work = training_macs(config, iterations) / 1e15
        total += work
        history = Path(out_root) / name / training.HISTORY
        if is_done(name, results_dir):
            state = "done"
        elif history.exists():
            state = f"resumes at iteration {json.loads(history.read_text())['iterations']:,}"
        else:
            state = "new"
        lines.append(f"{name:<16} {config.epochs:>4} epochs {iterations:>12,} {work:>9.2f}  {state}")
    lines.append(f"{len(names)} runs, {total:.1f} PMAC of training in all; checkpoints in {out_root}, "
                 f"results in {results_dir}")
    return "\n".join(lines)


# --- one run --------------------------------------------------------------------------------

Images = list[tuple[str, np.ndarray]]


def load_test_sets() -> dict[str, Images]:
    """Set5, Set14 and BSD100 (DatasetNotFound if one is missing), and Urban100 when its
    folder under the data root holds images."""
    sets = {name: data.load_set(name) for name in TEST_SETS}
    for name in OPTIONAL_TEST_SETS:
        folder = data.data_root() / name
        if folder.is_dir():
            sets[name] = data.load_set(folder)
    return sets


def score(model: nn.Module, images: Images, scale: int) -> dict:
    """Protocol PSNR/SSIM of ``model`` on (name, HR image) pairs: means and one row per image."""
    rows = []
    for name, image in images:
        lr, hr = data.make_pair(image, scale)
        rows.append({"name": name, **inference.protocol_scores(model, lr, hr)})
    return {"psnr": float(np.mean([r["psnr"] for r in rows])), "ssim": float(np.mean([r["ssim"] for r in rows])),
            "images": rows}


def throughput(model: nn.Module, frame: tuple[int, int] = FRAME) -> dict:
    """Frames per second for an output ``frame`` (h, w): on CUDA when present (float32 and
    bfloat16 autocast), and on the CPU, where a frame costing more than CPU_TIMING_MACS is
    timed as a crop of the same shape and the rate scaled by the pixel ratio."""
    scale = model.scale
    lr_frame = (frame[0] // scale, frame[1] // scale)
    found: dict = {"output_frame": list(frame), "input_frame": list(lr_frame), "cuda": None}
    if torch.cuda.is_available():
        found["cuda"] = {"device": torch.cuda.get_device_name(0),
                         "fps_fp32": inference.frames_per_second(model, lr_frame, device="cuda"),
                         "fps_bf16": inference.frames_per_second(model, lr_frame, device="cuda", bf16=True)}
    frame_macs = models.macs_per_pixel(model, (16, 16)) * frame[0] * frame[1]
    shrink = min(1.0, math.sqrt(CPU_TIMING_MACS / frame_macs))
    side = inference.min_input_size(model)
    timed = (max(side, round(lr_frame[0] * shrink)), max(side, round(lr_frame[1] * shrink)))
    fps = inference.frames_per_second(model, timed, device="cpu", repeats=1)
    found["cpu"] = {"device": results.device_name(), "threads": torch.get_num_threads(), "timed_input": list(timed),
                    "fps": fps * timed[0] * timed[1] / (lr_frame[0] * lr_frame[1])}
    return found


def _relative(path: Path) -> str:
    """``path`` relative to the repository root when inside it, else absolute."""
    path = path.resolve()
    return str(path.relative_to(results.ROOT)) if path.is_relative_to(results.ROOT) else str(path)


def _write_json(path: Path, payload: dict) -> None:
    """Replace ``path`` by ``payload`` as indented JSON in one step (temporary file + rename)."""
    atomic_write(path, lambda f: f.write((json.dumps(payload, indent=1, ensure_ascii=False) + "\n").encode()))


def register(entry: dict, manifest: str | os.PathLike) -> None:
    """Put ``entry`` into a pretrained manifest: it replaces the entry of the same name, else
    it is appended; every other entry is kept as it is. A missing manifest starts from the
    shipped one's description with no entries. The file is read and atomically replaced in
    one short step, so entries others added before it survive."""
    manifest = Path(manifest)
    source = manifest if manifest.exists() else inference.MANIFEST
    document = json.loads(source.read_text(encoding="utf-8"))
    if source != manifest:
        document["entries"] = []
    if set(entry) != set(document["schema"]):
        raise ValueError(f"a manifest entry needs exactly the fields {', '.join(document['schema'])}")
    entries = document["entries"]
    same = [i for i, e in enumerate(entries) if e.get("name") == entry["name"]]
    if same:
        entries[same[0]] = entry
    else:
        entries.append(entry)
    _write_json(manifest, document)


def is_done(name: str, results_dir: str | os.PathLike = LEADERBOARD_DIR) -> bool:
    """Whether ``name`` already has its results file."""
    return (Path(results_dir) / f"{name}.json").exists()


def run(name: str, out_root: str | os.PathLike = DEFAULT_OUT, *, results_dir: str | os.PathLike = LEADERBOARD_DIR,
        pretrained_dir: str | os.PathLike = inference.PRETRAINED_DIR, overrides: dict | None = None,
        train_images: Images | None = None, val_images: Images | None = None,
        test_sets: dict[str, Images] | None = None, frame: tuple[int, int] = FRAME, progress: bool = True) -> Path:
    """Train, evaluate, time and ship the run ``name``; returns its results file.

    Training resumes from ``out_root/<name>``. The results file goes to ``results_dir``, the
    weights and manifest entry to ``pretrained_dir``. For tests and smoke runs: ``overrides``
    replaces TrainConfig fields (e.g. {"epochs": None, "iterations": 2}), ``train_images`` /
    ``val_images`` replace the run's sets, ``test_sets`` replaces the benchmark sets (it
    must name a "Set5"), ``frame`` the timed output frame; the results file records them
    under ``profile`` "custom".
    """
    if name not in RUNS:
        raise ValueError(f"unknown run {name!r}; runs: {', '.join(RUNS)}")
    config = replace(RUNS[name].config, **(overrides or {}))
    config.check()
    sets = load_test_sets() if test_sets is None else test_sets
    if "Set5" not in sets:
        raise ValueError("the test sets must include Set5 (the manifest records its PSNR)")
    custom = bool(overrides) or any(x is not None for x in (train_images, val_images, test_sets)) or frame != FRAME
    outcome = training.train(config, Path(out_root) / name, train_images=train_images, val_images=val_images,
                             progress=progress)
    model, history = outcome.model, outcome.history
    training_time = history[-1]["wall_time"] if history else 0.0
    scores = {set_name: score(model, images, config.scale) for set_name, images in sets.items()}
    speed = throughput(model, frame)

    results_dir, pretrained_dir = Path(results_dir), Path(pretrained_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    pretrained_dir.mkdir(parents=True, exist_ok=True)
    result_path, weights_path = results_dir / f"{name}.json", pretrained_dir / f"{name}.pt"
    data_text = "images given to run()" if train_images is not None else TRAINING_DATA.get(config.data, config.data)
    training_data = f"{data_text}, bicubic x{config.scale} (MATLAB imresize)"
    last = history[-1] if history else {}
    inference.save_weights(weights_path, model, metadata={
        "run": name, "training_data": training_data, "validation_data": config.val, "val_psnr": outcome.val_psnr,
        "psnr_set5": scores["Set5"]["psnr"], "epochs": last.get("epoch"), "iterations": last.get("iteration"),
        "recipe": config.recipe or config.model, "seed": config.seed, "results": _relative(result_path)})
    record = {
        "run": name, "label": RUNS[name].label, "network": RUNS[name].network.key, "model": config.model,
        "scale": config.scale, "options": json.loads(json.dumps(model.options)),
        "parameters": models.count_parameters(model), "macs_per_pixel": models.macs_per_pixel(model, (16, 16)),
        "recipe_note": RUNS[name].network.note, "config": asdict(config), "overrides": overrides or {},
        "training_data": training_data,
        "training": {"wall_time_s": training_time, "epochs": last.get("epoch"), "iterations": last.get("iteration"),
                     "provenance": outcome.provenance, "history": history},
        "scores": scores, "throughput": speed,
        "weights": {"file": _relative(weights_path),
                    "sha256": hashlib.sha256(weights_path.read_bytes()).hexdigest()},
        "provenance": results.provenance("custom" if custom else "full", asdict(config), training_time),
    }
    _write_json(result_path, record)
    register({"name": name, "model": config.model, "scale": config.scale, "options": record["options"],
              "file": weights_path.name, "sha256": record["weights"]["sha256"], "training_data": training_data,
              "psnr_set5": scores["Set5"]["psnr"], "results": _relative(result_path)},
             pretrained_dir / inference.MANIFEST.name)
    return result_path


def load_results(results_dir: str | os.PathLike = LEADERBOARD_DIR) -> dict[str, dict]:
    """Every results file of the leaderboard, by run name (none for a missing folder)."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(results_dir).glob("*.json"))}


# --- the papers' numbers --------------------------------------------------------------------

SOURCES = {
    "vdsr-t3": "Kim et al. 2016 (VDSR), Table 3",
    "fsrcnn-91": "Dong et al. 2016 (FSRCNN), trained on the 91 images",
    "fsrcnn-191": "FSRCNN trained on T91 + General-100, as quoted by later papers",
    "espcn-91": "Shi et al. 2016 (ESPCN), 91 images; LR by Gaussian blur + subsampling, not this protocol",
}
"""Where each published number comes from: each entry names its paper and table."""


@dataclass(frozen=True)
class Published:
    """One published score: a network's PSNR (and SSIM when given) on a set at a scale."""
    network: str  # "bicubic" or a Network.paper name
    dataset: str
    scale: int
    psnr: float
    ssim: float | None
    source: str  # key of SOURCES


_T3 = {  # VDSR's Table 3: set -> method -> ((PSNR, SSIM) at ×2, ×3, ×4)
    "Set5": {"bicubic": ((33.66, .9299), (30.39, .8682), (28.42, .8104)),
             "srcnn": ((36.66, .9542), (32.75, .9090), (30.48, .8628)),
             "vdsr": ((37.53, .9587), (33.66, .9213), (31.35, .8838))},
    "Set14": {"bicubic": ((30.24, .8688), (27.55, .7742), (26.00, .7027)),
              "srcnn": ((32.42, .9063), (29.28, .8209), (27.49, .7503)),
              "vdsr": ((33.03, .9124), (29.77, .8314), (28.01, .7674))},
    "BSD100": {"bicubic": ((29.56, .8431), (27.21, .7385), (25.96, .6675)),
               "srcnn": ((31.36, .8879), (28.41, .7863), (26.90, .7101)),
               "vdsr": ((31.90, .8960), (28.82, .7976), (27.29, .7251))},
    "Urban100": {"bicubic": ((26.88, .8403), (24.46, .7349), (23.14, .6577)),
                 "srcnn": ((29.50, .8946), (26.24, .7989), (24.52, .7221)),
                 "vdsr": ((30.76, .9140), (27.14, .8279), (25.18, .7524))},
}

PUBLISHED: tuple[Published, ...] = (
    *(Published(method, dataset, scale, psnr, ssim, "vdsr-t3")
      for dataset, methods in _T3.items() for method, cells in methods.items()
      for scale, (psnr, ssim) in zip(SCALES, cells)),
    Published("fsrcnn", "Set5", 2, 36.94, None, "fsrcnn-91"),
    Published("fsrcnn", "Set5", 3, 33.06, None, "fsrcnn-91"),
    Published("fsrcnn", "Set5", 4, 30.55, None, "fsrcnn-91"),
    Published("fsrcnn", "Set14", 2, 32.54, None, "fsrcnn-91"),
    Published("fsrcnn", "Set14", 3, 29.37, None, "fsrcnn-91"),
    Published("fsrcnn", "Set14", 4, 27.50, None, "fsrcnn-91"),
    Published("fsrcnn", "BSD100", 2, 31.53, None, "fsrcnn-191"),
    Published("fsrcnn", "BSD100", 4, 26.98, None, "fsrcnn-191"),
    Published("fsrcnn", "Urban100", 2, 29.88, None, "fsrcnn-191"),
    Published("espcn", "Set5", 3, 32.55, None, "espcn-91"),
)
"""The papers' PSNR (dB) / SSIM under the protocol of srlib.metrics (chapter 3), at most one per
(network, set, scale): a paper's own number where it gives one, else a later paper's quote."""

PUBLISHED_TRAINING = {"vdsr": "≈ 4 h on a Titan Z, one network for ×2, ×3 and ×4 (VDSR paper)",
                      "espcn": "3 h on a K2 GPU, 91 images (ESPCN paper)"}
"""The training times the papers state, by network."""

TARGETS = {"srcnn-x2": 36.5, "fsrcnn-x2": 36.9, "espcn-x2": 36.8, "vdsr-x2": 37.4}
"""Set5 ×2 PSNR (dB) each reproduction should reach; the deep SP-VDSR should reach VDSR's."""


CPU_TARGETS = {("fsrcnn", 2): 36.94, ("fsrcnn", 3): 33.06, ("fsrcnn", 4): 30.55, ("espcn", 3): 32.55,
               ("srcnn", 2): 36.34, ("srcnn", 3): 32.39, ("srcnn", 4): 30.09, ("vdsr", 2): 37.2}
"""Set5 PSNR (dB) the networks trained on this project's CPU aim at: the papers' numbers for
FSRCNN and ESPCN on the 91 images and for SRCNN 9-1-5 (Dong et al. 2016, TPAMI, 91 images),
and 37.2 for VDSR (its paper's 37.53 took 4 GPU-hours). SP-VDSR aims at 1 dB above Lanczos-3."""


def published(network: str, dataset: str, scale: int) -> Published | None:
    """The published number for a network (or "bicubic") on a set at a scale, or None."""
    return next((p for p in PUBLISHED if (p.network, p.dataset, p.scale) == (network, dataset, scale)), None)
