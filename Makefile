# One command sets up a fresh machine and runs the service or the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
export NAS_DATA_DIR ?= /usr/share/datasets

.PHONY: setup run test test-all lint bench serve clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first, from the CPU wheel on disk: any other torch requirement pulls CUDA packages
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $@

$(DATA):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	else sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist; fi

/usr/bin/chromium:
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi

setup: $(VENV)/.installed $(DATA)

run: setup
	$(PY) -m api.demo

serve: setup
	$(VENV)/bin/nas serve

test: setup /usr/bin/chromium
	$(PY) -m pytest -q

test-all: setup /usr/bin/chromium
	$(PY) -m pytest -q -m ''

lint: setup
	$(VENV)/bin/ruff check kernels supernets predictors nas workers api bench tests
	$(VENV)/bin/ruff format --check kernels supernets predictors nas workers api bench tests
	$(VENV)/bin/mypy

bench: setup
	for b in kernels supernet-schedules predictors search pooling-mixture api-load; do $(VENV)/bin/nas bench $$b || exit 1; done

clean:
	rm -rf var build *.egg-info
