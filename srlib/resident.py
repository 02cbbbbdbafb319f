"""Training with the data resident on the device: the engine of the GPU sprint (srlib.sprint).

``srlib.training`` cuts patches on the host: per batch, a Python loop slices numpy arrays and the
batch is copied to the device. That costs little beside a CPU's step and dominates a GPU's, which
finishes a small network's step in well under a millisecond. Here every training image's HR luma
and its LR version are made once, on the device (``srlib.resample`` runs there), and stored flat in
one tensor each; an epoch's patch positions and dihedral transforms are drawn on the device, and a
batch is one gather of pixel offsets. A step then launches kernels and nothing else: it never waits
for the device (the loss is summed there and read once per epoch). A test runs ``step`` on
PyTorch's meta device, where any read of a value back to the host fails.

The patches follow ``training.PatchDataset`` (protocol pairs, modcrop, MATLAB bicubic, FSRCNN's
rescaling, VDSR's mixed scales, the 8 dihedral transforms, ``patches_per_image`` random patches
per image and epoch) but are drawn by the device's generator: the same seed gives the same run on
one device, not the batches of ``srlib.training``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import color, data, models, resample, training

Images = Sequence[tuple[str, np.ndarray]]


def _dihedral_offsets(side: int, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(8, side, side) row and column offsets of a patch under each of ``training._dihedral``'s
    transforms: gathering ``image[y + rows[t], x + cols[t]]`` gives the transformed patch."""
    rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    return (torch.from_numpy(np.stack([training._dihedral(rows, t) for t in range(8)]).copy()),
            torch.from_numpy(np.stack([training._dihedral(cols, t) for t in range(8)]).copy()))


class ResidentPatches:
    """Every (input, HR) luma pair of a training set, on ``device``, and batches cut from them.

    ``scale``, ``patch_size`` (input pixels), ``degrade``, ``rescale``, ``mix`` and
    ``patches_per_image`` mean what they mean for ``training.PatchDataset``.
    """

    def __init__(self, images: Images, scale: int, patch_size: int, *, device: torch.device | str,
                 degrade: str = "bicubic", rescale: Sequence[float] = (), mix: Sequence[int] = (),
                 patches_per_image: int = 16, augment: bool = True):
        self.device, self.scale, self.patch = torch.device(device), int(scale), int(patch_size)
        self.mix, self.patches_per_image, self.augment = tuple(mix), int(patches_per_image), augment
        self.stride = 1 if self.mix else self.scale
        training.check_degrade(degrade)
        on_device = [torch.from_numpy(np.array(color.as_rgb(image))).to(self.device).permute(2, 0, 1) for _, image in images]
        on_device += [resample.imresize(image, f) for f in rescale for image in on_device]
        hr_side = self.patch * self.stride
        inputs, targets = [], []
        big_enough = [image for image in on_device if min(image.shape[1:]) >= hr_side]
        for s in self.mix or (self.scale,):  # scale by scale, as PatchDataset orders its pairs
            for image in big_enough:
                hr = color.rgb_to_ycbcr(data.modcrop(image.permute(1, 2, 0), s).permute(2, 0, 1), "studio")[0] / 255
                lr = training.degrade(hr, s, degrade)
                inputs.append(resample.resize(lr, s, kernel="bicubic") if self.mix else lr)
                targets.append(hr)
        if not inputs:
            raise ValueError(f"no training image is at least {hr_side}x{hr_side} pixels")
        self.count = len(inputs)
        shapes = torch.tensor([t.shape for t in inputs], device=self.device)
        self.heights, self.widths = shapes[:, 0], shapes[:, 1]
        self.hr_widths = torch.tensor([t.shape[1] for t in targets], device=self.device)
        self.inputs = torch.cat([t.reshape(-1) for t in inputs]).float()
        self.targets = torch.cat([t.reshape(-1) for t in targets]).float()
        self.input_base = _starts([t.numel() for t in inputs], self.device)
        self.target_base = _starts([t.numel() for t in targets], self.device)
        self.input_rows, self.input_cols = (o.to(self.device) for o in _dihedral_offsets(self.patch))
        self.target_rows, self.target_cols = (o.to(self.device) for o in _dihedral_offsets(hr_side))

    def __len__(self) -> int:
        return self.count * self.patches_per_image

    def plan(self, seed: int, epoch: int) -> torch.Tensor:
        """The epoch's patches as device rows (image, y, x, transform), in training order."""
        generator = torch.Generator(self.device).manual_seed(seed * 1_000_003 + epoch)
        image = torch.arange(self.count, device=self.device).repeat_interleave(self.patches_per_image)
        room = torch.stack([self.heights[image], self.widths[image]], 1) - self.patch + 1
        corner = (torch.rand(len(image), 2, generator=generator, device=self.device) * room).long()
        transform = (torch.randint(0, 8, (len(image),), generator=generator, device=self.device) if self.augment
                     else torch.zeros_like(image))
        rows = torch.cat([image[:, None], corner, transform[:, None]], 1)
        return rows[torch.randperm(len(image), generator=generator, device=self.device)]

    def cut(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, HR) batches (N, 1, p, p) and (N, 1, p*s, p*s) for plan rows: two gathers."""
        image, y, x, t = rows.unbind(1)
        s = self.stride
        lr = torch.take(self.inputs, self.input_base[image, None, None]
                        + (y[:, None, None] + self.input_rows[t]) * self.widths[image, None, None]
                        + x[:, None, None] + self.input_cols[t])
        hr = torch.take(self.targets, self.target_base[image, None, None]
                        + (y[:, None, None] * s + self.target_rows[t]) * self.hr_widths[image, None, None]
                        + x[:, None, None] * s + self.target_cols[t])
        return lr[:, None], hr[:, None]


def _starts(sizes: list[int], device: torch.device) -> torch.Tensor:
    return torch.tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]), device=device)


def step(forward: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer,
         clip: float | None, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """One MSE gradient step; returns the loss, still on the device (reading it would wait)."""
    optimizer.zero_grad(set_to_none=True)
    loss = F.mse_loss(forward(lr).float(), hr)
    loss.backward()
    if clip is not None:
        training.clip_adjustable(optimizer, clip)
    optimizer.step()
    return loss.detach()


@dataclass
class Run:
    """A resident training run's outcome: the network, its curve, the work it did."""
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    iterations: int = 0
    seconds: float = 0.0
    diverged: str | None = None  # why training stopped early, the last good weights kept


def _build(config: training.TrainConfig, device: torch.device, channels_last: bool) -> nn.Module:
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    return models.build(config.model, config.scale, **config.options).to(device, memory_format=memory_format)


def _in_bf16(forward: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``forward`` under bfloat16 autocast (the backward pass follows the forward's types)."""
    def wrapped(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return forward(x)
    return wrapped


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def steps_per_second(patches: ResidentPatches, batch_size: int, config: training.TrainConfig, steps: int = 30,
                     channels_last: bool = False) -> float:
    """Training steps a second of ``config``'s network on these patches, timed after a warm-up
    on a network of its own (no run's weights or generator are touched)."""
    probe = _build(config, patches.device, channels_last)
    optimizer, _, clip = training.RECIPES[config.recipe or config.model](probe, config.lr, config.hr_patch ** 2)
    forward = probe.refine if patches.mix else probe
    rows = patches.plan(config.seed + 1, 0)[:batch_size]
    lr, hr = patches.cut(rows)
    for _ in range(3):
        step(forward, optimizer, clip, lr, hr)
    _sync(patches.device)
    start = time.perf_counter()
    for _ in range(steps):
        step(forward, optimizer, clip, *patches.cut(rows))
    _sync(patches.device)
    return steps / (time.perf_counter() - start)


def train(config: training.TrainConfig, patches: ResidentPatches, iterations: int, *,
          val_pairs: Sequence[tuple[np.ndarray, np.ndarray]] = (), val_every: int = 0,
          bf16: bool = False, channels_last: bool = False) -> Run:
    """Train ``config``'s network for ``iterations`` steps on resident patches with its recipe,
    the learning rate following one half-cosine to 1/100 over the steps (the fast recipe).

    Validates on ``val_pairs`` every ``val_every`` epochs (0: at the end only). A non-finite or
    exploded epoch loss (above ``training.LOSS_LIMIT``) stops the run with the weights of the
    last good epoch restored and the reason in ``Run.diverged``."""
    device = patches.device
    torch.manual_seed(config.seed)
    model = _build(config, device, channels_last)
    optimizer, _, clip = training.RECIPES[config.recipe or config.model](model, config.lr, config.hr_patch ** 2)
    starts = [group["lr"] for group in optimizer.param_groups]
    forward = model.refine if patches.mix else model
    if bf16 and device.type == "cuda":
        forward = _in_bf16(forward)
    run, epoch, done = Run(model), 0, 0
    good = {k: v.clone() for k, v in model.state_dict().items()}
    started = time.perf_counter()
    while done < iterations:
        plan = patches.plan(config.seed, epoch)
        total, count = torch.zeros((), device=device), 0
        for first in range(0, len(plan), config.batch_size):
            if done == iterations:
                break
            factor = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * done / iterations))
            for group, start in zip(optimizer.param_groups, starts):
                group["lr"] = start * factor
            total += step(forward, optimizer, clip, *patches.cut(plan[first:first + config.batch_size]))
            count, done = count + 1, done + 1
        epoch += 1
        loss = total.item() / count  # the one read of the epoch
        if not loss <= training.LOSS_LIMIT:
            model.load_state_dict(good)
            run.diverged = f"mean loss {loss:.3g} in epoch {epoch}: stopped, the weights of epoch {epoch - 1} kept"
            break
        good = {k: v.clone() for k, v in model.state_dict().items()}
        entry = {"epoch": epoch, "iteration": done, "wall_time": time.perf_counter() - started, "loss": loss,
                 "lr": optimizer.param_groups[0]["lr"], "val_psnr": None, "val_ssim": None}
        if val_pairs and (done == iterations or (val_every and epoch % val_every == 0)):
            entry["val_psnr"], entry["val_ssim"] = training.validate(model, val_pairs, config.scale, device)
        run.history.append(entry)
    _sync(device)
    run.iterations, run.seconds = done, time.perf_counter() - started
    model.eval()
    return run
