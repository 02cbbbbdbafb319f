"""Session set-up shared by srlib's tests and nbval's chapter runs.

Chapters save every figure through ``srlib.plots.glue_figure`` into ``SRLIB_FIGURE_DIR``;
the kernels nbval starts inherit this process's environment, so pointing the variable at
a fresh folder here lets ``tests/test_figures.py`` (moved to the end of the run) compare
what the chapters just drew with the committed baselines. The same inheritance carries the
pinned CPU arithmetic of ``srlib.portable`` into every kernel.

A chapter's stored outputs were made with the benchmark sets its metadata lists
(``"srlib": {"data": [...]}``); where one of them is missing, nbval would compare the
fallback run with outputs it never made, so the chapter is skipped, with the reason.
"""
import json
import os
import shutil
from pathlib import Path

import pytest

from srlib import data, portable

ROOT = Path(__file__).resolve().parent
FIGURE_DIR = ROOT / "_build" / "test-figures"


def data_skips() -> dict[str, str]:
    """Chapter stem -> why its stored outputs cannot be checked here (missing data)."""
    reasons = {}
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        needs = json.loads(path.read_text())["metadata"].get("srlib", {}).get("data", [])
        absent = data.missing(needs)
        if absent:
            reasons[path.stem] = (f"{path.name} needs {', '.join(absent)} (not in {data.data_root()}): "
                                  f"`srlib download {' '.join(absent)}` or set SRLIB_DATA")
    return reasons


def pytest_configure(config: pytest.Config) -> None:
    shutil.rmtree(FIGURE_DIR, ignore_errors=True)
    FIGURE_DIR.mkdir(parents=True)
    os.environ["SRLIB_FIGURE_DIR"] = str(FIGURE_DIR)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    os.environ.update(portable.ENVIRONMENT)
    config.srlib_data_skips = data_skips()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the chapters whose data is missing; run the figure comparisons last, after nbval."""
    for item in items:
        reason = config.srlib_data_skips.get(item.path.stem) if item.path.suffix == ".ipynb" else None
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
    items.sort(key=lambda item: item.path.name == "test_figures.py")
