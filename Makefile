# SMGeo-Geo developer entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system-deps demo test test-qgis plugin bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)  ## Python environment in .venv (torch, timm, rasterio, ...)

system-deps:  ## Debian packages the tests use (GDAL tools, QGIS 3.22, pytest for /usr/bin/python3)
	bash scripts/install-system-deps.sh

demo: setup  ## the main job on the bundled default (and the find-by-description demo)
	$(VENV)/bin/smgeo demo --out demo_output
	$(VENV)/bin/smgeo demo-retrieval --out demo_output/retrieval

test: setup system-deps  ## the whole test suite: library and model, then the QGIS plugin
	$(PY) -m pytest -q
	$(MAKE) test-qgis

test-qgis: setup system-deps  ## plugin tests in a real, headless QGIS (Debian's /usr/bin/python3)
	@/usr/bin/python3 -c "import qgis.core" || { echo "QGIS Python bindings missing: run 'make system-deps'"; exit 1; }
	QT_QPA_PLATFORM=offscreen SMGEO_PYTHON=$(abspath $(PY)) /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/qgis

plugin: setup  ## installable QGIS plugin zip in dist/
	$(PY) scripts/build_plugin.py

bench: setup  ## speed benchmarks (ratios measured in one run)
	$(PY) bench/bench_model.py --json bench/results/model_cpu.json
	$(PY) bench/bench_synth.py --json bench/results/synth_cpu.json
	$(PY) bench/bench_locate.py --json bench/results/locate_cpu.json
	$(PY) bench/real_imagery.py --json bench/results/real_imagery.json
	$(PY) bench/metadata_errors.py --json bench/results/real_imagery_metadata_errors.json
	$(PY) bench/metadata_errors.py --set gaps --json bench/results/real_imagery_metadata_gaps.json
	$(PY) bench/real_imagery.py --dem-coarsen 30 --runs "auto/metadata only" --json bench/results/real_imagery_dem_30m.json
	$(PY) bench/bench_retrieval.py --json bench/results/retrieval_cpu.json

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache demo_output
