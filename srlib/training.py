"""Training the SR networks: luma patches, the papers' recipes, and a loop that can be resumed.

The same code runs on a 2-core CPU and on a GPU (CUDA > MPS > CPU). Two options trade
exactness for speed: bfloat16 autocast (CUDA only) and channels-last memory (any device; on
a CPU it trains SP-VDSR and VDSR 1.2-1.5x faster, benchmarks/bench_training.py, with other
rounding than the default layout). A run lives in one folder: it
writes ``checkpoint.pt`` atomically every few epochs and ``history.json`` (the learning
curve with provenance); calling ``train`` again on that folder resumes where it stopped.

Reproducibility rests on one idea: nothing random carries over from one epoch to the next.
Each epoch's patches come from a generator seeded by (seed, epoch), so a run resumed from a
checkpoint sees exactly the batches an uninterrupted run would, and on a CPU ends with
bit-identical weights.
"""
from __future__ import annotations

import copy
import json
import math
import os
import platform
import random
import subprocess
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import __version__, color, data, losses, metrics, models, resample, samples
from .imageio import atomic_write

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"

Images = Sequence[tuple[str, np.ndarray]]


class TrainingDiverged(RuntimeError):
    """The loss became NaN, infinite or exploded, or validation collapsed; the last good
    checkpoint is left on disk."""


# A batch MSE above this is an RMS error of 10x the whole [0, 1] intensity range: a fresh
# network may pass 1 for a step, one that is learning never gets here, one that diverged
# does (VDSR's SGD once reached 2e12).
LOSS_LIMIT = 100.0
# Validation more than this many dB below both the interpolation baseline and the run's best
# so far is a collapse, not noise (a fresh network may start far below the baseline, hence both).
COLLAPSE_DB = 10.0


# --- data -----------------------------------------------------------------------------------

def load_images(name_or_dir: str | os.PathLike) -> list[tuple[str, np.ndarray]]:
    """Training or validation images as [(name, uint8 image)]: "lineart" (the generated
    drawings), "photos" (the bundled photographs), "291" (T91 + BSD200, VDSR's set), a
    registered set such as "T91", or a folder of images."""
    special: dict[str, Callable[[], list[tuple[str, np.ndarray]]]] = {
        "lineart": samples.line_art_train,
        "photos": samples.photographs,
    }
    if isinstance(name_or_dir, str) and name_or_dir in special:
        return special[name_or_dir]()
    if isinstance(name_or_dir, str) and name_or_dir in data.COMBINED:
        return [image for part in data.COMBINED[name_or_dir] for image in data.load_set(part)]
    return data.load_set(name_or_dir)


def luma(image: np.ndarray) -> np.ndarray:
    """Studio-range Y / 255 of a uint8 RGB or grey image, float64 in [0, 1] and not rounded:
    the networks' input and target (grey is treated as R = G = B)."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"training images must be uint8, got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB (H, W, 3) or grey (H, W) image, got shape {array.shape}")
    return color.rgb_to_ycbcr(array, "studio")[..., 0] / 255


def check_degrade(kernel: str) -> str:
    """The name of a degradation: "bicubic" (MATLAB imresize) or a kernel of srlib.resample."""
    if kernel != "bicubic" and kernel not in resample.KERNELS:
        raise ValueError(f"unknown degradation {kernel!r}; use bicubic or one of {', '.join(resample.KERNELS)}")
    return kernel


def degrade(hr_y: np.ndarray, scale: int, kernel: str = "bicubic") -> np.ndarray:
    """Shrink a float HR luma by ``scale``: MATLAB imresize for "bicubic" (the protocol), an
    antialiased resize with that kernel otherwise (SP-VDSR's pairs use "catmull-rom")."""
    if check_degrade(kernel) == "bicubic":
        return resample.imresize(hr_y, 1 / scale)
    return resample.resize(hr_y, 1 / scale, kernel=kernel)


def luma_pair(image: np.ndarray, scale: int, kernel: str = "bicubic") -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) float32 luma of an HR image: modcrop, luma, then ``degrade``."""
    hr = luma(data.modcrop(image, scale))
    return degrade(hr, scale, kernel).astype(np.float32), hr.astype(np.float32)


def interpolated_pair(image: np.ndarray, scale: int, kernel: str = "bicubic") -> tuple[np.ndarray, np.ndarray]:
    """(input, HR) float32 luma for a network that refines an interpolated image (VDSR): the
    LR of ``luma_pair`` upscaled back to HR size with the bicubic kernel VDSR itself uses."""
    lr, hr = luma_pair(image, scale, kernel)
    return resample.resize(lr, scale, kernel="bicubic").astype(np.float32), hr


def _dihedral(patch: np.ndarray, transform: int) -> np.ndarray:
    """One of the 8 symmetries of the square: a rotation by 90° x (t % 4), then a flip if t >= 4."""
    patch = np.rot90(patch, transform % 4)
    return patch[:, ::-1] if transform >= 4 else patch


class PatchDataset:
    """Aligned LR/HR luma patches cut from whole images, drawn afresh every epoch.

    Each image is modcropped, turned into luma and degraded once, whole (so patches see the
    true LR border context). An epoch is ``patches_per_image`` random LR positions in every
    image (LR patch ``patch_size``, HR patch ``patch_size * scale`` at the same place), each
    with one of the 8 dihedral transforms when ``augment``, shuffled; the generator is seeded
    by (seed, epoch). ``rescale`` adds FSRCNN's scale augmentation: every HR image also
    enters shrunk by each factor (MATLAB bicubic), e.g. (0.9, 0.8, 0.7, 0.6). Images
    smaller than one HR patch are left out.

    ``mix`` = (2, 3, 4) gives VDSR's multi-scale training instead: every image enters once
    per scale as an ``interpolated_pair``, so input and target are both at HR size,
    ``patch_size`` counts HR pixels and one batch mixes the scales; ``scale`` is unused.
    """

    def __init__(self, images: Images, scale: int, patch_size: int, *, degrade: str = "bicubic",
                 augment: bool = True, patches_per_image: int = 16, rescale: Sequence[float] = (),
                 mix: Sequence[int] = ()):
        if patch_size < 1 or patches_per_image < 1:
            raise ValueError(f"patch_size and patches_per_image must be positive, got {patch_size} and {patches_per_image}")
        if not all(0 < f < 1 for f in rescale):
            raise ValueError(f"rescale factors must lie between 0 and 1 (exclusive), got {tuple(rescale)}")
        images = list(images)
        images += [(f"{name}@{f:g}", resample.imresize(np.asarray(image), f)) for f in rescale for name, image in images]
        if not all(isinstance(s, int) and s >= 2 for s in mix):
            raise ValueError(f"mix must list integer scales of at least 2, got {tuple(mix)}")
        self.scale, self.patch_size, self.mix = int(scale), int(patch_size), tuple(mix)
        self.augment, self.patches_per_image = augment, int(patches_per_image)
        check_degrade(degrade)
        self.stride = 1 if self.mix else self.scale  # HR pixels per input pixel
        hr_side = self.patch_size * self.stride
        big_enough = [image for _, image in images if min(np.asarray(image).shape[:2]) >= hr_side]
        if not big_enough:
            raise ValueError(f"no training image is at least {hr_side}x{hr_side} pixels "
                             f"(patch size {patch_size} x scale {scale}); use a smaller patch size")
        if self.mix:
            self.pairs = [interpolated_pair(image, s, degrade) for s in self.mix for image in big_enough]
        else:
            self.pairs = [luma_pair(image, self.scale, degrade) for image in big_enough]

    def __len__(self) -> int:
        return len(self.pairs) * self.patches_per_image

    def steps_per_epoch(self, batch_size: int) -> int:
        """Batches per epoch: every patch once, the last batch possibly smaller."""
        return math.ceil(len(self) / batch_size)

    def _plan(self, seed: int, epoch: int) -> np.ndarray:
        """The epoch's patches as rows (image, y, x, transform) in training order."""
        rng = np.random.default_rng([seed, epoch])
        image = np.repeat(np.arange(len(self.pairs)), self.patches_per_image)
        heights = np.array([lr.shape[0] for lr, _ in self.pairs])[image]
        widths = np.array([lr.shape[1] for lr, _ in self.pairs])[image]
        y = rng.integers(0, heights - self.patch_size + 1)
        x = rng.integers(0, widths - self.patch_size + 1)
        transform = rng.integers(0, 8, len(image)) if self.augment else np.zeros(len(image), dtype=np.int64)
        return np.stack([image, y, x, transform], axis=1)[rng.permutation(len(image))]

    def _cut(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        p, s = self.patch_size, self.stride
        lrs, hrs = [], []
        for i, y, x, t in rows.tolist():
            lr, hr = self.pairs[i]
            lrs.append(_dihedral(lr[y:y + p, x:x + p], t))
            hrs.append(_dihedral(hr[y * s:(y + p) * s, x * s:(x + p) * s], t))
        return torch.from_numpy(np.stack(lrs)[:, None].copy()), torch.from_numpy(np.stack(hrs)[:, None].copy())

    def batches(self, batch_size: int, seed: int, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's (input, HR) batches, (N, 1, p, p) and (N, 1, p*s, p*s) float32 (s = 1
        when mixing scales), from batch ``start`` on."""
        plan = self._plan(seed, epoch)
        for first in range(start * batch_size, len(plan), batch_size):
            yield self._cut(plan[first:first + batch_size])

    def draw(self, seed: int, epoch: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """All of one epoch's patches as two tensors."""
        return self._cut(self._plan(seed, epoch))


def make_patches(images: Images, scale: int, patch_size: int, *, degrade: str = "bicubic",
                 augment: bool = True, patches_per_image: int = 16, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One draw of aligned (LR, HR) patch tensors from HR images; the same seed gives the same patches."""
    return PatchDataset(images, scale, patch_size, degrade=degrade, augment=augment,
                        patches_per_image=patches_per_image).draw(seed)


# --- recipes --------------------------------------------------------------------------------

Recipe = Callable[..., tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler, float | None]]


def last_layer(model: nn.Module) -> nn.Module:
    """The network's last convolution or transposed convolution (its reconstruction layer)."""
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no convolution layer")
    return convs[-1]


def _split_last(model: nn.Module, lr: float, last_lr: float) -> list[dict]:
    """Two parameter groups: the last convolution at ``last_lr``, everything else at ``lr``."""
    last = {id(p) for p in last_layer(model).parameters()}
    return [{"params": [p for p in model.parameters() if id(p) not in last], "lr": lr},
            {"params": list(last_layer(model).parameters()), "lr": last_lr}]


def _decay_to_floor(optimizer: torch.optim.Optimizer, gamma: float, floor: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Multiply the learning rates by ``gamma`` every epoch until they reach ``floor`` x their start."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: max(floor, gamma ** epoch))


def _constant(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def srcnn_recipe(model: nn.Module, lr: float | None = None, patch_pixels: int | None = None):
    """SRCNN: 1e-4 for the first layers, 10x lower for the last, constant. The paper's plain
    SGD at these rates needs ~10^8 steps; Adam, as public reimplementations use, far fewer."""
    lr = lr or 1e-4
    optimizer = torch.optim.Adam(_split_last(model, lr, lr / 10))
    return optimizer, _constant(optimizer), None


def fsrcnn_recipe(model: nn.Module, lr: float | None = None, patch_pixels: int | None = None):
    """FSRCNN: 1e-3 for the convolutions, 1e-4 for the deconvolution, constant (Adam)."""
    lr = lr or 1e-3
    optimizer = torch.optim.Adam(_split_last(model, lr, lr / 10))
    return optimizer, _constant(optimizer), None


def espcn_recipe(model: nn.Module, lr: float | None = None, patch_pixels: int | None = None):
    """ESPCN: the last layer 10x slower; the paper lowers 0.01 to 0.0001 (a factor 100) as
    the loss flattens; here Adam from 1e-3, decaying 2% an epoch to 1/100 of the start."""
    lr = lr or 1e-3
    optimizer = torch.optim.Adam(_split_last(model, lr, lr / 10))
    return optimizer, _decay_to_floor(optimizer, 0.98, 0.01), None


def vdsr_recipe(model: nn.Module, lr: float | None = None, patch_pixels: int | None = None):
    """VDSR: SGD, momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 every 20 epochs, and
    adjustable gradient clipping with theta = 0.01 (each step moves a weight by at most theta).

    The paper's loss is half the squared error summed over a patch; srlib's is the mean over
    its pixels, whose gradients are ``patch_pixels / 2`` times smaller (``patch_pixels``: HR
    pixels per patch, the paper's 41 x 41 by default). The learning rate is multiplied and the
    weight decay divided by that factor, so the weights take the paper's steps; ``lr`` is in
    the paper's units."""
    factor = (patch_pixels or 41 * 41) / 2
    optimizer = torch.optim.SGD(model.parameters(), lr=(lr or 0.1) * factor, momentum=0.9, weight_decay=1e-4 / factor)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=20, gamma=0.1), 0.01


def spvdsr_recipe(model: nn.Module, lr: float | None = None, patch_pixels: int | None = None):
    """SP-VDSR: Adam from 1e-3, decaying progressively (0.5% an epoch) to a floor of 1e-4."""
    lr = lr or 1e-3
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return optimizer, _decay_to_floor(optimizer, 0.995, 1e-4 / lr), None


RECIPES: dict[str, Recipe] = {
    "srcnn": srcnn_recipe,
    "fsrcnn": fsrcnn_recipe,
    "espcn": espcn_recipe,
    "vdsr": vdsr_recipe,
    "spvdsr": spvdsr_recipe,
}
"""name -> recipe(model, lr=None, patch_pixels=None) -> (optimizer, per-epoch scheduler, theta
of adjustable gradient clipping or None). ``lr`` replaces the first group's starting rate;
other groups keep their ratio to it. ``patch_pixels`` (HR pixels in a training patch) matters
to VDSR's SGD only: the Adam recipes' steps do not depend on the scale of the loss."""


def cosine(optimizer: torch.optim.Optimizer, epochs: int, floor: float = 0.01) -> torch.optim.lr_scheduler.LambdaLR:
    """The fast schedule: every group's rate follows half a cosine from its start down to
    ``floor`` x the start over ``epochs`` epochs (one decay for the whole run, no plateaus to tune)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / epochs)))


def clip_adjustable(optimizer: torch.optim.Optimizer, theta: float) -> None:
    """VDSR's adjustable gradient clipping: each gradient within +-theta / (its group's lr)."""
    for group in optimizer.param_groups:
        torch.nn.utils.clip_grad_value_(group["params"], theta / group["lr"])


# --- configuration --------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """Everything that defines a training run. Budgets: stop at whichever of ``epochs``,
    ``iterations`` or ``seconds`` (wall clock spent training, validation excluded) comes
    first; give at least one."""
    model: str
    scale: int = 2
    options: dict = field(default_factory=dict)
    data: str | None = None
    val: str | None = None
    patch_size: int = 24
    patches_per_image: int = 16
    batch_size: int = 32
    degrade: str = "bicubic"
    augment: bool = True
    rescale: tuple[float, ...] = ()
    mix_scales: tuple[int, ...] = ()
    epochs: int | None = None
    iterations: int | None = None
    seconds: float | None = None
    recipe: str | None = None
    lr: float | None = None
    schedule: str | None = None
    seed: int = 0
    device: str | None = None
    val_every: int = 1
    checkpoint_every: int = 1
    bf16: bool = False
    channels_last: bool = False
    loss: str = "mse"
    zero_last: bool = False

    def check(self) -> None:
        """Raise ValueError with a one-line message for a configuration that cannot run."""
        if self.model not in models.MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose from {', '.join(models.MODELS)}")
        if (self.recipe or self.model) not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; choose from {', '.join(RECIPES)}")
        if isinstance(self.scale, bool) or not isinstance(self.scale, int) or self.scale < 2:
            raise ValueError(f"scale must be an integer of at least 2, got {self.scale!r}")
        if self.mix_scales and not hasattr(models.MODELS[self.model], "refine"):
            raise ValueError(f"mix_scales needs a network that refines an interpolated image (vdsr), not {self.model}")
        if self.mix_scales and self.scale not in self.mix_scales:
            raise ValueError(f"scale {self.scale} (the one validated) must be one of mix_scales {self.mix_scales}")
        for name in ("patch_size", "patches_per_image", "batch_size", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        budgets = {"epochs": self.epochs, "iterations": self.iterations, "seconds": self.seconds}
        if all(v is None for v in budgets.values()):
            raise ValueError("give a budget: epochs, iterations or seconds")
        for name, value in budgets.items():
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.schedule not in (None, "cosine"):
            raise ValueError(f"unknown schedule {self.schedule!r}; the recipe's own (None) or cosine")
        if self.schedule == "cosine" and self.epochs is None:
            raise ValueError("a cosine schedule spans the run's epochs: give epochs")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        check_degrade(self.degrade)
        losses.get_loss(self.loss)
        if self.zero_last and self.model not in ("vdsr", "spvdsr"):
            raise ValueError(f"zero_last needs a network that adds the interpolated input to its output "
                             f"(vdsr, spvdsr), not {self.model}")

    @property
    def hr_patch(self) -> int:
        """Side of a training patch in HR pixels (``patch_size`` is in input pixels)."""
        return self.patch_size if self.mix_scales else self.patch_size * self.scale


# Fields that may change when a run is resumed: none of them changes the weights.
_RESUMABLE_CHANGES = {"epochs", "iterations", "seconds", "device", "val", "val_every", "checkpoint_every"}
# Fields added after checkpoints were written: a checkpoint without one trained with this value.
_ADDED_LATER = {"loss": "mse", "zero_last": False}


def default_device() -> torch.device:
    """CUDA if present, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(name: str | None) -> torch.device:
    """The device called ``name`` ("cpu", "cuda:1", ...), or ``default_device()`` for None;
    a device this machine lacks is refused with a one-line ValueError."""
    if name is None:
        return default_device()
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    present = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not present.get(device.type, False):
        raise ValueError(f"device {name!r} is not available on this machine")
    return device


# --- validation -----------------------------------------------------------------------------

def validation_pairs(images: Images, scale: int, degrade: str = "bicubic") -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR float luma, HR uint8 protocol Y) per image, the LR made as in training."""
    pairs = []
    for _, image in images:
        lr, _ = luma_pair(image, scale, degrade)
        pairs.append((lr, color.rgb_to_y(data.modcrop(np.asarray(image), scale))))
    return pairs


def interpolation_psnr(pairs: Sequence[tuple[np.ndarray, np.ndarray]], scale: int) -> float:
    """Mean protocol PSNR of MATLAB bicubic on validation pairs: the floor a network must beat."""
    scores = []
    for lr, hr_y in pairs:
        up = color.round_half_away(np.clip(resample.imresize(lr.astype(np.float64), scale) * 255, 0, 255)).astype(np.uint8)
        scores.append(metrics.psnr(up[:hr_y.shape[0], :hr_y.shape[1]], hr_y, crop=scale))
    return float(np.mean(scores))


@torch.no_grad()
def validate(model: nn.Module, pairs: Sequence[tuple[np.ndarray, np.ndarray]], scale: int,
             device: torch.device | str = "cpu") -> tuple[float, float]:
    """Mean protocol PSNR and SSIM: network luma x 255, clamped, rounded (halves up, as
    MATLAB) to uint8, against the HR uint8 Y, ``scale`` pixels cropped from each border."""
    was_training = model.training
    model.eval()
    scores = []
    for lr, hr_y in pairs:
        sr = model(torch.from_numpy(lr)[None, None].to(device)).float()[0, 0].cpu().numpy()
        if sr.shape != hr_y.shape:
            raise ValueError(f"the network returned {sr.shape} for an HR image of {hr_y.shape}")
        sr_y = color.round_half_away(np.clip(sr.astype(np.float64) * 255, 0, 255)).astype(np.uint8)
        scores.append((metrics.psnr(sr_y, hr_y, crop=scale), metrics.ssim(sr_y, hr_y, crop=scale)))
    model.train(was_training)
    psnr, ssim = np.mean(scores, axis=0)
    return float(psnr), float(ssim)


# --- provenance and files -------------------------------------------------------------------

def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def provenance(device: torch.device) -> dict:
    """Where a result came from: code version, commit, libraries and hardware."""
    return {"srlib": __version__, "git_commit": _git_commit(), "torch": torch.__version__,
            "python": platform.python_version(), "device": _device_name(device),
            "platform": platform.platform()}


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _rng_states() -> dict:
    np_state = np.random.get_state(legacy=False)
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": np_state["state"]["pos"]}},
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = states["numpy"]
    np.random.set_state({**np_state, "state": {"key": np.array(np_state["state"]["key"], dtype=np.uint32),
                                               "pos": np_state["state"]["pos"]}})
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels where torch has them (warning where not), restored afterwards."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[2], before[3]


# --- the loop -------------------------------------------------------------------------------

@dataclass
class TrainResult:
    """A finished (or budget-stopped) run: the trained network and its learning curve."""
    model: nn.Module
    history: list[dict]
    out_dir: Path
    provenance: dict
    trained: bool = True  # False when the checkpoint had already spent the budget

    @property
    def val_psnr(self) -> float | None:
        """The last validation PSNR, or None without validation images."""
        return next((h["val_psnr"] for h in reversed(self.history) if h["val_psnr"] is not None), None)

    @property
    def epoch_seconds(self) -> float:
        """Median seconds of one epoch on the run's training clock (validation excluded): the
        typical epoch, robust to the odd slow one."""
        clock = np.array([0.0] + [h["wall_time"] for h in self.history])
        return float(np.median(np.diff(clock)))


@dataclass
class _State:
    epoch: int = 0          # completed epochs
    step: int = 0           # batches done in the current epoch
    iteration: int = 0      # batches done in all
    elapsed: float = 0.0    # seconds of training before this session
    history: list = field(default_factory=list)


def _save(out: Path, config: TrainConfig, model, optimizer, scheduler, state: _State, info: dict) -> None:
    checkpoint = {"config": asdict(config), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "scheduler": scheduler.state_dict(), "rng": _rng_states(), "epoch": state.epoch,
                  "step": state.step, "iteration": state.iteration, "elapsed": state.elapsed,
                  "history": state.history}
    atomic_write(out / CHECKPOINT, lambda f: torch.save(checkpoint, f))
    _save_history(out, config, state, info)


def _save_history(out: Path, config: TrainConfig, state: _State, info: dict) -> None:
    record = _finite_or_none({"provenance": info, "config": asdict(config), "wall_time": state.elapsed,
                              "epochs": state.epoch, "iterations": state.iteration, "history": state.history})
    atomic_write(out / HISTORY, lambda f: f.write(json.dumps(record, indent=1).encode()))


def _restore(path: Path, config: TrainConfig, model, optimizer, scheduler) -> _State:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    saved = checkpoint["config"]
    free = _RESUMABLE_CHANGES - {"epochs"} if config.schedule else _RESUMABLE_CHANGES  # a cosine spans its epochs
    differs = [k for k, v in asdict(config).items() if k not in free and saved.get(k, _ADDED_LATER.get(k)) != v]
    if differs:
        raise ValueError(f"{path} belongs to another run (different {', '.join(differs)}); "
                         f"use another output folder or the same settings")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    _set_rng_states(checkpoint["rng"])
    return _State(checkpoint["epoch"], checkpoint["step"], checkpoint["iteration"], checkpoint["elapsed"],
                  checkpoint["history"])


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _step(forward: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer,
          clip: float | None, autocast, lr: torch.Tensor, hr: torch.Tensor,
          criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """One gradient step of ``criterion`` (MSE unless the run chose another loss); returns the
    batch loss. A non-finite loss changes nothing."""
    optimizer.zero_grad(set_to_none=True)
    with autocast:
        sr = forward(lr)
    loss = criterion(sr.float(), hr)
    value = loss.item()
    if math.isfinite(value):
        loss.backward()
        if clip is not None:
            clip_adjustable(optimizer, clip)
        optimizer.step()
    return value


def _start_from(initial: nn.Module, config: TrainConfig) -> nn.Module:
    """A copy of ``initial`` to train, once it is checked to be the network ``config`` names."""
    wanted = models.build(config.model, config.scale, **config.options)
    found = (getattr(initial, "name", None), getattr(initial, "scale", None), getattr(initial, "options", None))
    if found != (wanted.name, wanted.scale, wanted.options):
        raise ValueError(f"the initial network is {found[0]} x{found[1]} {found[2]}, but the configuration "
                         f"asks for {wanted.name} x{wanted.scale} {wanted.options}")
    return copy.deepcopy(initial)


def fresh_network(config: TrainConfig) -> nn.Module:
    """The network a run starts from; with ``config.zero_last`` its last layer starts at zero,
    so a residual network starts as the interpolation and skips the plateau He weights
    put before it (chapter 8)."""
    model = models.build(config.model, config.scale, **config.options)
    if config.zero_last:
        with torch.no_grad():
            for parameter in last_layer(model).parameters():
                parameter.zero_()
    return model


def train(config: TrainConfig, out_dir: str | os.PathLike, *, train_images: Images | None = None,
          val_images: Images | None = None, progress: bool = True, initial: nn.Module | None = None) -> TrainResult:
    """Train ``config.model`` on luma patches with its recipe and ``config.loss`` (MSE unless
    told otherwise, srlib.losses), checkpointing into
    ``out_dir`` and resuming from the checkpoint found there. Images default to
    ``load_images(config.data)`` and ``load_images(config.val)``; without validation images
    the history's val_psnr/val_ssim stay None. Raises TrainingDiverged on a NaN, infinite or
    exploded loss (above ``LOSS_LIMIT``) and on a validation collapse (``COLLAPSE_DB``).

    ``initial``: start from a copy of this network (the one ``config`` describes) instead of
    a fresh one; its parameters with ``requires_grad`` False stay as they are, e.g. FSRCNN's
    body after ``models.freeze_all_but_deconv``. The provenance lists what was trainable."""
    config.check()
    start = _start_from(initial, config) if initial is not None else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    if train_images is None:
        if config.data is None:
            raise ValueError("no training images: pass train_images or set TrainConfig.data")
        train_images = load_images(config.data)
    if val_images is None and config.val is not None:
        val_images = load_images(config.val)
    dataset = PatchDataset(train_images, config.scale, config.patch_size, degrade=config.degrade,
                           augment=config.augment, patches_per_image=config.patches_per_image,
                           rescale=config.rescale, mix=config.mix_scales)
    val_pairs = validation_pairs(val_images, config.scale, config.degrade) if val_images else []
    baseline = interpolation_psnr(val_pairs, config.scale) if val_pairs else None
    cuda = device.type == "cuda"
    memory_format = torch.channels_last if config.channels_last else torch.preserve_format
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and config.bf16 else nullcontext()
    info = provenance(device)
    if start is not None:
        info["initial"] = {"trainable": [name for name, p in start.named_parameters() if p.requires_grad]}
    for name in (CHECKPOINT, HISTORY):  # temp files left by a run killed while saving
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink()

    with _deterministic(device):
        _seed_everything(config.seed)
        model = start if start is not None else fresh_network(config)
        model = model.to(device, memory_format=memory_format)
        optimizer, scheduler, clip = RECIPES[config.recipe or config.model](
            model, config.lr, config.hr_patch ** 2)
        if config.schedule == "cosine":
            scheduler = cosine(optimizer, config.epochs)
        forward = model.refine if config.mix_scales else model  # mixed scales come interpolated
        criterion = losses.get_loss(config.loss)
        state = _State()
        if (out / CHECKPOINT).exists():
            state = _restore(out / CHECKPOINT, config, model, optimizer, scheduler)
        saved_at = f"epoch {state.epoch}, iteration {state.iteration}" if (out / CHECKPOINT).exists() else None
        steps = dataset.steps_per_epoch(config.batch_size)
        totals = [n for n in (config.epochs and config.epochs * steps, config.iterations) if n]
        started = time.perf_counter()

        def elapsed() -> float:
            return state.elapsed + time.perf_counter() - started

        def spent() -> bool:
            return ((config.epochs is not None and state.epoch >= config.epochs)
                    or (config.iterations is not None and state.iteration >= config.iterations)
                    or (config.seconds is not None and elapsed() >= config.seconds))

        def kept(saved_at: str | None) -> str:
            return (f"the last good checkpoint ({saved_at}) is kept in {out / CHECKPOINT}"
                    if saved_at else "no checkpoint was written yet")

        bar = tqdm(total=min(totals) if totals else None, initial=state.iteration, disable=not progress,
                   unit="batch", desc=f"{config.model} x{config.scale}")
        model.train()
        finished = spent()
        trained = not finished
        with bar:
            while not finished:
                batch_losses, lr_used = [], optimizer.param_groups[0]["lr"]
                for lr, hr in dataset.batches(config.batch_size, config.seed, state.epoch, state.step):
                    value = _step(forward, optimizer, clip, autocast, lr.to(device, memory_format=memory_format),
                                  hr.to(device, memory_format=memory_format), criterion)
                    if not value <= LOSS_LIMIT:  # NaN, inf or an explosion
                        raise TrainingDiverged(
                            f"loss became {value:.3g} at epoch {state.epoch + 1}, iteration {state.iteration + 1} "
                            f"(lr {optimizer.param_groups[0]['lr']:.3g}); {kept(saved_at)}; try a lower learning rate")
                    batch_losses.append(value)
                    state.step += 1
                    state.iteration += 1
                    bar.update()
                    bar.set_postfix(loss=f"{value:.3g}", refresh=False)
                    if spent():
                        break
                completed = state.step == steps
                if completed:
                    scheduler.step()
                    state.epoch, state.step = state.epoch + 1, 0
                finished = spent()
                entry = {"epoch": state.epoch if completed else state.epoch + 1, "iteration": state.iteration,
                         "wall_time": elapsed(), "loss": float(np.mean(batch_losses)),
                         "lr": lr_used, "val_psnr": None, "val_ssim": None}
                if val_pairs and (finished or (completed and state.epoch % config.val_every == 0)):
                    paused = time.perf_counter()
                    entry["val_psnr"], entry["val_ssim"] = validate(model, val_pairs, config.scale, device)
                    started += time.perf_counter() - paused  # validating is not training: off the clock
                    best = max([h["val_psnr"] for h in state.history if h["val_psnr"] is not None], default=-math.inf)
                    if entry["val_psnr"] < min(best, baseline) - COLLAPSE_DB:
                        raise TrainingDiverged(
                            f"validation PSNR fell to {entry['val_psnr']:.2f} dB at epoch {entry['epoch']}, "
                            f"{baseline - entry['val_psnr']:.1f} dB below interpolation ({baseline:.2f} dB) "
                            f"and the run's best; {kept(saved_at)}; try a lower learning rate")
                    bar.set_postfix(loss=f"{entry['loss']:.3g}", val_psnr=f"{entry['val_psnr']:.2f}")
                state.history.append(entry)
                if finished or (completed and state.epoch % config.checkpoint_every == 0):
                    state.elapsed, started = elapsed(), time.perf_counter()
                    _save(out, config, model, optimizer, scheduler, state, info)
                    saved_at = f"epoch {state.epoch}, iteration {state.iteration}"
    model.eval()
    return TrainResult(model, state.history, out, info, trained)
