"""Session set-up shared by srlib's tests and nbval's chapter runs.

Chapters save every figure through ``srlib.plots.save_figure`` into ``SRLIB_FIGURE_DIR``;
the kernels nbval starts inherit this process's environment, so pointing the variable at
a fresh folder here lets ``tests/test_figures.py`` (moved to the end of the run) compare
what the chapters just drew with the committed baselines.
"""
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
FIGURE_DIR = ROOT / "_build" / "test-figures"


def pytest_configure(config: pytest.Config) -> None:
    shutil.rmtree(FIGURE_DIR, ignore_errors=True)
    FIGURE_DIR.mkdir(parents=True)
    os.environ["SRLIB_FIGURE_DIR"] = str(FIGURE_DIR)
    os.environ.setdefault("PYTHONHASHSEED", "0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the figure comparisons last, after nbval has executed every chapter."""
    items.sort(key=lambda item: item.path.name == "test_figures.py")
