# Two entry points for a fresh machine (Python 3.10+ and the package registries):
#   make book   install, execute every chapter with papermill, render the HTML book
#   make test   install, run srlib's tests, nbval over every chapter, compare figures
#               (and the pages in headless Chromium, installed from Debian's packages if missing)
# Other targets: make baselines (re-bless the reference figures), make bench, make lock,
#   make sprint-images (the images archive the GPU sprint reads: README, "On one GPU").

PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    ?= .venv
BIN     := $(VENV)/bin
PROFILE ?= quick
CHAPTERS := $(sort $(wildcard book/*.ipynb))
STAMP   := $(VENV)/.installed
# Chapters and tests run with the CPU arithmetic pinned (srlib/portable.py), so their outputs
# are the same on every x86-64 machine with AVX2.
PINNED  := $(BIN)/python -m srlib.portable
# The benchmark and training sets the chapters use; `make book` fetches them (checksummed) into
# the default data folder when SRLIB_DATA is unset and they are missing, and goes on without them.
BOOK_DATA := Set5 Set14 BSD100 T91 BSD200

export PYTHONHASHSEED := 0

.PHONY: install browser book data execute html test baselines bench lock clean

install: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Execute every chapter in place (its stored outputs are what the book renders and
# what nbval compares against). PROFILE=full runs the paper-scale settings.
execute: export SRLIB_RESULTS_DIR := $(CURDIR)/results
execute: $(STAMP)
	@mkdir -p _build/figures
	$(BIN)/python scripts/sync_install_cells.py
	for nb in $(CHAPTERS); do \
	    $(PINNED) $(BIN)/papermill --cwd book --log-level WARNING $$nb $$nb \
	        $(if $(filter-out quick,$(PROFILE)),-p profile $(PROFILE)) || exit 1; \
	done

html: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	test -f _build/html/index.html

book: data execute html

# Fetch the sets the chapters use unless SRLIB_DATA names a folder or there is no network:
# without them every chapter still runs, on embedded images, and says what it skipped.
data: $(STAMP)
	@if [ -n "$${SRLIB_DATA:-}" ]; then echo "data: using SRLIB_DATA=$$SRLIB_DATA"; \
	else for set in $(BOOK_DATA); do \
	    $(BIN)/srlib download $$set || { echo "data: $$set not fetched; the chapters will go on without it"; break; }; \
	done; fi

# The book's interactive pages are tested in headless Chromium (tests/headless.py). Where it is
# missing, `make test` installs Debian's package if it runs as root with apt-get (a CI machine);
# elsewhere it says so and those tests skip with the same advice.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "browser: could not install Chromium; the browser tests will skip"; \
	else echo "browser: Chromium not found (Debian: apt install chromium); the browser tests will skip"; fi

test: $(STAMP) browser
	$(PINNED) $(BIN)/python -m pytest

# Regenerate the reference figures that `make test` compares against; review the
# images with `git diff --stat tests/baselines` before committing them.
baselines: $(STAMP)
	SRLIB_FIGURE_DIR=$(CURDIR)/tests/baselines $(MAKE) execute

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

# The one archive of training and test images that `srlib sprint` reads on a GPU machine.
sprint-images: $(STAMP) data
	mkdir -p .sprint && $(BIN)/srlib sprint --pack .sprint/images.tar

# Refresh the lock after changing requirements.txt.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//' > constraints.txt

clean:
	rm -rf _build
