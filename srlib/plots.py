"""Figure helpers shared by the chapters: one style, and figures saved for regression tests."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker
import matplotlib.pyplot as plt
import numpy as np
import torch

from .models import count_parameters, macs_per_pixel

FIGURE_DPI = 100


def setup_style() -> None:
    """Apply the book's matplotlib style (fixed sizes and fonts keep figures reproducible)."""
    matplotlib.rcParams.update({
        "figure.dpi": FIGURE_DPI,
        "savefig.dpi": FIGURE_DPI,
        "font.size": 9,
        "axes.titlesize": 9,
        "axes.grid": False,
        "image.interpolation": "nearest",
        "image.cmap": "gray",
        "svg.hashsalt": "srlib",
    })


def save_figure(fig: plt.Figure, name: str) -> None:
    """Write ``fig`` to ``$SRLIB_FIGURE_DIR/name.png`` when the variable is set.

    ``make test`` sets it so tests/test_figures.py can compare every chapter figure with
    its committed baseline; ``make baselines`` points it at tests/baselines.
    """
    folder = os.environ.get("SRLIB_FIGURE_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fig.savefig(Path(folder) / f"{name}.png", dpi=FIGURE_DPI, metadata={"Software": None})


def glue_figure(name: str, fig: plt.Figure) -> None:
    """Glue ``fig`` for a ``{glue:figure}`` caption in the book, then save it (see save_figure).

    Outside Jupyter Book (e.g. on Colab without myst-nb) the figure is simply displayed.
    The glued image is rendered before any saving because a layout engine may place things
    differently on a figure's second drawing: so the notebook output is the same whether or
    not $SRLIB_FIGURE_DIR is set (``make book`` leaves it unset, ``make test`` sets it).
    """
    try:
        from myst_nb import glue
    except ImportError:
        from IPython.display import display
        display(fig)
    else:
        glue(name, fig, display=False)
    save_figure(fig, name)
    plt.close(fig)


def show_images(images: list[np.ndarray], titles: list[str], *, ncols: int | None = None,
                size: float = 3.0, vmax: float | None = None) -> plt.Figure:
    """Lay out grey or RGB images side by side, without axes, at equal scale."""
    ncols = ncols or len(images)
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        image = np.asarray(image)
        kwargs = {} if image.ndim == 3 else {"cmap": "gray", "vmin": 0, "vmax": vmax or (255 if image.dtype == np.uint8 else image.max())}
        ax.imshow(image, **kwargs)
        ax.set_title(title)
    fig.tight_layout()
    return fig


# --- figures of the network chapters (4-8) -------------------------------------------------

LR_COLOUR, HR_COLOUR, CHANGE_COLOUR = "#cfe2f3", "#fce5cd", "#d9c6ec"
_ACTIVATIONS = {"ReLU": "ReLU", "PReLU": "PReLU", "Tanh": "tanh", "LeakyReLU": "leaky ReLU",
                "Sigmoid": "sigmoid", "ELU": "ELU", "GELU": "GELU"}


@dataclass
class Layer:
    """One step of a network's forward pass as drawn by :func:`draw_architecture`.

    ``where`` is "LR" or "HR" (the resolution the step runs at) or "up" (it changes the
    resolution); ``count`` > 1 stands for that many identical consecutive steps.
    """
    label: str
    detail: str
    where: str
    channels: int
    activation: str = ""
    count: int = 1


def _conv_layer(module, shape_in, shape_out, lr_size) -> Layer:
    kernel = "×".join(map(str, module.kernel_size))
    channels = f"{shape_in[1]}→{shape_out[1]}"
    if isinstance(module, torch.nn.ConvTranspose2d):
        return Layer(f"deconv {kernel}", f"{channels}, stride {module.stride[0]}", "up", shape_out[1])
    return Layer(f"conv {kernel}", channels, "LR" if tuple(shape_out[-2:]) == lr_size else "HR", shape_out[1])


def describe_layers(model: torch.nn.Module,
                    lr_size: tuple[int, int] = (16, 16)) -> tuple[list[Layer], str | None]:
    """The steps of one forward pass of an srlib network, found by running it on a random
    LR image: its layers in execution order (activations folded into the layer before,
    identical runs merged), plus the resolution changes that are not modules —
    interpolation before the first layer, a pixel shuffle done as a view. Also returns
    where a global skip starts ("input" or "interpolation"), or None without one."""
    for attribute in ("scale", "options"):
        if not hasattr(model, attribute):
            raise ValueError(f"describe_layers needs an srlib model (with .scale and .options), "
                             f"got {type(model).__name__}")
    scale, kernel = int(model.scale), model.options.get("interpolation", "bicubic")
    parameter = next(model.parameters())
    lr = torch.rand(1, 1, *lr_size, generator=torch.Generator().manual_seed(0)).to(parameter)
    trace = []
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda m, i, o: trace.append((m, tuple(i[0].shape), o.detach().clone())))
             for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(lr)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if not trace:
        raise ValueError(f"{type(model).__name__} ran no layer")
    layers: list[Layer] = []
    if tuple(trace[0][1][-2:]) != tuple(lr_size):
        layers.append(Layer(f"{kernel} ×{scale}", "interpolation", "up", 1))
    for module, shape_in, output in trace:
        name = type(module).__name__
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            layers.append(_conv_layer(module, shape_in, tuple(output.shape), tuple(lr_size)))
        elif isinstance(module, torch.nn.PixelShuffle):
            layers.append(Layer(f"pixel shuffle ×{module.upscale_factor}", f"{shape_in[1]}→{output.shape[1]}",
                                "up", output.shape[1]))
        elif layers and tuple(output.shape) == shape_in and not layers[-1].activation:
            layers[-1].activation = _ACTIVATIONS.get(name, name)
        else:
            where = "HR" if output.shape[-1] > lr_size[1] else "LR"
            layers.append(Layer(name, f"{shape_in[1]}→{output.shape[1]}", where, output.shape[1]))
    last = trace[-1][2]
    if last.shape != out.shape:
        if last.shape[1] != scale ** 2 or last.shape[-1] * scale != out.shape[-1]:
            raise ValueError(f"cannot tell how {type(model).__name__} turns {tuple(last.shape)} "
                             f"into {tuple(out.shape)}")
        layers.append(Layer(f"pixel shuffle ×{scale}", f"{scale ** 2}→1", "up", 1))
        last = torch.nn.functional.pixel_shuffle(last, scale)
    skip = None
    if not torch.equal(last, out):
        skip = "interpolation" if layers[0].detail == "interpolation" else "input"
    merged: list[Layer] = []
    for layer in layers:
        previous = merged[-1] if merged else None
        if previous and (previous.label, previous.detail, previous.where, previous.activation) == \
                (layer.label, layer.detail, layer.where, layer.activation):
            previous.count += 1
        else:
            merged.append(layer)
    return merged, skip


def _box(ax, x: float, height: float, text: str, colour: str) -> None:
    ax.add_patch(matplotlib.patches.FancyBboxPatch((x - 0.42, -height / 2), 0.84, height, facecolor=colour,
                                                   edgecolor="0.3", boxstyle="round,pad=0.02,rounding_size=0.06"))
    ax.text(x, 0, text, ha="center", va="center", fontsize=7.5)


def draw_architecture(model: torch.nn.Module, *, title: str | None = None) -> plt.Figure:
    """A network drawn from the model object: one box per layer (kernel, channels,
    activation), coloured by the resolution it runs at, the steps that change the
    resolution, a global skip if any, and the weights and MACs per HR pixel in the title."""
    layers, skip = describe_layers(model)
    scale = int(model.scale)
    nodes = [("LR luma\ninput", LR_COLOUR, 0.9)]
    for layer in layers:
        text = f"{layer.label}\n{layer.detail}" + (f"\n{layer.activation}" if layer.activation else "")
        if layer.count > 1:
            text = f"{layer.count} ×\n{text}"
        colour = {"LR": LR_COLOUR, "HR": HR_COLOUR, "up": CHANGE_COLOUR}[layer.where]
        nodes.append((text, colour, 1.0 + 0.12 * math.log2(max(layer.channels, 1)) + 0.25 * (layer.count > 1)))
    if skip:
        nodes.append(("+", HR_COLOUR, 0.5))
    nodes.append((f"SR luma\n×{scale}", HR_COLOUR, 0.9))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.05 * len(nodes) + 0.4), 2.9))
    for x, (text, colour, height) in enumerate(nodes):
        _box(ax, x, height, text, colour)
        if x:
            ax.annotate("", (x - 0.42, 0), (x - 0.58, 0), arrowprops={"arrowstyle": "->", "color": "0.3"})
    top = max(height for _, _, height in nodes) / 2
    if skip:
        start = 1 if skip == "interpolation" else 0
        end, bar = len(nodes) - 2, top + 0.25
        ax.plot([start, start, end], [nodes[start][2] / 2, bar, bar], color="C3", lw=1.2)
        ax.annotate("", (end, nodes[end][2] / 2), (end, bar),
                    arrowprops={"arrowstyle": "->", "color": "C3", "lw": 1.2})
        label = "skip: add the interpolated input" if skip == "interpolation" else \
            f"skip: add the {model.options.get('interpolation', 'bicubic')} ×{scale} interpolation of the input"
        ax.text((start + end) / 2, bar + 0.05, label, ha="center", va="bottom", color="C3", fontsize=7.5)
    legend = ((LR_COLOUR, "at LR size"), (HR_COLOUR, f"at HR size (×{scale})"),
              (CHANGE_COLOUR, "changes the resolution"))
    handles = [matplotlib.patches.Patch(facecolor=c, edgecolor="0.3", label=t) for c, t in legend]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=3, frameon=False, fontsize=7.5)
    ax.set_xlim(-0.6, len(nodes) - 0.4)
    ax.set_ylim(-top - 0.75, top + 0.8)
    ax.axis("off")
    name = title or f"{type(model).__name__}" + (f" {model.options['variant']}" if "variant" in model.options else "")
    ax.set_title(f"{name} ×{scale}: {count_parameters(model):,} weights, "
                 f"{macs_per_pixel(model):,.0f} multiply-adds per HR pixel")
    fig.tight_layout()
    return fig


def _check_box(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(box) != 4:
        raise ValueError(f"box must be (top, left, height, width), got {box!r}")
    top, left, height, width = (int(v) for v in box)
    if height < 1 or width < 1 or top < 0 or left < 0 or top + height > shape[0] or left + width > shape[1]:
        raise ValueError(f"box {box} (top, left, height, width) does not fit in a {shape[0]}×{shape[1]} image")
    return top, left, height, width


def _imshow(ax, image: np.ndarray) -> None:
    ax.imshow(image, **({} if image.ndim == 3 else {"cmap": "gray", "vmin": 0, "vmax": 255}))
    ax.set_xticks([])
    ax.set_yticks([])


def most_improved_box(reference: np.ndarray, better: np.ndarray, worse: np.ndarray, side: int) -> tuple[int, int, int, int]:
    """The (top, left, side, side) window where ``better`` lowers the squared error of
    ``worse`` against ``reference`` the most: where a network visibly beats an interpolation."""
    def error(image: np.ndarray) -> np.ndarray:
        diff = np.asarray(image, np.float64) - np.asarray(reference, np.float64)
        return (diff ** 2).reshape(diff.shape[0], diff.shape[1], -1).sum(axis=2)
    gain = error(worse) - error(better)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(gain.cumsum(0).cumsum(1), ((1, 0), (1, 0))),
                                                       (side + 1, side + 1))
    sums = windows[..., -1, -1] - windows[..., 0, -1] - windows[..., -1, 0] + windows[..., 0, 0]
    top, left = np.unravel_index(np.argmax(sums), sums.shape)
    return int(top), int(left), side, side


def compare_crops(images: dict[str, np.ndarray], box: tuple[int, int, int, int], *,
                  psnr: dict[str, float] | None = None, full: str | None = None, size: float = 2.4,
                  rows: int | None = None) -> plt.Figure:
    """One image (``full``, by default the last) with ``box`` = (top, left, height, width)
    outlined, then that region of every image enlarged (nearest neighbour, so pixels stay
    visible), each titled with its name and, when given, its PSNR. The crops fill ``rows`` rows
    beside the whole image (default: two from four images on, so that at a page's width each
    crop stays large enough to compare)."""
    if not images:
        raise ValueError("compare_crops needs at least one image")
    arrays = {name: np.asarray(image) for name, image in images.items()}
    shapes = {a.shape[:2] for a in arrays.values()}
    if len(shapes) != 1 or any(a.dtype != np.uint8 for a in arrays.values()):
        raise ValueError(f"compare_crops needs uint8 images of one size, got "
                         f"{[(a.shape, str(a.dtype)) for a in arrays.values()]}")
    full = full if full is not None else list(arrays)[-1]
    if full not in arrays:
        raise ValueError(f"full={full!r} is not one of the images {list(arrays)}")
    rows = rows if rows is not None else (2 if len(arrays) >= 4 else 1)
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= len(arrays):
        raise ValueError(f"rows must be an integer from 1 to the number of images ({len(arrays)}), got {rows!r}")
    shape = shapes.pop()
    top, left, height, width = _check_box(box, shape)
    per_row = -(-len(arrays) // rows)
    # Panels no narrower than 3/4 of their height, so a tall crop still has room for its title;
    # the whole image spans every row.
    whole_ratio, crop_ratio = rows * max(0.75, shape[1] / shape[0]), max(0.75, width / height)
    ratios = [whole_ratio] + [crop_ratio] * per_row
    fig = plt.figure(figsize=(size * sum(ratios) + 0.1 * len(ratios), rows * (size + 0.55)), layout="compressed")
    grid = fig.add_gridspec(rows, len(ratios), width_ratios=ratios)
    whole = fig.add_subplot(grid[:, 0])
    _imshow(whole, arrays[full])
    whole.add_patch(matplotlib.patches.Rectangle((left - 0.5, top - 0.5), width, height, fill=False,
                                                 edgecolor="red", linewidth=1.2))
    whole.set_title(f"{full} (whole image)")
    for index, (name, image) in enumerate(arrays.items()):
        ax = fig.add_subplot(grid[index // per_row, 1 + index % per_row])
        _imshow(ax, image[top:top + height, left:left + width])
        for spine in ax.spines.values():
            spine.set_edgecolor("red")
        score = (psnr or {}).get(name)
        ax.set_title(name if score is None else f"{name}\n{score:.2f} dB")
    return fig


def cost_quality(runs: list[dict], baselines: dict[int, float], targets: dict[str, float] | None = None) -> plt.Figure:
    """Set5 validation PSNR against training CPU time (hours, log scale), one panel per scale:
    each run of ``srlib.results.pretrained_runs`` a curve ending at its protocol score (a dot;
    the dot alone for a scale the run served but did not validate, as VDSR's ×3 and ×4),
    one colour per network and another line style for each further run of it,
    ``baselines`` (scale -> PSNR) a dashed line, ``targets`` ("model xS" -> PSNR) a star."""
    scales = sorted({run["scale"] for run in runs})
    if not scales:
        raise ValueError("cost_quality needs at least one run")
    fig, axes = plt.subplots(1, len(scales), figsize=(3.0 * len(scales) + 1.0, 3.4), squeeze=False)
    colours = {model: f"C{i}" for i, model in enumerate(sorted({run["model"] for run in runs}))}
    for ax, scale in zip(axes[0], scales):
        drawn: dict[str, int] = {}  # runs of one model in this panel: one colour, told apart by line style
        for run in (r for r in runs if r["scale"] == scale):
            points = [(h["wall_time"] / 3600, h["val_psnr"]) for h in run["history"] if h.get("val_psnr") is not None]
            colour = colours[run["model"]]
            style = ("-", "-.", ":")[drawn.get(run["model"], 0) % 3]
            drawn[run["model"]] = drawn.get(run["model"], 0) + 1
            if points:
                ax.plot(*zip(*points), style, color=colour, lw=1.2, label=run["name"])
            ax.plot(run["wall_time"] / 3600, run["scores"][run["model"]]["Set5"]["psnr"], "o", color=colour, ms=4,
                    label=None if points else run["name"])
            target = (targets or {}).get(f"{run['model']} x{scale}")
            if target is not None:
                ax.plot(run["wall_time"] / 3600, target, "*", color=colour, ms=9, mec="k", mew=0.5)
        if scale in baselines:
            ax.axhline(baselines[scale], color="0.4", ls="--", lw=1, label=f"bicubic ({baselines[scale]:.2f} dB)")
        ax.set(xscale="log", xlabel="training time (CPU hours, log)", title=f"×{scale}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("Set5 PSNR (dB)")
    fig.tight_layout()
    return fig


def training_curves(histories: dict[str, list[dict]], *, references: dict[str, float] | None = None,
                    x: str = "epoch", psnr_range: tuple[float, float] | None = None) -> plt.Figure:
    """Learning curves from srlib.training histories: validation PSNR (left, with optional
    horizontal reference lines such as the bicubic PSNR; ``psnr_range`` fixes its y-axis so
    early, very low points do not flatten the rest) and training MSE (right, log scale)
    against ``x``, "epoch" or "iteration"."""
    if x not in ("epoch", "iteration"):
        raise ValueError(f"x must be 'epoch' or 'iteration', got {x!r}")
    if not histories or any(not h for h in histories.values()):
        raise ValueError("training_curves needs at least one non-empty history per name")
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.0))
    for i, (name, history) in enumerate(histories.items()):
        validated = [h for h in history if h.get("val_psnr") is not None]
        if validated:
            left.plot([h[x] for h in validated], [h["val_psnr"] for h in validated], "o-", ms=2.5,
                      color=f"C{i}", label=name)
        right.plot([h[x] for h in history], [h["loss"] for h in history], "-", color=f"C{i}", label=name)
    for j, (name, value) in enumerate((references or {}).items()):
        left.axhline(value, color="0.4", ls=("--", ":", "-.")[j % 3], lw=1, label=f"{name} ({value:.2f} dB)")
    left.set(xlabel=x, ylabel="validation PSNR (dB)", title="validation PSNR")
    if psnr_range is not None:
        left.set_ylim(*psnr_range)
    right.set(xlabel=x, ylabel="training MSE (luma in [0, 1])", title="training loss", yscale="log")
    for ax in (left, right):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if ax.lines:
            ax.legend(fontsize=7.5)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def filter_grid(weights, *, ncols: int = 16, size: float = 0.45) -> plt.Figure:
    """A first layer's filters (out, 1, k, k) or (out, k, k) as a grid of grey tiles, each
    scaled to its own largest magnitude: mid-grey is zero, white positive, black negative."""
    array = weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3:
        raise ValueError(f"filter_grid needs filters of shape (out, 1, k, k) or (out, k, k), got {array.shape}")
    ncols = min(ncols, len(array))
    nrows = -(-len(array) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, kernel in zip(axes.flat, array):
        peak = float(np.abs(kernel).max()) or 1.0
        ax.imshow(kernel, cmap="gray", vmin=-peak, vmax=peak)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99, wspace=0.08, hspace=0.08)
    return fig


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's ``glue`` for numbers in the prose: numpy scalars are passed on as Python
    numbers, whose text myst-nb can format (numpy 2 prints them as ``np.float64(...)``).
    Outside the book's build (Colab, a plain Jupyter without myst-nb) nothing is glued and
    the value is only shown when ``display`` asks for it."""
    value = value.item() if isinstance(value, np.generic) else value
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show
            show(value)
        return
    myst_glue(name, value, display=display)
