# simclr_nb: the two set-up commands are `make demo` and `make test` (see README).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# pip on these machines prints one harmless warning per package about missing local indexes; hide only those lines.
QUIET_PIP := grep -v "^WARNING: Location 'file:" || true
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# notebooks are tested two at a time on a 2-core machine: one BLAS thread each avoids oversubscription
NBTEST_WORKERS ?= 2

.PHONY: install demo demo-record test test-slow test-gpu tutorial lab docs bench check-sync data-fashion-mnist clean-nbs export browser-test chromium

$(VENV)/.installed: pyproject.toml setup.py
	@test -x $(PY) || python3.11 -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q -e '.[dev]' 2>&1 | $(QUIET_PIP)
	@touch $@

install: $(VENV)/.installed

## The main job on the embedded default dataset (scikit-learn digits): 3 seeds of every stage after the one pretraining.
## Digits are not mirror-symmetric: fine-tuning without flips won on validation (nbs/13_recipe_small_images.ipynb).
## --jobs 2: the per-seed stages in two one-thread processes side by side (nbs/09b_jobs.ipynb; bench/demo_runs.py times it).
demo: install
	$(BIN)/simclr-nb run --out runs/demo --ft-augment none --jobs 2

## Copies the demo's metrics.json, report and all its figures (the report links them) to nbs/images/demo/ (the README's demo table is that file).
demo-record:
	mkdir -p nbs/images/demo
	cp runs/demo/metrics.json runs/demo/report.md runs/demo/config.json runs/demo/*.png nbs/images/demo/

## Fashion-MNIST from Debian's package, when we are root and it is missing; never fatal.
data-fashion-mnist:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "fashion-mnist: found in /usr/share/datasets/fashion-mnist"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
	  && echo "fashion-mnist: installed Debian package dataset-fashion-mnist" \
	  || echo "fashion-mnist: apt-get could not install dataset-fashion-mnist; its tests will be skipped"; \
	else echo "fashion-mnist: not root or no apt-get; its tests will be skipped"; fi

## Fails if the library is out of step with the notebooks or a notebook is not clean.
check-sync: install
	$(BIN)/python tools/check_sync.py

test: install data-fashion-mnist check-sync
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/nbdev-test --n-workers $(NBTEST_WORKERS) --timing
	@if ls tests/test_*.py >/dev/null 2>&1; then $(BIN)/pytest -q tests; else echo "no pytest tests"; fi
	$(MAKE) --no-print-directory docs
	@if $(MAKE) -s --no-print-directory chromium; then $(PY) tests/browser/panel_in_lab.py --screenshot "$$(mktemp -d)/panel.png"; \
	else echo "browser test skipped: no chromium here, and it cannot be installed (needs root and apt-get)"; fi

## Cells flagged `slow` (long CPU runs) and `gpu` (need CUDA), with their own commands; a study cell may run longer than
## the default 15-minute cell limit of `make test`, so these have none.
test-slow: install data-fashion-mnist
	$(BIN)/nbdev-test --flags slow --n-workers 1 --timing --cell-timeout 0

test-gpu: install data-fashion-mnist
	$(BIN)/nbdev-test --flags "slow gpu" --n-workers 1 --timing --cell-timeout 0

## Runs the Fashion-MNIST tutorial's studies (CPU-sized, or full size on a GPU) and stores its outputs, figures and
## tables (nbs/images/experiments_fmnist_<cpu|gpu>_*); finished runs are cached in nbs/runs/tutorial/.
tutorial: install data-fashion-mnist
	$(BIN)/nbdev-test nbs/12_tutorial_fashion_mnist.ipynb --flags "slow $$($(PY) -c 'import torch; print("gpu" if torch.cuda.is_available() else "")')" --save --timing --cell-timeout 0
	$(PY) tools/trim_outputs.py nbs/12_tutorial_fashion_mnist.ipynb
	$(BIN)/nbdev-clean

## The label-fraction panel in a live JupyterLab, driven by a headless Chromium (Debian's `chromium`, via playwright; no
## browser is downloaded): Run, progress, table, figure, a refused input, Stop. Saves nbs/images/panel_after_run.png.
## Debian's chromium for the browser test (installed when we are root and apt-get exists).
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)); } \
	  || { echo "browser test: needs Debian's chromium (apt-get install -y chromium)"; exit 1; }

## The panels in a live JupyterLab driven by headless Chromium; rewrites nbs/images/panel_after_run.png.
browser-test: install chromium
	$(PY) tests/browser/panel_in_lab.py

export: install
	$(BIN)/nbdev-export
clean-nbs: install
	$(BIN)/nbdev-clean

lab: install
	$(BIN)/jupyter lab nbs

## Documentation: the full site with Quarto where it is installed, else the processing step before Quarto.
docs: install
	@if command -v quarto >/dev/null; then $(BIN)/nbdev-docs; \
	else echo "Quarto not found: running the steps before rendering (nbdev-proc-nbs without Quarto's install)"; \
	  $(BIN)/python tools/proc_docs.py; fi

bench: install
	bash bench/setup_env.sh
	.venv-bench/bin/python bench/speed.py
	.venv-bench/bin/python bench/step_tuning.py
