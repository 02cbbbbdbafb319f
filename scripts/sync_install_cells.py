"""Write every chapter's first cell (install srlib on Colab) from _config.yml's repository URL.

The repository URL lives in one place, ``repository.url`` in _config.yml, which Jupyter Book's
launch buttons read; this script puts it into each chapter's install cell, together with the
data sets the chapter reads (its notebook metadata ``srlib.data``). `make execute` runs it, so
publishing the book elsewhere is one edit of _config.yml; tests/test_book.py checks that the
cells follow the file.

    python scripts/sync_install_cells.py [--check]
"""
import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MARK = "# On Colab: install srlib"


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]


def install_cell(url: str, datasets: list[str]) -> str:
    """The source of a chapter's first cell: nothing happens outside Colab."""
    lines = [f"{MARK} and fetch the data this chapter reads (skipped everywhere else, CI included).",
             "import os",
             "import sys",
             "",
             'if "google.colab" in sys.modules:',
             "    import subprocess",
             "    # An editable install keeps the repository beside srlib: its results files and shipped weights.",
             "    # SRLIB_INSTALL names another source, e.g. a local checkout.",
             f'    source = os.environ.get("SRLIB_INSTALL", "git+{url}#egg=srlib")',
             '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", source], check=True)',
             "    import site, sysconfig",
             '    site.addsitedir(sysconfig.get_paths()["purelib"])  # this running kernel reads the editable install',
             "    from srlib import data, training",
             ]
    if datasets:
        lines.append(f"    data.fetch({datasets!r})  # checksummed, once, into Colab's disk")
    lines.append('    print(f"srlib is installed; this chapter computes on {training.default_device()}")')
    return "\n".join(lines)


def chapters() -> list[Path]:
    return sorted((ROOT / "book").glob("*.ipynb"))


def first_code_cell(notebook: dict) -> dict:
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    text = "".join(cell["source"])
    if not (text.startswith(MARK) or text.startswith("# Colab: install srlib")):
        raise ValueError("the first code cell is not the install cell")
    return cell


def expected(notebook: dict, url: str) -> str:
    return install_cell(url, list(notebook["metadata"].get("srlib", {}).get("data", [])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report cells that differ; change nothing")
    args = parser.parse_args()
    url, stale = repository_url(), []
    for path in chapters():
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cell, text = first_code_cell(notebook), expected(notebook, repository_url())
        if "".join(cell["source"]) != text:
            stale.append(path.name)
            if not args.check:
                cell["source"] = text.splitlines(keepends=True)
                path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    verb = "differ from" if args.check else "now follow"
    print(f"{len(stale)} install cells {verb} {url}" + (f": {', '.join(stale)}" if stale else ""))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
