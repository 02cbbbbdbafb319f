# Two entry points for a fresh machine (Python 3.10+ and the package registries):
#   make book   install, execute every chapter with papermill, render the HTML book
#   make test   install, run srlib's tests, nbval over every chapter, compare figures
# Other targets: make baselines (re-bless the reference figures), make bench, make lock.

PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    ?= .venv
BIN     := $(VENV)/bin
PROFILE ?= quick
CHAPTERS := $(sort $(wildcard book/*.ipynb))
STAMP   := $(VENV)/.installed

export PYTHONHASHSEED := 0

.PHONY: install book execute html test baselines bench lock clean

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
	for nb in $(CHAPTERS); do \
	    $(BIN)/papermill --cwd book --log-level WARNING $$nb $$nb \
	        $(if $(filter-out quick,$(PROFILE)),-p profile $(PROFILE)) || exit 1; \
	done

html: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	test -f _build/html/index.html

book: execute html

test: $(STAMP)
	$(BIN)/python -m pytest

# Regenerate the reference figures that `make test` compares against; review the
# images with `git diff --stat tests/baselines` before committing them.
baselines: $(STAMP)
	SRLIB_FIGURE_DIR=$(CURDIR)/tests/baselines $(MAKE) execute

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

# Refresh the lock after changing requirements.txt.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//' > constraints.txt

clean:
	rm -rf _build
