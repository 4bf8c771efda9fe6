# KD-DETR, run at the repository root: `make setup` builds .venv and installs everything;
# `make test`, `make lint`, `make demo`.
# Idempotent: a stamp file records what was installed; a second run with nothing changed
# only compares timestamps.
PYTHON ?= python3
# e.g. VENV_FLAGS=--system-site-packages to reuse a detectron2/torch built from source
VENV_FLAGS ?=
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
TORCH_PIN := torch==2.15.0 torchvision==0.29.2
STAMP := $(VENV)/.kddetr-installed
WHEELS := .wheels

.PHONY: setup test lint demo train-synthetic clean-venv

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile tools/build_detectron2_wheel.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(PIP) install -q "setuptools<81" wheel
	@# torch and torchvision as a pinned pair: the regular (CUDA) builds also run on CPU.
	@if $(PY) -c "import torch, torchvision" 2>/dev/null; then \
		echo "torch $$($(PY) -c 'import torch; print(torch.__version__)') already installed"; \
	else $(PIP) install -q $(TORCH_PIN); fi
	@# Keep a detectron2 the user already has (e.g. a source build); otherwise build the wheel.
	@if $(PY) -c "import detectron2" 2>/dev/null; then \
		echo "detectron2 $$($(PY) -c 'import detectron2; print(detectron2.__version__)') already installed"; \
	else $(PIP) install -q "$$(bash tools/build_detectron2_wheel.sh $(PY) $(WHEELS))"; fi
	$(PIP) install -q -e ".[test]" tensorboard matplotlib
	@touch $(STAMP)
	@echo "environment ready: $(VENV)"

# two xdist workers of one torch thread each share the 2 cores better than one process of two threads
# (tests/conftest.py prepares the data and the short backbone pretrainings once, before the workers start)
test: setup
	$(PY) -m pytest -q -n 2 --durations=10

# ruff's settings (line length 120, pyflakes, pycodestyle, import order) are in pyproject.toml
lint: setup
	$(PY) -m ruff check .

# The main job on the synthetic data: teacher, student alone, KD-DETR student -> AP table + PNG (tools/demo.py).
demo: setup
	PYTHONWARNINGS=ignore $(PY) tools/demo.py --output output/demo

train-synthetic: setup
	$(PY) train_net.py --config-file configs/synthetic/dino_r50.py

clean-venv:
	rm -rf $(VENV) $(WHEELS)
