"""The book's networks in the reader's browser: weights exported for JavaScript, and the page.

``export_model`` turns a network into the layer list that ``srlib/web/engine.js`` runs (a
hand-written forward pass in plain JavaScript: convolutions, FSRCNN's transposed convolution,
the pixel shuffle, the FIR interpolations), with float32 weights as base64. ``bundle`` exports
the shipped weights with the colour matrices of ``srlib.color``, and ``app_html`` makes one
self-contained block of HTML: choose or drop an image, pick a network and a scale, compare the
result with bicubic and Lanczos-3 under a slider, zoom, download. It needs no server and no
network connection; the work runs in Web Workers, in strips, as ``srlib.inference.upscale``.

Why no runtime such as ONNX Runtime Web: these networks are a few small layers, a generated
JavaScript convolution runs them at about 1 GMAC/s per core (``benchmarks/bench_browser.py``),
and the whole page weighs less than the runtime's WebAssembly binary alone.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import color, inference, models

WEB_DIR = Path(__file__).with_name("web")
#: Largest output the page makes, in pixels (the page says so and refuses anything above).
MAX_OUTPUT_PIXELS = 32_000_000
#: Multiply-adds per output pixel above which a network stays off the page unless named: VDSR's
#: 664,704 would take minutes per photograph at the engine's ~1 GMAC/s per core, and carry
#: 2.7 MB of weights for each of its three scales.
PAGE_MAX_MACS = 100_000
_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.LeakyReLU: "leaky", nn.PReLU: "prelu"}


def _floats(tensor: torch.Tensor) -> str:
    """A tensor's values as float32 little-endian bytes in base64 (what engine.js decodes)."""
    return base64.b64encode(tensor.detach().cpu().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()).decode()


def _conv(conv: nn.Conv2d, act: nn.Module | None) -> dict:
    k = conv.kernel_size[0]
    if (conv.kernel_size != (k, k) or conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1
            or conv.padding != (k // 2, k // 2) or conv.padding_mode != "zeros"):
        raise ValueError(f"cannot export {conv}: only square, stride-1, 'same' zero-padded convolutions")
    layer = {"op": "conv", "cin": conv.in_channels, "cout": conv.out_channels, "k": k, "act": None,
             # (cout, cin, ky, kx) -> (ky, kx, cin, cout): the engine's innermost loop runs over cout
             "weight": _floats(conv.weight.permute(2, 3, 1, 0)), "bias": _floats(conv.bias)}
    if act is not None:
        layer["act"] = _ACTIVATIONS[type(act)]
        if isinstance(act, nn.LeakyReLU):
            layer["slope"] = _floats(torch.tensor([act.negative_slope]))
        elif isinstance(act, nn.PReLU):
            layer["slope"] = _floats(act.weight.expand(conv.out_channels))
    return layer


def _deconv(deconv: nn.ConvTranspose2d) -> dict:
    k, s = deconv.kernel_size[0], deconv.stride[0]
    if deconv.out_channels != 1 or deconv.kernel_size != (k, k) or deconv.stride != (s, s) or deconv.groups != 1:
        raise ValueError(f"cannot export {deconv}: only square transposed convolutions to one channel")
    return {"op": "deconv", "cin": deconv.in_channels, "k": k, "stride": s, "pad": deconv.padding[0],
            "weight": _floats(deconv.weight[:, 0].permute(1, 2, 0)), "bias": _floats(deconv.bias)}


def _layers(modules: list[nn.Module]) -> list[dict]:
    """Convolutions with the activation that follows each, transposed convolutions, shuffles."""
    out: list[dict] = []
    for i, module in enumerate(modules):
        following = modules[i + 1] if i + 1 < len(modules) else None
        if isinstance(module, nn.Conv2d):
            out.append(_conv(module, following if type(following) in _ACTIVATIONS else None))
        elif isinstance(module, nn.ConvTranspose2d):
            out.append(_deconv(module))
        elif isinstance(module, nn.PixelShuffle):
            out.append({"op": "shuffle"})
        elif type(module) not in _ACTIVATIONS or not isinstance(modules[i - 1] if i else None, nn.Conv2d):
            raise ValueError(f"cannot export {type(module).__name__}")
    return out


def export_model(model: nn.Module) -> dict:
    """A network as engine.js runs it: name, scale, options, receptive field and layers."""
    if isinstance(model, models.SRCNN):
        layers = [{"op": "interpolate", "kernel": "bicubic"}] + _layers(list(model.body))
    elif isinstance(model, models.VDSR):
        layers = ([{"op": "interpolate", "kernel": "bicubic"}, {"op": "skip", "kernel": None}]
                  + _layers(list(model.body)) + [{"op": "add"}])
    elif isinstance(model, models.FSRCNN):
        layers = _layers(list(model.body) + [model.deconv])
    elif isinstance(model, models.ESPCN):
        layers = _layers(list(model.body))
    elif isinstance(model, models.SPVDSR):
        layers = ([{"op": "skip", "kernel": model.options["interpolation"]}]
                  + _layers(list(model.features) + [model.residual, nn.PixelShuffle(model.scale)]) + [{"op": "add"}])
    else:
        raise ValueError(f"cannot export {type(model).__name__}: srcnn, fsrcnn, espcn, vdsr or spvdsr")
    widest = max(m.out_channels for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    return {"model": model.name, "scale": int(model.scale), "options": model.options,
            "halo": max(int(model.receptive_field), inference._CHROMA_REACH),
            # float32 values per input pixel in the widest activation: sizes the page's strips
            "widest": widest * (int(model.scale) ** 2 if model.interpolates_first else 1),
            "macs_per_input_pixel": models.macs_per_pixel(model) * int(model.scale) ** 2, "layers": layers}


def colour_matrices() -> dict:
    """srlib.color's studio-range matrices: RGB (0-255) to YCbCr, and back."""
    return {"forward": color._FORWARD["studio"].ravel().tolist(), "offset": color._OFFSET["studio"].tolist(),
            "inverse": inference._STUDIO_INVERSE.ravel().tolist()}


def bundle(names: list[str] | None = None) -> dict:
    """The shipped weights exported (those named, or all within ``PAGE_MAX_MACS``), in the
    manifest's order, with the colour matrices: what the page and ``srlib export`` carry."""
    entries = inference.pretrained_models()
    if names is not None:
        known = {e.name for e in entries}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"no shipped weights named {', '.join(unknown)}; `srlib models` lists them")
        entries = [e for e in entries if e.name in names]
    exported = []
    for entry in entries:
        model = inference.load_pretrained(entry.name, entry.scale)
        if names is None and models.macs_per_pixel(model) > PAGE_MAX_MACS:
            continue
        exported.append({"name": entry.name, "training_data": entry.training_data, "psnr_set5": entry.psnr_set5,
                         **export_model(model)})
    return {"format": "srlib-web-1", "colour": colour_matrices(), "models": exported}


def app_html(names: list[str] | None = None) -> str:
    """The whole page as one block of HTML: styles, the engine, the weights, the interface."""
    data = json.dumps(bundle(names), separators=(",", ":")).replace("</", "<\\/")  # no "</script>" inside
    engine = (WEB_DIR / "engine.js").read_text(encoding="utf-8")
    app = (WEB_DIR / "app.js").read_text(encoding="utf-8")
    body = (WEB_DIR / "app.html").read_text(encoding="utf-8").replace("__MAX_MP__", f"{MAX_OUTPUT_PIXELS / 1e6:g}")
    return (body + f'<script type="application/json" class="srlib-weights">{data}</script>\n'
            f"<script>\nvar SRLIB_MAX_OUTPUT_PIXELS = {MAX_OUTPUT_PIXELS};\n{engine}\n{app}</script>\n")
