"""RGB <-> YCbCr and chroma subsampling: why SR papers measure luma only, and how video stores colour.

Two BT.601 conventions, both on the 0-255 scale whatever the dtype:

* ``"studio"`` — MATLAB's ``rgb2ycbcr``: Y in [16, 235], Cb and Cr in [16, 240]. The SR
  papers' evaluation protocol measures this Y (step 4 of the protocol in srlib.metrics and chapter 3).
* ``"full"`` — JPEG/JFIF: Y, Cb and Cr all span [0, 255], neutral chroma at 128.

Numpy images carry the channels last, (..., 3); torch tensors carry them at dim -3,
(..., 3, H, W). uint8 input gives float64 output; float input keeps its dtype. Only
``rgb_to_y`` returns uint8, rounded exactly as MATLAB rounds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, TypeVar

import numpy as np
import torch

from .resample import resize

Image = TypeVar("Image", np.ndarray, torch.Tensor)

#: MATLAB's rgb2ycbcr matrix (RGB in [0, 1] -> YCbCr on the 0-255 scale) and offset.
_STUDIO_T = np.array([[65.481, 128.553, 24.966],
                      [-37.797, -74.203, 112.0],
                      [112.0, -93.786, -18.214]])
_KR, _KB = 0.299, 0.114  # BT.601 luma weights of red and blue; green gets the rest
_FULL_T = np.array([[_KR, 1 - _KR - _KB, _KB],
                    [-_KR, -(1 - _KR - _KB), 1 - _KB],
                    [1 - _KR, -(1 - _KR - _KB), -_KB]]) / np.array([[1.0], [2 * (1 - _KB)], [2 * (1 - _KR)]])

# Forward matrices act on RGB in 0-255; MATLAB forms its uint8 matrix as (1/255) * T.
_FORWARD = {"studio": (1 / 255) * _STUDIO_T, "full": _FULL_T}
_OFFSET = {"studio": np.array([16.0, 128.0, 128.0]), "full": np.array([0.0, 128.0, 128.0])}
_INVERSE = {name: np.linalg.inv(matrix) for name, matrix in _FORWARD.items()}

#: Chroma subsampling factor (rows, columns) of each J:a:b scheme.
SCHEMES: dict[str, tuple[int, int]] = {"4:4:4": (1, 1), "4:2:2": (1, 2), "4:2:0": (2, 2), "4:1:1": (1, 4)}
#: Horizontal chroma siting: "center" between luma samples (JPEG, MPEG-1) or "left",
#: co-sited with the left luma sample of each group (MPEG-2 and H.264 4:2:0 default).
SITINGS = ("center", "left")


def _convention(convention: str) -> str:
    if convention not in _FORWARD:
        raise ValueError(f"unknown YCbCr convention {convention!r}; choose 'studio' or 'full'")
    return convention


def _affine(image: Image, matrix: np.ndarray, offset: np.ndarray, pre_offset: np.ndarray) -> Image:
    """``matrix @ (pixel - pre_offset) + offset`` over the colour axis of a numpy array or tensor."""
    if isinstance(image, torch.Tensor):
        if image.ndim < 3 or image.shape[-3] != 3:
            raise ValueError(f"expected a tensor (..., 3, H, W), got shape {tuple(image.shape)}")
        if image.dtype == torch.uint8:
            image = image.to(torch.float64)
        elif not image.is_floating_point():
            raise ValueError(f"unsupported tensor dtype {image.dtype}; use uint8 or float")
        like = {"dtype": image.dtype, "device": image.device}
        m = torch.as_tensor(matrix, **like)
        before = torch.as_tensor(pre_offset, **like)[:, None, None]
        after = torch.as_tensor(offset, **like)[:, None, None]
        return torch.einsum("ij,...jhw->...ihw", m, image - before) + after
    array = np.asarray(image)
    if array.ndim < 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an array (..., 3) with colour last, got shape {array.shape}")
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"unsupported dtype {array.dtype}; use uint8 or float")
    out = (array.astype(np.float64) - pre_offset) @ matrix.T + offset
    return out if array.dtype == np.uint8 else out.astype(array.dtype)


def rgb_to_ycbcr(rgb: Image, convention: str = "studio") -> Image:
    """RGB (0-255 scale) to BT.601 YCbCr in the "studio" (MATLAB) or "full" (JPEG) convention."""
    name = _convention(convention)
    return _affine(rgb, _FORWARD[name], _OFFSET[name], np.zeros(3))


def ycbcr_to_rgb(ycbcr: Image, convention: str = "studio") -> Image:
    """Invert ``rgb_to_ycbcr``: float RGB on the 0-255 scale, neither clipped nor rounded."""
    name = _convention(convention)
    return _affine(ycbcr, _INVERSE[name], np.zeros(3), _OFFSET[name])


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round non-negative values to the nearest integer, halves up, as MATLAB's uint8() does.

    (``np.round`` sends halves to the even neighbour, which is not what MATLAB does.)
    """
    whole = np.floor(x)
    return whole + (x - whole >= 0.5)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """Studio-range luma of a uint8 RGB (H, W, 3) or grey (H, W) image as uint8, bit-exact
    with MATLAB's ``rgb2ycbcr`` on uint8 (grey is treated as R = G = B).

    MATLAB evaluates ``((T1*R + T2*G) + T3*B) + 16`` in double with ``T = (1/255) * [65.481
    128.553 24.966]`` (imlincomb's order) and rounds halves up; 194 of the 2^24 colours sit on
    an exact half, so the order of the sums matters and is kept here.
    """
    array = np.asarray(rgb)
    if array.dtype != np.uint8:
        raise ValueError(f"rgb_to_y needs a uint8 image (the protocol rounds uint8 luma), got {array.dtype}")
    if array.ndim == 2:
        r = g = b = array.astype(np.float64)
    elif array.ndim == 3 and array.shape[2] == 3:
        r, g, b = (array[..., c].astype(np.float64) for c in range(3))
    else:
        raise ValueError(f"expected an RGB (H, W, 3) or grey (H, W) image, got shape {array.shape}")
    t = _FORWARD["studio"][0]
    y = t[0] * r + t[1] * g
    y += t[2] * b
    y += 16.0
    return round_half_away(y).astype(np.uint8)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return round_half_away(np.clip(values, 0.0, 255.0)).astype(np.uint8)


@dataclass(frozen=True)
class ChromaPlanes:
    """A YCbCr image with subsampled chroma: full-size ``y`` (H, W) and smaller ``cb``/``cr``
    of size (ceil(H / rows factor), ceil(W / columns factor)), all float64 on the 0-255 scale."""

    y: np.ndarray
    cb: np.ndarray
    cr: np.ndarray
    scheme: str
    siting: str
    convention: str


def _resample_axis(plane: np.ndarray, axis: int, length: int, kernel: str, offset: float) -> np.ndarray:
    """Resize one axis of a 2-D plane, leaving the other untouched (even for a blurring kernel)."""
    lines = torch.from_numpy(np.ascontiguousarray(np.moveaxis(plane, axis, -1)))[:, None, :]  # 1 x n images
    out = resize(lines, size=(1, length), kernel=kernel, offset=(0.0, offset))[:, 0, :].numpy()
    return np.moveaxis(out, -1, axis)


def _check_scheme(scheme: str, siting: str) -> tuple[int, int]:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown chroma scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if siting not in SITINGS:
        raise ValueError(f"unknown chroma siting {siting!r}; choose 'center' or 'left'")
    return SCHEMES[scheme]


def _siting_offset(fx: int, siting: str) -> float:
    """Horizontal offset, in luma columns, of a chroma sample from the centre of the ``fx``
    columns it stands for: 0 when centred, -(fx - 1) / 2 on the group's first column."""
    return -(fx - 1) / 2 if siting == "left" else 0.0


def chroma_positions(scheme: str, siting: str, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates, in luma pixels (0 = centre of the first), at which
    ``subsample_chroma`` places the chroma samples of an (H, W) image: for diagrams and checks."""
    fy, fx = _check_scheme(scheme, siting)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (height, width) of positive sizes, got {shape!r}")
    h, w = (int(n) for n in shape)
    rows = (np.arange(-(-h // fy)) + 0.5) * fy - 0.5
    cols = (np.arange(-(-w // fx)) + 0.5) * fx - 0.5 + _siting_offset(fx, siting)
    return rows, cols


def _check_rgb_uint8(rgb: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(rgb)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{what} needs a uint8 RGB image (H, W, 3), got {array.dtype} {array.shape}")
    return array


def subsample_chroma(rgb: np.ndarray, scheme: str = "4:2:0", *, kernel: str = "box",
                     siting: str = "center", convention: str = "full") -> ChromaPlanes:
    """Convert uint8 RGB to YCbCr and shrink Cb and Cr by the scheme's factors with ``kernel``.

    The image is mirror-padded to a multiple of the factors first (as JPEG pads its blocks),
    so every chroma sample covers a whole group of luma samples. With ``siting="left"`` the
    horizontal chroma samples sit on the first luma column of each group instead of its centre.
    """
    array = _check_rgb_uint8(rgb, "subsample_chroma")
    fy, fx = _check_scheme(scheme, siting)
    ycc = rgb_to_ycbcr(array, _convention(convention))
    h, w = array.shape[:2]
    pad = ((0, -h % fy), (0, -w % fx))
    chroma = []
    for plane in (ycc[..., 1], ycc[..., 2]):
        plane = np.pad(plane, pad, mode="symmetric")
        if fy > 1:
            plane = _resample_axis(plane, 0, plane.shape[0] // fy, kernel, 0.0)
        if fx > 1:
            # Sample j of the shrunk row sits at input column (j + 0.5) * fx - 0.5 + offset.
            plane = _resample_axis(plane, 1, plane.shape[1] // fx, kernel, _siting_offset(fx, siting))
        chroma.append(plane)
    return ChromaPlanes(ycc[..., 0], chroma[0], chroma[1], scheme, siting, convention)


def upsample_chroma(planes: ChromaPlanes, *, kernel: str = "triangle") -> np.ndarray:
    """Reconstruct uint8 RGB from ``ChromaPlanes``: chroma upsampled with ``kernel`` at the
    planes' siting, converted back, clipped and rounded."""
    fy, fx = _check_scheme(planes.scheme, planes.siting)
    h, w = planes.y.shape
    full = []
    for plane in (planes.cb, planes.cr):
        if fy > 1:
            plane = _resample_axis(plane, 0, plane.shape[0] * fy, kernel, 0.0)
        if fx > 1:
            # Luma column x sits at chroma coordinate x / fx when chroma is left-sited.
            plane = _resample_axis(plane, 1, plane.shape[1] * fx, kernel, -_siting_offset(fx, planes.siting) / fx)
        full.append(plane[:h, :w])
    ycc = np.stack([planes.y, full[0], full[1]], axis=-1)
    return _to_uint8(ycbcr_to_rgb(ycc, planes.convention))


def chroma_roundtrip(rgb: np.ndarray, scheme: str = "4:2:0", *, down_kernel: str = "box",
                     up_kernel: str = "triangle", siting: str = "center",
                     convention: str = "full") -> np.ndarray:
    """What a uint8 RGB image looks like after storing its chroma in ``scheme`` and decoding it.

    The defaults mimic libjpeg: 2x2 averaging to encode, "fancy" (triangle) upsampling to decode.
    """
    planes = subsample_chroma(rgb, scheme, kernel=down_kernel, siting=siting, convention=convention)
    return upsample_chroma(planes, kernel=up_kernel)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """The colour planes (H, W, 3) of a grey (H, W), RGB or RGBA image: grey repeated as
    R = G = B, alpha left out (a view where no copy is needed)."""
    array = np.asarray(image)
    return np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array[..., :3]


def upscale_rgb(rgb: np.ndarray, scale: float, y_upscaler: Callable[[np.ndarray], np.ndarray],
                chroma_kernel: str = "lanczos3") -> np.ndarray:
    """Upscale a uint8 colour image the way SR papers do: a luma-only model on Y, a plain
    kernel on Cb, Cr (and alpha), then back to uint8 RGB.

    ``y_upscaler`` receives the studio-range luma as a float64 (H, W) numpy array on the
    0-255 scale (unrounded, 16-235) and must return the upscaled luma on the same scale, of
    size (ceil(H * scale), ceil(W * scale)) as ``resample.resize`` would give. Accepts
    (H, W, 3), (H, W, 4) with alpha passed through, or grey (H, W) treated as R = G = B.
    """
    array = np.asarray(rgb)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"upscale_rgb needs a uint8 image (H, W), (H, W, 3) or (H, W, 4), "
                         f"got {array.dtype} {array.shape}")
    ycc = rgb_to_ycbcr(as_rgb(array), "studio")
    y = np.asarray(y_upscaler(ycc[..., 0]), dtype=np.float64)
    h, w = array.shape[:2]
    expected = (math.ceil(h * scale - 1e-9), math.ceil(w * scale - 1e-9))
    if y.shape != expected:
        raise ValueError(f"y_upscaler returned shape {y.shape}, expected {expected} for scale {scale}")
    chroma = resize(ycc[..., 1:], scale, kernel=chroma_kernel)
    out = _to_uint8(ycbcr_to_rgb(np.concatenate([y[..., None], chroma], axis=2), "studio"))
    if array.ndim == 2:
        return out[..., 0]
    if array.shape[2] == 4:
        alpha = resize(array[..., 3], scale, kernel=chroma_kernel)
        out = np.concatenate([out, alpha[..., None]], axis=2)
    return out
