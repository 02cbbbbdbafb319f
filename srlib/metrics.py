"""PSNR and SSIM exactly as the SR papers compute them (the protocol of chapter 3, steps 4-6).

``psnr`` and ``ssim`` take two single-channel images: numpy (H, W), or torch tensors
(H, W), (N, H, W) or (N, 1, H, W). A single image gives a float; a torch batch gives a
float64 tensor of per-image values on the input's device. SSIM filters numpy images with
scipy (quick on a CPU) and tensors with conv2d (batched, CPU or CUDA). ``evaluate``
applies the whole protocol to uint8 images: studio-range Y rounded to uint8, ``scale``
pixels cropped from each border, then PSNR and SSIM. ``evaluate_set`` runs the whole
benchmark for an upscaler: modcrop, MATLAB-bicubic shrink, upscale, ``evaluate``, means.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from .color import rgb_to_y
from .data import modcrop
from .resample import imresize

#: SSIM constants of Wang et al. (2004): Gaussian window 11 x 11 with sigma 1.5, K1, K2.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03

Metric = float | torch.Tensor


def _prepare(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, crop: int,
             min_size: int) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor, bool]:
    """Both images cropped and in float64: numpy (H, W), or torch (N, 1, H, W) with a flag
    saying whether the tensors were a batch."""
    if isinstance(a, torch.Tensor) != isinstance(b, torch.Tensor):
        raise ValueError("compare two numpy arrays or two torch tensors, not one of each")
    if isinstance(a, torch.Tensor):
        if a.device != b.device:
            raise ValueError(f"images are on different devices ({a.device} and {b.device})")
        if not (a.ndim in (2, 3) or (a.ndim == 4 and a.shape[1] == 1)):
            raise ValueError(f"expected tensors (H, W), (N, H, W) or (N, 1, H, W), got shape {tuple(a.shape)}")
        batched = a.ndim > 2
        x, y = a.detach().to(torch.float64), b.detach().to(torch.float64)
    else:
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim != 2:
            raise ValueError(f"expected single-channel images (H, W), got shape {a.shape}; take Y first")
        batched = False
        x, y = a.astype(np.float64), b.astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    if isinstance(crop, bool) or not isinstance(crop, (int, np.integer)) or crop < 0:
        raise ValueError(f"crop must be a non-negative integer, got {crop!r}")
    crop = int(crop)
    height, width = x.shape[-2] - 2 * crop, x.shape[-1] - 2 * crop
    if min(height, width) < min_size:
        raise ValueError(f"image {tuple(x.shape[-2:])} cropped by {crop} per border leaves "
                         f"{max(height, 0)}x{max(width, 0)}, smaller than the {min_size}x{min_size} needed")
    window = (..., slice(crop, crop + height), slice(crop, crop + width))
    if isinstance(x, torch.Tensor):
        x, y = x.reshape(-1, 1, *x.shape[-2:]), y.reshape(-1, 1, *y.shape[-2:])
    return x[window], y[window], batched


def _data_range(a, b, data_range: float | None) -> float:
    """``data_range``, or 255 when not given, unless both images are floats within [0, 1]:
    scoring those against 255 would add 48 dB without a word, so they must say their range."""
    if data_range is None:
        floats = all((x.is_floating_point() if isinstance(x, torch.Tensor) else np.issubdtype(np.asarray(x).dtype, np.floating))
                     for x in (a, b))
        if floats and all(float(abs(x).max()) <= 1 for x in (a, b)):
            raise ValueError("both images are floats within [0, 1]: pass data_range=1.0 "
                             "(without it the range is 255, as for uint8 images)")
        return 255.0
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range!r}")
    return data_range


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, *, crop: int = 0,
         data_range: float | None = None) -> Metric:
    """Peak signal-to-noise ratio 10 log10(data_range^2 / MSE) in dB, in float64, after
    cropping ``crop`` pixels from every border; identical images give inf. ``data_range``
    defaults to 255; floats within [0, 1] must give theirs."""
    x, y, batched = _prepare(a, b, crop, 1)
    data_range = _data_range(a, b, data_range)
    if isinstance(x, torch.Tensor):
        values = 10 * torch.log10(data_range**2 / (x - y).square().mean(dim=(1, 2, 3)))
        return values if batched else float(values[0])
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalised 1-D Gaussian whose outer product is SSIM's 2-D window."""
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-t**2 / (2 * sigma**2))
    return g / g.sum()


def _valid_means(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> list[np.ndarray] | list[torch.Tensor]:
    """Gaussian-weighted local means of x, y, x^2, y^2 and xy wherever the window fits."""
    g = gaussian_window()
    moments = [x, y, x * x, y * y, x * y]
    if isinstance(x, torch.Tensor):
        g = torch.as_tensor(g, dtype=x.dtype, device=x.device)
        rows, cols = g.view(1, 1, -1, 1).repeat(5, 1, 1, 1), g.view(1, 1, 1, -1).repeat(5, 1, 1, 1)
        means = F.conv2d(F.conv2d(torch.cat(moments, dim=1), rows, groups=5), cols, groups=5)
        return list(means.split(1, dim=1))
    from scipy import ndimage  # here, not at the top: it costs `srlib upscale` 0.3 s to import

    r = SSIM_WINDOW // 2  # scipy filters at every pixel; keep the positions free of padding
    return [ndimage.correlate1d(ndimage.correlate1d(m, g, axis=0), g, axis=1)[r:-r, r:-r] for m in moments]


def ssim_map(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor,
             data_range: float = 255.0) -> np.ndarray | torch.Tensor:
    """SSIM wherever the 11 x 11 window fits inside float images, numpy (H, W) or torch
    (N, 1, H, W): a map 10 pixels smaller each way (no padding, as Wang et al.'s code)."""
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = _valid_means(x, y)
    var_x, var_y = mean_xx - mean_x**2, mean_yy - mean_y**2
    cov = mean_xy - mean_x * mean_y
    return ((2 * mean_x * mean_y + c1) * (2 * cov + c2)) / ((mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2))


def ssim(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, *, crop: int = 0,
         data_range: float | None = None) -> Metric:
    """Structural similarity (Wang et al. 2004): Gaussian 11 x 11 window, sigma 1.5, K1 0.01,
    K2 0.03, averaged over the valid part of the SSIM map of the cropped images. ``data_range``
    as for ``psnr``."""
    x, y, batched = _prepare(a, b, crop, SSIM_WINDOW)
    data_range = _data_range(a, b, data_range)
    if isinstance(x, torch.Tensor):
        values = ssim_map(x, y, data_range).mean(dim=(1, 2, 3))
        return values if batched else float(values[0])
    return float(ssim_map(x, y, data_range).mean())


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def _protocol_y(sr: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 studio Y of an SR output and its HR image, after checking both."""
    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.dtype != np.uint8 or hr.dtype != np.uint8:
        raise ValueError(f"evaluate needs uint8 images (clip and round the SR output first), "
                         f"got {sr.dtype} and {hr.dtype}")
    if sr.shape != hr.shape:
        raise ValueError(f"SR and HR images differ in shape: {sr.shape} and {hr.shape}")
    return rgb_to_y(sr), rgb_to_y(hr)


def evaluate(sr: np.ndarray, hr: np.ndarray, scale: int) -> dict[str, float]:
    """The SR papers' protocol on uint8 RGB (H, W, 3) or grey (H, W) images of equal shape:
    PSNR and SSIM of the uint8 studio Y, ``scale`` pixels cropped from each border."""
    y_sr, y_hr = _protocol_y(sr, hr)
    crop = _check_scale(scale)
    return {"psnr": psnr(y_sr, y_hr, crop=crop), "ssim": ssim(y_sr, y_hr, crop=crop)}


def evaluate_set(images: Iterable[tuple[str, np.ndarray]], scale: int,
                 upscale: Callable[[np.ndarray, int], np.ndarray]) -> dict:
    """Benchmark ``upscale(lr, scale)`` on (name, HR image) pairs under the protocol: modcrop,
    MATLAB-bicubic shrink, upscale (to uint8 of the HR size), then ``evaluate`` on each image.

    Returns {"psnr": mean, "ssim": mean, "images": [{"name", "psnr", "ssim"}, ...]}.
    """
    scale = _check_scale(scale)
    rows = []
    for name, image in images:
        try:
            hr = modcrop(np.asarray(image), scale)
            y_sr, y_hr = _protocol_y(upscale(imresize(hr, 1 / scale), scale), hr)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from err
        rows.append({"name": name, "psnr": psnr(y_sr, y_hr, crop=scale),
                     "ssim": ssim(y_sr, y_hr, crop=scale)})
    if not rows:
        raise ValueError("no images to evaluate")
    means = {key: float(np.mean([row[key] for row in rows])) for key in ("psnr", "ssim")}
    return {**means, "images": rows}
