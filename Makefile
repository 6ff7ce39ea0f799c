# SMGeo-Geo developer entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system-deps demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)  ## Python environment in .venv (torch, timm, rasterio, ...)

system-deps:  ## Debian packages the tests use (GDAL command-line tools)
	bash scripts/install-system-deps.sh

demo: setup  ## the main job on the bundled default
	$(VENV)/bin/smgeo demo --out demo_output

test: setup system-deps  ## the whole test suite
	$(PY) -m pytest -q

bench: setup  ## speed benchmarks (ratios measured in one run)
	$(PY) bench/bench_model.py --json bench/results/model_cpu.json

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache demo_output
