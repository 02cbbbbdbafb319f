"""Figure helpers shared by the chapters: one style, and figures saved for regression tests."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

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
    """Save ``fig`` (see save_figure) and glue it for a ``{glue:figure}`` caption in the book.

    Outside Jupyter Book (e.g. on Colab without myst-nb) the figure is simply displayed.
    """
    save_figure(fig, name)
    try:
        from myst_nb import glue
    except ImportError:
        from IPython.display import display
        display(fig)
    else:
        glue(name, fig, display=False)
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
