"""The super-resolution networks of chapters 4-8: SRCNN, FSRCNN, ESPCN, VDSR and SP-VDSR.

Every network works on luma only and has the same call: ``model(lr) -> sr`` with ``lr`` a
float32 tensor (N, 1, h, w) in [0, 1] and ``sr`` (N, 1, scale*h, scale*w). The networks
that start from an interpolated image (SRCNN, VDSR, SP-VDSR's skip path) interpolate
inside ``forward`` with :func:`srlib.resample.resize`, so callers never have to.

Every model also carries ``scale``, ``name`` (its key in :data:`MODELS`), ``options`` (the
keyword options that rebuild it with :func:`build`) and ``receptive_field``: how many LR
pixels away, at most, a change of one input pixel can reach, i.e. the halo a tiled
inference must add on each side.

Two conventions of the numbers quoted in the docstrings (and pinned by the tests):

* parameters, as the papers count them: convolution weights only, no biases and no PReLU
  slopes (:func:`count_parameters` with ``biases=False``);
* multiply-accumulates (MACs) per *output* pixel: every convolution's MACs over one
  forward pass divided by the number of HR output pixels (:func:`macs_per_pixel`).
  Interpolation, activations, bias adds and the pixel shuffle are not counted.

On a CPU, channels-last weights run these networks 1.4-2.8x faster than PyTorch's default
layout; ``srlib.inference.upscale_luma`` uses them there (``benchmarks/bench_inference.py``).
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import math
import numbers
import operator
from typing import Sequence

import torch
from torch import nn

from .resample import get_kernel, resize

INTERPOLATIONS = ("lanczos3", "bicubic", "bilinear")


def _integer(value, what: str, minimum: int) -> int:
    """An int >= minimum, or a one-line ValueError naming the option."""
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or isinstance(value, bool) or number < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return number


def _widths(value: Sequence[int], what: str, count: int) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != count:
        raise ValueError(f"{what} must be {count} filter counts, got {value!r}")
    return tuple(_integer(v, what, 1) for v in value)


def _interpolate(lr: torch.Tensor, scale: int, kernel: str) -> torch.Tensor:
    """The FIR-upscaled input: constant data, so no gradient flows through it, and kept out
    of mixed precision (bfloat16 errs by more than a grey level before any learning; the meta
    device, which has no autocast, serves to count a step's host work)."""
    precision = torch.autocast(lr.device.type, enabled=False) if lr.device.type != "meta" else contextlib.nullcontext()
    with torch.no_grad(), precision:
        return resize(lr, scale, kernel=kernel)


def _add_shuffled(base: torch.Tensor, channels: torch.Tensor, scale: int) -> torch.Tensor:
    """``base + pixel_shuffle(channels, scale)`` in one pass: the shuffle is only a view of
    ``channels`` (channel i·scale + j → sub-pixel (i, j)), several times faster than
    materialising it, in channels_last above all."""
    n, _, h, w = channels.shape
    shuffled = channels.view(n, scale, scale, h, w).permute(0, 3, 1, 4, 2)  # (n, y, i, x, j)
    return (base.reshape(n, h, scale, w, scale) + shuffled).reshape(n, 1, h * scale, w * scale)


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def _reach(kernel: str) -> int:
    """LR pixels an interpolated HR pixel can depend on, on each side of its own LR pixel."""
    return math.ceil(get_kernel(kernel).support) + 1


class SRNetwork(nn.Module):
    """What every network here shares: scale, registry name, options and an input check.
    Each subclass adds its ``receptive_field`` property and ``forward(lr) -> sr``."""

    name = ""
    interpolates_first = False  # True where the layers run on the interpolated image, at HR size

    def __init__(self, scale: int, **options) -> None:
        super().__init__()
        self.scale = _integer(scale, "scale", 2)
        self.options = options

    def check_input(self, lr: torch.Tensor) -> None:
        """Refuse anything but a batch of luma planes, with a message saying what came in."""
        if not isinstance(lr, torch.Tensor) or lr.ndim != 4 or lr.shape[1] != 1:
            shape = tuple(lr.shape) if isinstance(lr, torch.Tensor) else type(lr).__name__
            raise ValueError(f"{self.name} expects a luma batch tensor (N, 1, h, w), got {shape}")

    def extra_repr(self) -> str:
        return f"scale={self.scale}, " + ", ".join(f"{k}={v!r}" for k, v in self.options.items())


class SRCNN(SRNetwork):
    """SRCNN (Dong et al. 2014): the first CNN for SR, three layers read as the steps of
    sparse-coding SR — patch extraction, non-linear mapping, reconstruction.

    It refines a bicubic-upscaled image, so all three layers run at HR size.

    ========  ==========  ========  ==========================
    layer     kernel      filters   role
    ========  ==========  ========  ==========================
    conv+ReLU 9×9         f1 = 64   patch extraction
    conv+ReLU 1×1 or 5×5  f2 = 32   non-linear mapping
    conv      5×5         1         reconstruction
    ========  ==========  ========  ==========================

    ``variant`` names the three kernel sizes: "9-1-5" (the 91-image model) or "9-5-5" (the
    ImageNet model of the benchmark tables). Parameters: 81·f1 + k2²·f1·f2 + 25·f2 =
    8,032 (9-1-5) and 57,184 (9-5-5), as the paper counts them. MACs per output pixel equal
    the parameter count (every layer at HR size): 8,032 and 57,184 whatever the scale.

    The paper trained without padding (each 33×33 input gave a 21×21 output) and padded
    with zeros only at test time; here every layer zero-pads ("same"), so output size =
    scale × input size and training and inference see the same network. Weights start
    from N(0, 0.001²) as in the paper, biases at zero.
    """

    name = "srcnn"
    interpolates_first = True

    def __init__(self, scale: int, variant: str = "9-1-5", f: Sequence[int] = (64, 32)) -> None:
        kernels = _srcnn_kernels(variant)
        f1, f2 = _widths(f, "f", 2)
        super().__init__(scale, variant=variant, f=(f1, f2))
        k1, k2, k3 = kernels
        self.body = nn.Sequential(
            nn.Conv2d(1, f1, k1, padding=k1 // 2), nn.ReLU(inplace=True),
            nn.Conv2d(f1, f2, k2, padding=k2 // 2), nn.ReLU(inplace=True),
            nn.Conv2d(f2, 1, k3, padding=k3 // 2),
        )
        for conv in _convs(self.body):
            nn.init.normal_(conv.weight, 0.0, 1e-3)
            nn.init.zeros_(conv.bias)
        self._radius = sum(k // 2 for k in kernels)

    @property
    def receptive_field(self) -> int:
        return math.ceil(self._radius / self.scale) + _reach("bicubic")

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        self.check_input(lr)
        return self.body(_interpolate(lr, self.scale, "bicubic"))


def _srcnn_kernels(variant: str) -> tuple[int, int, int]:
    parts = variant.split("-") if isinstance(variant, str) else []
    if len(parts) != 3 or not all(p.isdigit() and int(p) % 2 == 1 for p in parts):
        raise ValueError(f"SRCNN variant must be three odd kernel sizes such as '9-1-5' or '9-5-5', "
                         f"got {variant!r}")
    return tuple(int(p) for p in parts)


class FSRCNN(SRNetwork):
    """FSRCNN (Dong et al. 2016): SRCNN made fast — work at LR size, shrink the features
    before the mapping, use small 3×3 filters, and upsample only at the end with a
    transposed convolution whose stride is the scale.

    =============  ======  ===========  =====================================
    layer          kernel  filters      role
    =============  ======  ===========  =====================================
    conv+PReLU     5×5     d = 56       feature extraction (LR)
    conv+PReLU     1×1     s = 12       shrinking
    m × conv+PReLU 3×3     s = 12       mapping, m = 4
    conv+PReLU     1×1     d = 56       expanding
    deconv         9×9     1            stride = scale, upsampling to HR
    =============  ======  ===========  =====================================

    Parameters (weights): 25d + ds + 9ms² + sd + 81d = 12,464 for (56, 12, 4), the paper's
    number; none depends on the scale (the deconvolution's 9×9 kernel is the same at every
    stride), which is why the body can be shared and only the deconvolution retrained
    (:func:`with_new_deconv`, :func:`freeze_all_but_deconv`). The 172 PReLU slopes and the
    biases are not counted. The small FSRCNN-s, (d, s, m) = (32, 5, 1), has 3,937. MACs
    per output pixel: 12,464 per LR pixel spread over scale² HR pixels = 3,116 (×2),
    1,384.9 (×3), 779 (×4).

    The deconvolution uses padding 4 and output_padding scale − 1 so the output is exactly
    scale × input; its taps are centred on HR pixel scale·i of LR pixel i, an offset the
    learned kernel absorbs. Initialisation as in the paper: He (PReLU-aware) for the
    convolutions, N(0, 0.001²) for the deconvolution, zero biases.
    """

    name = "fsrcnn"

    def __init__(self, scale: int, d: int = 56, s: int = 12, m: int = 4) -> None:
        d, s, m = _integer(d, "d", 1), _integer(s, "s", 1), _integer(m, "m", 0)
        super().__init__(scale, d=d, s=s, m=m)
        widths = [(1, d, 5), (d, s, 1)] + [(s, s, 3)] * m + [(s, d, 1)]
        layers: list[nn.Module] = []
        for c_in, c_out, k in widths:
            conv = nn.Conv2d(c_in, c_out, k, padding=k // 2)
            nn.init.kaiming_normal_(conv.weight, a=0.25, nonlinearity="leaky_relu")
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.PReLU(c_out, init=0.25)]
        self.body = nn.Sequential(*layers)
        self.deconv = self._new_deconv(d, self.scale)

    @staticmethod
    def _new_deconv(d: int, scale: int) -> nn.ConvTranspose2d:
        deconv = nn.ConvTranspose2d(d, 1, 9, stride=scale, padding=4, output_padding=scale - 1)
        nn.init.normal_(deconv.weight, 0.0, 1e-3)
        nn.init.zeros_(deconv.bias)
        return deconv

    @property
    def receptive_field(self) -> int:
        return 2 + self.options["m"] + math.ceil(4 / self.scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        self.check_input(lr)
        return self.deconv(self.body(lr))


def freeze_all_but_deconv(model: FSRCNN) -> FSRCNN:
    """Leave only FSRCNN's deconvolution trainable: the paper's recipe for a new scale."""
    if not isinstance(model, FSRCNN):
        raise ValueError(f"freeze_all_but_deconv needs an FSRCNN, got {type(model).__name__}")
    model.requires_grad_(False)
    model.deconv.requires_grad_(True)
    return model


def with_new_deconv(model: FSRCNN, scale: int) -> FSRCNN:
    """A copy of an FSRCNN with the same body weights and a fresh deconvolution for ``scale``.

    Everything in the copy is trainable; call :func:`freeze_all_but_deconv` on it to
    fine-tune only the new layer, as the paper did for ×2 and ×4 from its ×3 model.
    """
    if not isinstance(model, FSRCNN):
        raise ValueError(f"with_new_deconv needs an FSRCNN, got {type(model).__name__}")
    scale = _integer(scale, "scale", 2)
    new = copy.deepcopy(model)
    new.scale = scale
    new.deconv = FSRCNN._new_deconv(model.options["d"], scale).to(model.deconv.weight)
    return new.requires_grad_(True)


class ESPCN(SRNetwork):
    """ESPCN (Shi et al. 2016): the sub-pixel convolution — compute r² output channels at
    LR size and let a depth-to-space step (pixel shuffle) arrange them into the r× larger
    image, so every layer runs on the small image and no zeros are ever convolved.

    ===========  ======  ========  =========================
    layer        kernel  filters   role
    ===========  ======  ========  =========================
    conv+tanh    5×5     f1 = 64   feature maps (LR)
    conv+tanh    3×3     f2 = 32   feature maps (LR)
    conv         3×3     r²        sub-pixel channels (LR)
    PixelShuffle                   r² channels → r× image
    ===========  ======  ========  =========================

    Parameters: 25·64 + 9·64·32 + 9·32·r² = 21,184 (×2), 22,624 (×3, the paper's ≈ 22.6K),
    24,640 (×4). MACs per output pixel: that count per LR pixel over r² HR pixels =
    5,296 (×2), 2,513.8 (×3), 1,540 (×4). PyTorch's default initialisation.
    """

    name = "espcn"

    def __init__(self, scale: int, f: Sequence[int] = (64, 32)) -> None:
        f1, f2 = _widths(f, "f", 2)
        super().__init__(scale, f=(f1, f2))
        self.body = nn.Sequential(
            nn.Conv2d(1, f1, 5, padding=2), nn.Tanh(),
            nn.Conv2d(f1, f2, 3, padding=1), nn.Tanh(),
            nn.Conv2d(f2, self.scale ** 2, 3, padding=1),
            nn.PixelShuffle(self.scale),
        )

    @property
    def receptive_field(self) -> int:
        return 4

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        self.check_input(lr)
        return self.body(lr)


class VDSR(SRNetwork):
    """VDSR (Kim et al. 2016): a very deep stack of 3×3 convolutions that predicts only the
    residual between the bicubic-upscaled input and the ground truth. Learning the residual
    is what lets a 20-layer network converge in hours instead of weeks.

    ==============  ======  =========  ===================================
    layer           kernel  filters    role
    ==============  ======  =========  ===================================
    conv+ReLU       3×3     64         first layer, on the bicubic image
    18 × conv+ReLU  3×3     64         depth − 2 hidden layers
    conv            3×3     1          residual
    (+ input)                          global skip: output = bicubic + residual
    ==============  ======  =========  ===================================

    Parameters: 9·64 + 18·9·64² + 9·64 = 664,704 for depth 20, width 64, the paper's count.
    MACs per output pixel: the same 664,704 (every layer at HR size), whatever the scale.
    Zero padding keeps every layer at HR size, as the paper does. He (Kaiming normal)
    weights, zero biases. ``refine`` runs the network on an image already interpolated to HR
    size, whatever its scale: the paper trains one network on ×2, ×3 and ×4 patches mixed.
    """

    name = "vdsr"
    interpolates_first = True

    def __init__(self, scale: int, depth: int = 20, width: int = 64) -> None:
        depth, width = _integer(depth, "depth", 2), _integer(width, "width", 1)
        super().__init__(scale, depth=depth, width=width)
        layers: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)
        for conv in _convs(self.body):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    @property
    def receptive_field(self) -> int:
        return math.ceil(self.options["depth"] / self.scale) + _reach("bicubic")

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        self.check_input(lr)
        return self.refine(_interpolate(lr, self.scale, "bicubic"))

    def refine(self, upscaled: torch.Tensor) -> torch.Tensor:
        """The bicubic-upscaled luma ``upscaled`` plus the residual the network predicts."""
        return upscaled + self.body(upscaled)


class SPVDSR(SRNetwork):
    """SP-VDSR (the article's proposal): VDSR's residual learning with ESPCN's sub-pixel
    convolution. A shallow stack runs at LR size and produces the residual as scale²
    channels; a pixel shuffle places them at HR size, where they are added to an FIR
    interpolation of the input (Lanczos-3 by default). Cheap enough for real-time video.

    ==================  ======  ==========  ==========================================
    layer               kernel  filters     role
    ==================  ======  ==========  ==========================================
    depth × conv+LReLU  3×3     width = 8   ``features`` at LR size, depth 5, slope 0.1
    conv                3×3     scale²      ``residual``, as sub-pixel channels
    pixel shuffle                           scale² channels → residual at HR size
    (+ interpolation)                       output = interpolate(lr) + residual
    ==================  ======  ==========  ==========================================

    Leaky ReLU as the article chose (it keeps hidden units from dying; the output is linear
    either way, so the sign of the residual does not need it). Parameters for (5, 8):
    9·8 + 4·9·8² + 9·8·scale² = 2,664 (×2), 3,024 (×3), 3,528 (×4). MACs per output pixel
    (interpolation not counted; a separable Lanczos-3 adds about ten multiply-adds per
    output pixel): 2,376 / scale² + 72 = 666 (×2), 336 (×3), 220.5 (×4) — a thousandth of VDSR.
    He weights (Leaky-ReLU-aware), zero biases; with a zero last layer the network is its
    interpolation exactly. The shuffle and the sum are done in one pass (``_add_shuffled``).
    """

    name = "spvdsr"

    def __init__(self, scale: int, depth: int = 5, width: int = 8, interpolation: str = "lanczos3",
                 negative_slope: float = 0.1) -> None:
        depth, width = _integer(depth, "depth", 1), _integer(width, "width", 1)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
        slope_ok = isinstance(negative_slope, numbers.Real) and not isinstance(negative_slope, bool)
        if not slope_ok or not 0 <= negative_slope < 1:
            raise ValueError(f"negative_slope must be a number in [0, 1), got {negative_slope!r}")
        super().__init__(scale, depth=depth, width=width, interpolation=interpolation,
                         negative_slope=float(negative_slope))
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Conv2d(1 if i == 0 else width, width, 3, padding=1),
                       nn.LeakyReLU(negative_slope, inplace=True)]
        self.features = nn.Sequential(*layers)
        self.residual = nn.Conv2d(width, self.scale ** 2, 3, padding=1)
        for conv in _convs(self):
            nn.init.kaiming_normal_(conv.weight, a=negative_slope, nonlinearity="leaky_relu")
            nn.init.zeros_(conv.bias)

    @property
    def receptive_field(self) -> int:
        return max(self.options["depth"] + 1, _reach(self.options["interpolation"]))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        self.check_input(lr)
        upscaled = _interpolate(lr, self.scale, self.options["interpolation"])
        return _add_shuffled(upscaled, self.residual(self.features(lr)), self.scale)


MODELS: dict[str, type[SRNetwork]] = {cls.name: cls for cls in (SRCNN, FSRCNN, ESPCN, VDSR, SPVDSR)}


def build(name: str, scale: int, **options) -> SRNetwork:
    """The network registered as ``name`` for ``scale``, with a one-line error for bad input."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    cls = MODELS[name]
    known = list(inspect.signature(cls).parameters)[1:]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"{name} has no option {', '.join(map(repr, unknown))}; "
                         f"its options are {', '.join(known)}")
    return cls(scale, **options)


def count_parameters(model: nn.Module, biases: bool = False) -> int:
    """Learnable numbers in ``model``. ``biases=False`` counts convolution weights only (the
    papers' convention); ``biases=True`` counts every parameter (biases, PReLU slopes too)."""
    if biases:
        return sum(p.numel() for p in model.parameters())
    convs = (nn.Conv2d, nn.ConvTranspose2d)
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, convs))


def macs_per_pixel(model: SRNetwork, lr_size: tuple[int, int] = (32, 32)) -> float:
    """Convolution multiply-accumulates per HR output pixel, measured on one forward pass.

    A Conv2d costs (output elements) × (input channels per group) × kH × kW; a
    ConvTranspose2d (input elements) × (output channels per group) × kH × kW, every input
    value being scattered through the whole kernel. Everything else is free by convention.
    """
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        total += output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)

    def deconv_hook(module: nn.ConvTranspose2d, inputs, output) -> None:
        nonlocal total
        total += inputs[0].numel() * module.out_channels // module.groups * math.prod(module.kernel_size)

    hooks = [m.register_forward_hook(deconv_hook if isinstance(m, nn.ConvTranspose2d) else conv_hook)
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        parameter = next(model.parameters())
        lr = torch.zeros(1, 1, *lr_size, device=parameter.device, dtype=parameter.dtype)
        with torch.no_grad():
            out = model(lr)
    finally:
        for hook in hooks:
            hook.remove()
    return total / (out.shape[-2] * out.shape[-1])
