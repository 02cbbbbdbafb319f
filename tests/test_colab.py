"""Chapters run where readers run them: a Colab-like Python with only what Colab preinstalls,
``google.colab`` imported by the kernel at start as Colab's does, and each chapter's own first
cell installing srlib (from this checkout instead of the repository: ``SRLIB_INSTALL``).

The environment is a fresh venv with torch, numpy, scipy, pillow, matplotlib, scikit-image,
tqdm, PyYAML and ipykernel (the versions of constraints.txt), nothing of the book's build
(no myst-nb, papermill or jupyter-book). One fast chapter and one training chapter run in
their quick profile; any error fails the test. ``SRLIB_COLAB_CHAPTERS`` (comma-separated
stems) runs others, e.g. all of them.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from srlib import data

ROOT = Path(__file__).resolve().parent.parent
COLAB_PACKAGES = ["torch==2.13.0", "numpy", "scipy", "pillow", "matplotlib", "scikit-image", "tqdm", "pyyaml",
                  "ipykernel"]
CHAPTERS = os.environ.get("SRLIB_COLAB_CHAPTERS", "01_fir_filters,08_sp_vdsr").split(",")
KERNEL = "import google.colab; from ipykernel import kernelapp; kernelapp.launch_new_instance()"


@pytest.fixture(scope="module")
def colab(tmp_path_factory) -> Path:
    """A kernelspec folder whose "colab" kernel runs in the Colab-like venv."""
    root = tmp_path_factory.mktemp("colab")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "-c", str(ROOT / "constraints.txt"), *COLAB_PACKAGES], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"could not build the Colab-like environment (no package registry?): {done.stderr[-300:]}")
    stub = root / "stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (stub.parent / "__init__.py").write_text("")
    (stub / "__init__.py").write_text('"""Stands in for Colab\'s module: chapters test for its presence."""\n')
    spec = root / "kernels" / "colab"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-c", KERNEL, "-f", "{connection_file}"], "display_name": "Colab (emulated)",
        "language": "python",
        "env": {"PYTHONPATH": str(root / "stub"), "SRLIB_INSTALL": str(ROOT), "MPLBACKEND": "Agg",
                "SRLIB_RESULTS_DIR": str(root / "results"), "SRLIB_DATA": str(data.data_root()),
                "PATH": os.environ.get("PATH", "")}}))
    return root


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_runs_on_colab_with_only_its_own_install_cell(stem, colab, monkeypatch):
    notebook = nbformat.read(ROOT / "book" / f"{stem}.ipynb", as_version=4)
    absent = data.missing(notebook.metadata.get("srlib", {}).get("data", []))
    if absent:
        pytest.skip(f"needs {', '.join(absent)} (srlib download {' '.join(absent)}); Colab would download them")
    monkeypatch.setenv("JUPYTER_PATH", str(colab))
    client = NotebookClient(notebook, kernel_name="colab", timeout=900, resources={"metadata": {"path": str(ROOT / "book")}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    first = notebook.cells[[c.cell_type for c in notebook.cells].index("code")]
    text = "".join(output.get("text", "") for output in first.outputs)
    assert "srlib is installed; this chapter computes on cpu" in text
