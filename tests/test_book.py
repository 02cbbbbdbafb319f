"""The book builds: every glue key a chapter's prose uses is produced by the chapter, with
the benchmark data (the stored outputs) and without it (chapter 3, executed here)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BOOK = ROOT / "book"
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"  # the venv's, beside this Python
# {glue:text}`key:.2f`, {glue}`key`, and the directive form ```{glue:figure} key
REFERENCE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)(?::[^`]*)?`|\{glue:\w+\}[ \t]+([\w.-]+)")


def referenced(notebook: dict) -> set[str]:
    """Glue keys that the notebook's markdown cells use."""
    return {a or b for cell in notebook["cells"] if cell["cell_type"] == "markdown"
            for a, b in REFERENCE.findall("".join(cell["source"]))}


def glued(notebook: dict) -> set[str]:
    """Glue keys that the notebook's stored outputs provide."""
    return {output["metadata"]["scrapbook"]["name"] for cell in notebook["cells"] for output in cell.get("outputs", [])
            if "scrapbook" in output.get("metadata", {})}


def test_reference_pattern_finds_every_form():
    notebook = {"cells": [{"cell_type": "markdown", "source": [
        "a {glue:text}`k-1:.2f` b {glue}`k2` c {glue:text}`k3:,`\n", "```{glue:figure} fig-x\n:name: fig-x\n```\n"]}]}
    assert referenced(notebook) == {"k-1", "k2", "k3", "fig-x"}


@pytest.mark.parametrize("path", sorted(BOOK.glob("*.ipynb")), ids=lambda p: p.stem)
def test_stored_chapter_glues_every_key_its_prose_uses(path):
    notebook = json.loads(path.read_text())
    missing = sorted(referenced(notebook) - glued(notebook))
    assert not missing, f"{path.name} uses glue keys its outputs never set: {missing}"


# {glue:text}`04_srcnn.ipynb::key:.2f` in a page (the introduction) that glues from a chapter
CROSS_REFERENCE = re.compile(r"\{glue(?::\w+)?\}`([^`]*::[^`]*)`")


def cross_reference_target(text: str) -> tuple[str, str] | None:
    """(notebook, key) of a ``path::key[:format]`` reference split as myst-nb splits it: the
    format after the last colon first, so a key without a format must end in ``:s``; None
    where that split leaves no ``::``."""
    reference = text.rsplit(":", 1)[0]
    notebook, separator, key = reference.partition("::")
    return (notebook, key) if separator and key else None


def test_a_cross_reference_without_a_format_loses_its_key():
    assert cross_reference_target("07_vdsr.ipynb::vdsr-cpu-budget") is None
    assert cross_reference_target("07_vdsr.ipynb::vdsr-cpu-budget:s") == ("07_vdsr.ipynb", "vdsr-cpu-budget")
    assert cross_reference_target("04_srcnn.ipynb::srcnn-conv-gain-x3:.2f") == ("04_srcnn.ipynb", "srcnn-conv-gain-x3")


@pytest.mark.parametrize("page", sorted(BOOK.glob("*.md")), ids=lambda p: p.name)
def test_every_page_glues_only_keys_a_stored_chapter_sets(page):
    broken = []
    for text in CROSS_REFERENCE.findall(page.read_text()):
        target = cross_reference_target(text)
        if target is None or not (BOOK / target[0]).is_file() or target[1] not in glued(
                json.loads((BOOK / target[0]).read_text())):
            broken.append(text)
    assert not broken, f"{page.name}: glue references myst-nb cannot resolve (a text needs a format, e.g. :s): {broken}"


def test_chapter_3_without_benchmark_data_glues_every_key_and_its_page_builds(tmp_path):
    """A newcomer's `make book`: no SRLIB_DATA and nothing in the default folder."""
    pytest.importorskip("papermill")
    env = {**os.environ, "SRLIB_DATA": str(tmp_path / "no-data"), "SRLIB_RESULTS_DIR": "",
           "SRLIB_FIGURE_DIR": str(tmp_path / "figures")}  # not the session's: test_figures compares those
    site = tmp_path / "site"
    (site / "book").mkdir(parents=True)
    executed = site / "book" / "03_measuring.ipynb"
    subprocess.run([sys.executable, "-m", "papermill", "--cwd", str(BOOK), "--log-level", "WARNING",
                    str(BOOK / "03_measuring.ipynb"), str(executed)], env=env, check=True, capture_output=True)
    notebook = json.loads(executed.read_text())
    missing = sorted(referenced(notebook) - glued(notebook))
    assert not missing, f"without data, chapter 3 never glues {missing}"
    shutil.copy(ROOT / "_config.yml", site)
    shutil.copy(ROOT / "references.bib", site)
    shutil.copy(BOOK / "bibliography.md", site / "book")  # where the citations resolve
    (site / "_toc.yml").write_text("format: jb-book\nroot: book/03_measuring\nchapters:\n  - file: book/bibliography\n")
    build = subprocess.run([str(JUPYTER_BOOK), "build", str(site), "-W", "-n", "--keep-going"],
                           env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]


def _sync_script():
    import importlib.util
    spec = importlib.util.spec_from_file_location("sync_install_cells", ROOT / "scripts" / "sync_install_cells.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", sorted(BOOK.glob("*.ipynb")), ids=lambda p: p.stem)
def test_install_cell_follows_the_repository_url_of_config_and_fetches_the_chapters_data(path):
    sync = _sync_script()
    notebook = json.loads(path.read_text())
    cell = sync.first_code_cell(notebook)
    assert "".join(cell["source"]) == sync.expected(notebook, sync.repository_url()), \
        "run `python scripts/sync_install_cells.py` (make execute does)"
    assert "remove-cell" in cell["metadata"].get("tags", [])


def test_no_chapter_needs_myst_nb_outside_the_book_build():
    for path in sorted(BOOK.glob("*.ipynb")):
        code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        assert "myst_nb" not in code, path.name


def test_the_whole_book_renders_from_its_stored_outputs_without_a_warning(tmp_path):
    """`make html` (the second half of `make book`), strict, into a folder of the test's own."""
    if not JUPYTER_BOOK.exists():
        pytest.skip("jupyter-book is not installed (make install)")
    build = subprocess.run([str(JUPYTER_BOOK), "build", str(ROOT), "--path-output", str(tmp_path), "-W", "-n",
                            "--keep-going"], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert (tmp_path / "_build" / "html" / "book" / "intro.html").is_file()


@pytest.mark.parametrize("stem", ["ledger", "leaderboard"])
def test_the_results_pages_fold_the_code_that_formats_their_tables(stem):
    notebook = json.loads((BOOK / f"{stem}.ipynb").read_text())
    shown = [i for i, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"
             and not {"parameters", "hide-input", "remove-input", "remove-cell", "hide-cell"} & set(cell["metadata"].get("tags", []))]
    assert not shown, f"{stem}: code cells shown in the rendered page: {shown}"
