"""Training losses of chapter 9: MSE, and three that weigh structure and edges more.

Every loss takes the network's output ``sr`` and the target ``hr``, luma tensors (N, 1, H, W)
in [0, 1], and returns a scalar tensor to minimise. MSE is what every network of chapters 4-8
trained with, and what PSNR measures; the others are the article's suggestions:

* ``gradient_sensitive``: Guo et al. (2018), "Dual Reconstruction Nets for Image Super-Resolution
  with Gradient Sensitive Loss" (arXiv:1809.07099). The Sobel gradient magnitude of the target,
  scaled to [0, 1] per image, is a mask M splitting the image into a high-frequency part M·x and a
  low-frequency part (1 - M)·x; the loss asks the low-frequency parts to agree pixel by pixel and
  the high-frequency parts to agree in their gradients. Written here from that description; the
  weight between the two terms (``weight``) is our choice.
* ``mse_ssim``: MSE plus (1 - SSIM), SSIM as the protocol computes it (srlib.metrics).
* ``ms_ssim_l1``: the mix of Zhao, Gallo, Frosio and Kautz (2017), "Loss Functions for Image
  Restoration with Neural Networks": 0.84 (1 - MS-SSIM) + 0.16 Gaussian-weighted L1. As in their
  paper, the five scales are Gaussian windows of sigma 0.5, 1, 2, 4, 8 at full resolution (no
  downsampling, so small training patches can use them), borders repeated.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .metrics import SSIM_K1, SSIM_K2, ssim_map

#: Sobel's derivative kernels (x: left to right, y: top to bottom).
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
SOBEL_Y = SOBEL_X.T.contiguous()
#: Zhao et al.'s scales and weight of MS-SSIM against L1.
MS_SSIM_SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)
MS_SSIM_ALPHA = 0.84


def mse(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean squared error: what PSNR measures, and what chapters 4-8 trained with."""
    return F.mse_loss(sr, hr)


def sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical Sobel derivatives of (N, 1, H, W), borders replicated."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    kernels = torch.stack([SOBEL_X, SOBEL_Y])[:, None].to(x)
    both = F.conv2d(padded, kernels)
    return both[:, :1], both[:, 1:]


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of (N, 1, H, W): how steep each pixel's neighbourhood is."""
    gx, gy = sobel(x)
    return torch.sqrt(gx * gx + gy * gy)


def edge_mask(hr: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of each image scaled to [0, 1] (min to max): 1 on its strongest
    edge, 0 where it is flattest. A flat image gets 0 everywhere."""
    magnitude = sobel_magnitude(hr)
    low = magnitude.amin(dim=(1, 2, 3), keepdim=True)
    span = magnitude.amax(dim=(1, 2, 3), keepdim=True) - low
    return torch.where(span > 0, (magnitude - low) / span.clamp_min(1e-12), torch.zeros_like(magnitude))


def gradient_sensitive(sr: torch.Tensor, hr: torch.Tensor, weight: float = 0.5) -> torch.Tensor:
    """weight · mean|(1 - M)(sr - hr)| + (1 - weight) · mean over both Sobel directions of
    |∂(M sr) - ∂(M hr)|, with M = ``edge_mask(hr)`` (fixed: no gradient flows through it)."""
    mask = edge_mask(hr).detach()
    flat = ((1 - mask) * (sr - hr)).abs().mean()
    sx, sy = sobel(mask * sr)
    hx, hy = sobel(mask * hr)
    edges = 0.5 * ((sx - hx).abs().mean() + (sy - hy).abs().mean())
    return weight * flat + (1 - weight) * edges


def mse_ssim(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """MSE + (1 - SSIM), SSIM with the protocol's 11 × 11 Gaussian window where it fits."""
    return F.mse_loss(sr, hr) + 1 - ssim_map(sr, hr, data_range=1.0).mean()


def _gaussian(sigma: float, like: torch.Tensor) -> torch.Tensor:
    """A normalised 1-D Gaussian of radius round(3.5 sigma) (11 taps at sigma 1.5, as SSIM's)."""
    radius = max(1, round(3.5 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=like.dtype, device=like.device)
    g = torch.exp(-t * t / (2 * sigma * sigma))
    return g / g.sum()


def _repeat_band(length: int, g: torch.Tensor) -> torch.Tensor:
    """(length, length) matrix of a 1-D filtering by ``g`` with the border samples repeated."""
    r = len(g) // 2
    rows = torch.arange(length, device=g.device)[:, None].expand(length, len(g))
    cols = (rows + torch.arange(len(g), device=g.device)[None, :] - r).clamp(0, length - 1)
    band = torch.zeros(length, length, dtype=g.dtype, device=g.device)
    return band.index_put_((rows, cols), g.expand(length, -1), accumulate=True)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian filtering of (..., H, W), borders repeated (any size of patch), as two matrix
    products: on a CPU 12x faster to train through than a grouped convolution with the long
    kernels of the large sigmas."""
    g = _gaussian(sigma, x)
    return _repeat_band(x.shape[-2], g) @ x @ _repeat_band(x.shape[-1], g).T


def ms_ssim_map(x: torch.Tensor, y: torch.Tensor, sigmas=MS_SSIM_SIGMAS) -> torch.Tensor:
    """Zhao et al.'s per-pixel MS-SSIM of images in [0, 1]: luminance at the largest sigma
    times contrast-structure at every sigma, all at full resolution."""
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    moments = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    result = None
    for sigma in sigmas:
        mx, my, mxx, myy, mxy = _blur(moments, sigma).split(1, dim=1)
        var_x, var_y, cov = mxx - mx * mx, myy - my * my, mxy - mx * my
        cs = (2 * cov + c2) / (var_x + var_y + c2)
        result = cs if result is None else result * cs
    luminance = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return luminance * result


def ms_ssim_l1(sr: torch.Tensor, hr: torch.Tensor, alpha: float = MS_SSIM_ALPHA) -> torch.Tensor:
    """alpha (1 - MS-SSIM) + (1 - alpha) · L1 weighted by the largest scale's Gaussian."""
    structure = 1 - ms_ssim_map(sr, hr).mean()
    weighted_l1 = _blur((sr - hr).abs(), MS_SSIM_SIGMAS[-1]).mean()
    return alpha * structure + (1 - alpha) * weighted_l1


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": mse, "gradient-sensitive": gradient_sensitive, "mse+ssim": mse_ssim, "ms-ssim+l1": ms_ssim_l1}


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A loss by its name in ``LOSSES``, with a one-line error for anything else."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    return LOSSES[name]


def edge_flat_errors(sr: torch.Tensor, hr: torch.Tensor, quantile: float = 0.9) -> tuple[float, float]:
    """RMS error (on the 0-255 scale) on the target's edge pixels (Sobel magnitude in its top
    ``1 - quantile``) and on its flat pixels (the rest): where a loss spends its accuracy."""
    magnitude = sobel_magnitude(hr).flatten()
    error = ((sr - hr) * 255).flatten().square()
    edges = magnitude >= torch.quantile(magnitude, quantile)
    return math.sqrt(float(error[edges].mean())), math.sqrt(float(error[~edges].mean()))
