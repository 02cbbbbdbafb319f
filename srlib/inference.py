"""Using trained networks: weights files, whole images upscaled in tiles, pretrained weights.

A weights file is ``torch.save`` of a plain dict: the ``state_dict``, the registry name
of the ``model``, the ``options`` and ``scale`` that rebuild it, and JSON-like
``metadata`` (training data, protocol PSNR, srlib version, git commit, ...). It is read
with ``torch.load(weights_only=True)``, so a file that would run code when unpickled is
refused instead of run. ``upscale`` sends the luma of a grey, RGB or RGBA image through
the network in overlapping tiles (bounded memory, same result as one pass) and the
chroma and alpha through a Lanczos kernel. ``pretrained/manifest.json`` lists the
weights shipped with srlib. ``frames_per_second`` times a network on a whole video frame
(the benchmarks and the leaderboard use it).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import pickle
import platform
import subprocess
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from . import __version__, metrics, models
from .color import as_rgb, rgb_to_y, rgb_to_ycbcr, round_half_away, ycbcr_to_rgb
from .resample import resize
from .imageio import atomic_write
from .training import default_device

PRETRAINED_DIR = Path(__file__).with_name("pretrained")
MANIFEST = PRETRAINED_DIR / "manifest.json"
_KEYS = {"state_dict", "model", "options", "scale", "metadata"}


class WeightsError(ValueError):
    """A weights file that cannot be used: unreadable, unsafe, or for another network."""


class PretrainedNotFound(FileNotFoundError):
    """No weights in the pretrained manifest for the asked network and scale."""


# ---------------------------------------------------------------- weights files

def _git_commit() -> str | None:
    """The commit of the git work tree holding srlib, or None outside one."""
    try:
        done = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def save_weights(path: str | os.PathLike, model: nn.Module, *, metadata: dict | None = None) -> None:
    """Write ``model``'s weights with what rebuilds it; the file replaces ``path`` in one step.

    ``metadata`` (JSON-like values only, so ``weights_only`` loading accepts it) is stored
    after srlib's version and git commit, which it may override.
    """
    for attribute in ("name", "scale", "options"):
        if not hasattr(model, attribute):
            raise ValueError(f"save_weights needs an srlib model (with .name, .scale, .options), "
                             f"got {type(model).__name__}")
    info = {"srlib_version": __version__, "git_commit": _git_commit(), **(metadata or {})}
    try:  # the round trip also turns str/float subclasses (torch.__version__, numpy floats) into plain ones
        info = json.loads(json.dumps(info))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must hold JSON-like values only ({exc})") from None
    payload = {"state_dict": {key: value.detach().cpu().clone() for key, value in model.state_dict().items()},
               "model": model.name, "options": dict(model.options), "scale": int(model.scale),
               "metadata": info}
    atomic_write(Path(path), lambda f: torch.save(payload, f))


def _read_payload(path: Path) -> dict:
    """The checked dict of a weights file; every failure is one WeightsError line."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's note on old pickle protocols
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc):  # the safe unpickler met a function or class it does not allow
            raise WeightsError(f"{path}: refused, loading it would call code or build objects other "
                               f"than tensors (an unsafe or foreign pickle)") from None
        raise WeightsError(f"{path}: not a PyTorch weights file, or a damaged one (bad pickle data)") from None
    except Exception as exc:  # torch raises many kinds on garbage: IndexError, RuntimeError, EOFError...
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise WeightsError(f"{path}: not a PyTorch weights file, or a damaged one ({reason})") from None
    if not (isinstance(payload, dict) and _KEYS <= set(payload)
            and isinstance(payload["state_dict"], dict) and isinstance(payload["model"], str)
            and isinstance(payload["options"], dict) and isinstance(payload["scale"], int)
            and isinstance(payload["metadata"], dict)):
        raise WeightsError(f"{path}: a PyTorch file but not srlib weights (no model name, options "
                           f"and scale; write weights with srlib.inference.save_weights)")
    return payload


def load_weights(path: str | os.PathLike, *, model: str | None = None, scale: int | None = None) -> nn.Module:
    """Rebuild the network stored in a weights file, on the CPU in eval mode.

    ``model`` and ``scale``, when given, are what the caller expects: weights for another
    network or scale raise ``WeightsError``. Weights trained on mixed scales (VDSR) list them
    as ``metadata["scales"]`` and serve each. The file's metadata is on ``.metadata``.
    """
    path = Path(path)
    payload = _read_payload(path)
    served = payload["metadata"].get("scales") or [payload["scale"]]
    found = f"{payload['model']} x{'/'.join(map(str, served))}"
    if (model is not None and payload["model"] != model) or (scale is not None and scale not in served):
        wanted = f"{model or payload['model']} x{scale or payload['scale']}"
        raise WeightsError(f"{path}: holds weights for {found}, not for {wanted}")
    try:
        network = models.build(payload["model"], scale or payload["scale"], **payload["options"])
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{path}: cannot rebuild {found} ({exc})") from None
    try:
        network.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{path}: weights do not fit {found} with options "
                           f"{payload['options']} ({reason})") from None
    network.metadata = payload["metadata"]
    return network.eval()


# ---------------------------------------------------------------- pretrained manifest

@dataclass(frozen=True)
class Pretrained:
    """One entry of ``pretrained/manifest.json`` (the file documents each field)."""
    name: str
    model: str
    scale: int
    options: dict
    file: str
    sha256: str
    training_data: str
    psnr_set5: float
    results: str


def pretrained_models(manifest: str | os.PathLike = MANIFEST) -> list[Pretrained]:
    """The entries of a pretrained manifest, checked field by field."""
    manifest = Path(manifest)
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))["entries"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{manifest}: not a readable pretrained manifest ({exc})") from None
    fields = Pretrained.__dataclass_fields__
    found = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or set(entry) != set(fields):
            raise ValueError(f"{manifest}: entry {number} must have exactly the fields {', '.join(fields)}")
        found.append(Pretrained(**entry))
    return found


def find_pretrained(name: str, scale: int, manifest: str | os.PathLike = MANIFEST) -> Pretrained:
    """The first entry whose ``name`` or ``model`` is ``name`` at this scale."""
    for entry in pretrained_models(manifest):
        if name in (entry.name, entry.model) and entry.scale == scale:
            return entry
    raise PretrainedNotFound(f"no pretrained weights for {name} x{scale} in srlib; train one with "
                             f"`srlib train --model {name} --scale {scale} ...` and pass its weights.pt")


def default_pretrained(scale: int, manifest: str | os.PathLike = MANIFEST) -> Pretrained:
    """What ``srlib upscale`` uses when no network is named: the manifest's first entry at
    ``scale`` (the manifest lists the best photo network of each scale first)."""
    for entry in pretrained_models(manifest):
        if entry.scale == scale:
            return entry
    raise PretrainedNotFound(f"no pretrained weights for x{scale} in srlib; train a network with "
                             f"`srlib train --scale {scale} ...` and pass its weights.pt")


def load_pretrained(name: str, scale: int, manifest: str | os.PathLike = MANIFEST) -> nn.Module:
    """The network of a manifest entry, its file checked against the recorded sha256."""
    entry = find_pretrained(name, scale, manifest)
    path = Path(manifest).parent / entry.file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pretrained weights listed in {Path(manifest).name} are missing")
    if hashlib.sha256(path.read_bytes()).hexdigest() != entry.sha256:
        raise WeightsError(f"{path}: sha256 differs from the manifest's; the file is damaged or replaced")
    network = load_weights(path, model=entry.model, scale=entry.scale)
    if json.loads(json.dumps(network.options)) != entry.options:  # JSON has lists, not tuples
        raise WeightsError(f"{path}: options {network.options} differ from the manifest's {entry.options}")
    return network


# ---------------------------------------------------------------- upscaling

def _check_model(model: nn.Module) -> nn.Module:
    """``model`` itself if it has what tiling needs, else a one-line ValueError."""
    for attribute in ("name", "scale", "receptive_field"):
        if not hasattr(model, attribute):
            raise ValueError(f"need an srlib model (with .name, .scale and .receptive_field), "
                             f"got {type(model).__name__}")
    return model


def min_input_size(model: nn.Module) -> int:
    """Smallest side, in LR pixels, that ``upscale`` accepts: the network's receptive field.

    A smaller image is all border, every output pixel seeing mostly the network's padding.
    """
    return max(2, int(_check_model(model).receptive_field))


@contextmanager
def _evaluating(model: nn.Module, channels_last: bool = False) -> Iterator[None]:
    """Eval mode without autograd for the duration, optionally with the convolution weights
    in channels-last layout; the module's mode and weights are restored after."""
    was_training = model.training
    kernels = {p: p.data for p in model.parameters() if p.dim() == 4} if channels_last else {}
    for p, data in kernels.items():
        p.data = data.to(memory_format=torch.channels_last)  # restrides even where C = 1
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)
        for p, data in kernels.items():
            p.data = data


def _spans(length: int, tile: int, halo: int) -> Iterator[tuple[int, int, int, int]]:
    """(start, stop) of each tile along one axis and of the tile widened by ``halo``."""
    for start in range(0, length, tile):
        stop = min(start + tile, length)
        yield start, stop, max(0, start - halo), min(length, stop + halo)


def upscale_luma(model: nn.Module, lr: torch.Tensor, *, tile: int | None = 512) -> torch.Tensor:
    """``model(lr)`` for luma (N, 1, h, w) in [0, 1], computed in tiles of ``tile`` LR pixels.

    Each tile is widened by the network's receptive field on every side before it goes
    through the network, and only its centre is kept, so the result equals the one-pass
    output (up to float rounding) while memory grows with the tile, not the image.
    ``tile=None`` runs the image in one pass. On a CPU the weights run in channels-last
    layout, 1.4-2.8x faster than PyTorch's default for these networks
    (benchmarks/bench_inference.py); the model is left as it was.
    """
    scale, halo = int(_check_model(model).scale), int(model.receptive_field)
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise ValueError(f"tile must be a positive integer or None, got {tile!r}")
    n, _, height, width = lr.shape
    with _evaluating(model, channels_last=lr.device.type == "cpu"):
        if tile is None or (height <= tile and width <= tile):
            return model(lr)
        out = torch.empty(n, 1, height * scale, width * scale, dtype=lr.dtype, device=lr.device)
        for y0, y1, wy0, wy1 in _spans(height, tile, halo):
            for x0, x1, wx0, wx1 in _spans(width, tile, halo):
                piece = model(lr[..., wy0:wy1, wx0:wx1])
                out[..., y0 * scale:y1 * scale, x0 * scale:x1 * scale] = piece[
                    ..., (y0 - wy0) * scale:(y1 - wy0) * scale, (x0 - wx0) * scale:(x1 - wx0) * scale]
        return out


def _resolve(model_or_name: nn.Module | str, scale: int | None, weights: str | os.PathLike | None) -> nn.Module:
    """The network ``upscale`` asked for: a module as given, or a name with its weights."""
    if isinstance(model_or_name, nn.Module):
        if weights is not None:
            raise ValueError("weights go with a model name; a module already has its weights")
        if scale is not None and scale != model_or_name.scale:
            raise ValueError(f"scale {scale} asked of a x{model_or_name.scale} model")
        return _check_model(model_or_name)
    if weights is not None:
        return load_weights(weights, model=model_or_name, scale=scale)
    if scale is None:
        raise ValueError(f"give the scale for the pretrained {model_or_name} weights")
    return load_pretrained(model_or_name, scale)


# Input pixels per strip of ``upscale``: at x4 a strip's float32 planes take about 400 MB.
STRIP_PIXELS = 1 << 20
# Bytes of the widest float32 activation in one tile of ``upscale``'s automatic tiling.
TILE_BYTES = 256 << 20


def _convolutions(model: nn.Module) -> list[nn.Module]:
    """The network's convolution and deconvolution layers, input to output."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def auto_tile(model: nn.Module) -> int:
    """The tile side, in LR pixels, at which the network's widest activation takes about
    ``TILE_BYTES``: SP-VDSR runs whole strips in one pass (tiles cost halos and small-image
    overheads: 1.3x its time on a 1080p frame at 512), VDSR x4 at HR size in 256-pixel tiles."""
    widest = max(m.out_channels for m in _convolutions(model))
    per_pixel = 4 * widest * (int(model.scale) ** 2 if getattr(model, "interpolates_first", False) else 1)
    return max(64, math.isqrt(TILE_BYTES // per_pixel))


def prefer_avx2_for(model: nn.Module) -> bool:
    """Cap oneDNN, which runs PyTorch's CPU convolutions, at AVX2 if ``model``'s hidden layers
    are at most 8 channels wide (SP-VDSR): its AVX-512 kernels compute 16 output channels at
    a time, half of them padding for such a layer. Measured on a 2-core AMD EPYC, SP-VDSR on a
    1080p luma: median 138 ms against 162 at x2, 135 against 181 at x3 (6 fresh processes
    each); wider networks are left alone. oneDNN reads the cap once, at the process's first
    convolution, so this acts only before it, and never over a ``ONEDNN_MAX_CPU_ISA`` already
    set; results move at float32 rounding. The ``srlib`` command calls it. Returns whether
    the cap was set."""
    convs = _convolutions(model)
    narrow = len(convs) > 1 and max(m.out_channels for m in convs[:-1]) <= 8
    if not narrow or platform.machine().lower() not in ("x86_64", "amd64") or "ONEDNN_MAX_CPU_ISA" in os.environ:
        return False
    os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    return True


def upscale(image: np.ndarray, model_or_name: nn.Module | str, scale: int | None = None, *,
            weights: str | os.PathLike | None = None, tile: int | str | None = "auto",
            device: str | torch.device | None = None) -> np.ndarray:
    """Upscale a uint8 grey (H, W), RGB (H, W, 3) or RGBA (H, W, 4) image with a network.

    ``model_or_name``: a model (moved to ``device`` when one is given), or a registry name
    with a ``weights`` file or, without one, a pretrained entry for ``scale``. The image is
    worked in strips of rows (``STRIP_PIXELS``), each widened by the network's receptive
    field and the chroma kernel's reach so that strips join without seams: memory stays
    bounded whatever the image's size, beside the input and the output. In each strip,
    studio-range YCbCr in float32, the luma through the network in tiles of ``tile`` LR
    pixels (``"auto"``: ``auto_tile``; see ``upscale_luma``), Cb and Cr with Lanczos-3, back to RGB rounded as
    MATLAB; alpha with Lanczos-3 too. The result equals ``srlib.color.upscale_rgb`` with the
    network up to float32 rounding (at most one grey level, on a few pixels).
    """
    if isinstance(image, torch.Tensor):
        raise ValueError("upscale takes a uint8 image array (H, W[, C]) as read_image gives; for a tensor "
                         "(C, H, W) pass image.permute(1, 2, 0).numpy(), for a luma batch use upscale_luma")
    model = _resolve(model_or_name, scale, weights)
    array = np.asarray(image)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"expected a uint8 image (H, W), (H, W, 3) or (H, W, 4), got {array.dtype} {array.shape}")
    need = min_input_size(model)
    if min(array.shape[:2]) < need:
        raise ValueError(f"a {array.shape[1]}x{array.shape[0]} image is too small for {model.name} "
                         f"x{model.scale}: both sides must be at least {need} pixels")
    if device is not None:
        model.to(device)
    elif not isinstance(model_or_name, nn.Module):
        model.to(default_device())
    if tile == "auto":
        tile = auto_tile(model)
    s, (height, width) = int(model.scale), array.shape[:2]
    out = np.empty((height * s, width * s, *array.shape[2:]), dtype=np.uint8)
    halo = max(int(model.receptive_field), _CHROMA_REACH)
    rows = max(1, STRIP_PIXELS // width)
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        w0, w1 = max(0, y0 - halo), min(height, y1 + halo)
        strip = _upscale_strip(model, array[w0:w1], tile)
        out[y0 * s:y1 * s] = strip[(y0 - w0) * s:(y1 - w0) * s]
    return out


def _studio_to_rgb_uint8(luma: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor) -> torch.Tensor:
    """The network's luma (0-1 scale) and studio-range Cb, Cr planes (0-255) to a uint8 (H, W, 3)
    RGB image, clamped and rounded halves up: ``srlib.color.ycbcr_to_rgb`` written out plane by
    plane (its offsets and the luma's 255 folded into one constant and one coefficient), each
    plane written straight into the interleaved result: 3x faster than the 3 x 3 product."""
    out = torch.empty(*luma.shape, 3, dtype=torch.uint8, device=luma.device)
    for channel, (a, b, c) in enumerate(_STUDIO_INVERSE):
        # a (255 luma - 16) + b (cb - 128) + c (cr - 128), + 0.5 so that truncation rounds halves up
        plane = torch.mul(luma, 255.0 * float(a)).add_(float(0.5 - 16.0 * a - 128.0 * b - 128.0 * c))
        plane.add_(cb, alpha=float(b)).add_(cr, alpha=float(c))
        out[..., channel] = plane.clamp_(0.5, 255.5)  # truncation of x + 0.5 >= 0 rounds halves up
    return out


# rgb = _STUDIO_INVERSE @ (ycc - (16, 128, 128)): ycbcr_to_rgb's matrix, read off unit steps
# from the neutral grey.
_GREY = np.array([[[16.0, 128.0, 128.0]]])
_STUDIO_INVERSE = (ycbcr_to_rgb(_GREY + np.eye(3)[:, None], "studio") - ycbcr_to_rgb(_GREY, "studio"))[:, 0].T
_CHROMA_REACH = 4  # LR rows a Lanczos-3 upscaled row depends on, each side (its support, 3, + 1)


def _upscale_strip(model: nn.Module, strip: np.ndarray, tile: int | None) -> np.ndarray:
    """``upscale`` of one strip, whole: float32 colour work around the network's luma."""
    s = int(model.scale)
    target = next(model.parameters()).device
    # planes made contiguous while still uint8: the colour products then run 3x faster; and
    # writable, which torch wants (np.asarray of a PIL image is read-only): a copy only if needed
    colour = np.require(as_rgb(strip), requirements=("C", "W"))
    rgb = torch.from_numpy(colour).to(target).permute(2, 0, 1).contiguous().to(torch.float32)
    ycc = rgb_to_ycbcr(rgb, "studio")
    del rgb
    luma = upscale_luma(model, (ycc[:1] / 255.0)[None], tile=tile)[0, 0]
    chroma = resize(ycc[1:], s, kernel="lanczos3")
    del ycc
    up = _studio_to_rgb_uint8(luma, chroma[0], chroma[1]).cpu().numpy()
    del luma, chroma
    if strip.ndim == 2:
        return np.ascontiguousarray(up[..., 0])
    if strip.shape[2] == 4:
        return np.concatenate([up, resize(strip[..., 3], s, kernel="lanczos3")[..., None]], axis=2)
    return up


def protocol_luma(model: nn.Module, lr: np.ndarray, hr: np.ndarray, *, tile: int | None = 512) -> tuple[np.ndarray, np.ndarray]:
    """The two uint8 luma planes the evaluation protocol compares, from its (LR, HR) pair
    (``srlib.data.make_pair``): the network's luma of the LR image, clamped and rounded to
    uint8, and the HR image's uint8 studio Y (uncropped)."""
    lr, hr = np.asarray(lr), np.asarray(hr)
    colour = np.repeat(lr[..., None], 3, axis=2) if lr.ndim == 2 else lr
    y = rgb_to_ycbcr(colour, "studio")[..., 0] / 255.0
    target = next(model.parameters()).device
    sr = upscale_luma(model, torch.from_numpy(y).to(device=target, dtype=torch.float32)[None, None], tile=tile)
    sr_y = round_half_away(np.clip(sr[0, 0].cpu().numpy().astype(np.float64) * 255.0, 0, 255)).astype(np.uint8)
    hr_y = rgb_to_y(hr)
    if sr_y.shape != hr_y.shape:
        raise ValueError(f"the network gave {sr_y.shape[1]}x{sr_y.shape[0]} pixels for a "
                         f"{hr_y.shape[1]}x{hr_y.shape[0]} HR image")
    return sr_y, hr_y


def protocol_scores(model: nn.Module, lr: np.ndarray, hr: np.ndarray, *, tile: int | None = 512) -> dict[str, float]:
    """PSNR and SSIM of a network under the evaluation protocol (``protocol_luma``'s planes,
    ``scale`` pixels cropped from each border)."""
    sr_y, hr_y = protocol_luma(model, lr, hr, tile=tile)
    crop = int(model.scale)
    return {"psnr": metrics.psnr(sr_y, hr_y, crop=crop), "ssim": metrics.ssim(sr_y, hr_y, crop=crop)}


# ---------------------------------------------------------------- speed

def best_time(fn: Callable[[], object], repeats: int = 3) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds (summed over threads) of ``repeats`` calls of
    ``fn``, after one untimed warm-up call (first-call allocations and kernel choices)."""
    if repeats < 1:
        raise ValueError(f"repeats must be positive, got {repeats}")
    fn()
    wall = cpu = float("inf")
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return wall, cpu


def frames_per_second(model: nn.Module, lr_size: tuple[int, int], *, device: str | torch.device | None = None,
                      bf16: bool = False, channels_last: bool = True, repeats: int = 3) -> float:
    """Frames per second of ``model`` on one luma frame of ``lr_size`` (h, w) LR pixels, in one
    pass (no tiles), best of ``repeats``; CUDA work is waited for inside the timing.

    A copy of the model is timed on ``device`` (default: the fastest present), in channels-last
    memory unless told otherwise and under bfloat16 autocast when ``bf16``; cuDNN may pick its
    fastest kernels meanwhile. The caller's model is left as it was."""
    device = torch.device(device) if device is not None else default_device()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    network = copy.deepcopy(_check_model(model)).to(device, memory_format=fmt).eval()
    lr = torch.rand(1, 1, *lr_size, generator=torch.Generator().manual_seed(0)).to(device, memory_format=fmt)

    def one_frame() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            upscale_luma(network, lr, tile=None)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        wall, _ = best_time(one_frame, repeats)
    finally:
        torch.backends.cudnn.benchmark = benchmark
    return 1.0 / wall
