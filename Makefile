# Two commands on a fresh machine: `make demo` (the main job) and `make test`. Both make .venv themselves.
PY      := .venv/bin/python
PIP     := $(PY) -m pip
DEMO    ?= demo
SHELL   := /bin/bash

.PHONY: demo test lint typecheck test-py test-cpp test-compat bench bench-quick bench-baseline install clean stubs

.venv/.deps: requirements.txt
	test -x $(PY) || python3 -m venv .venv
	# torch first and alone: the CPU wheel on this disk, never a CUDA build pulled in by a dependent package
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	touch $@

.venv/.built: .venv/.deps setup.py CMakeLists.txt $(wildcard csrc/*.cpp csrc/*.h csrc/py/*.cpp csrc/tests/*.cpp csrc/tests/*.h)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $@

install: .venv/.built

test: install lint typecheck test-cpp test-py

# ruff (lint, import order) and pyright (basic mode), configured in pyproject.toml, both part of make test.
# pyright cannot follow the editable install's import hook that maps kernels/, train/ and eval/ into
# `babyfast`, so it reads the package through a tree of links (build/typecheck/babyfast, pyproject's
# extraPaths), rebuilt each run.
LINTED := babyfast kernels train eval bench
lint: install
	$(PY) -m ruff check $(LINTED)

typecheck: install
	rm -rf build/typecheck && mkdir -p build/typecheck/babyfast
	for f in babyfast/*; do ln -s ../../../$$f build/typecheck/babyfast/; done
	for d in kernels train eval; do ln -s ../../../$$d build/typecheck/babyfast/$$d; done
	$(PY) -m pyright

test-cpp: install
	@set -e; for t in build/py*/core_tests; do $$t; done

# through crash_report.sh: a native crash names the test it killed and prints the crashing thread's stack
test-py: install
	bash tests/crash_report.sh $(PY) -m pytest -q tests

# The same tests on the GPU machine's stack (Python 3.12, torch 2.11, zarr 3.4, PyAV 19, xformers), on this
# CPU: the code must run there too. Not part of `make test` (it downloads a CUDA build of torch, ~3 GB).
COMPAT := .venv-compat
# a working python3.12: on PATH, else one that pyenv installed
PY312  ?= $(shell for p in python3.12 $$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null); do \
            $$p -V >/dev/null 2>&1 && { echo $$p; break; }; done)
$(COMPAT)/.deps: requirements-compat.txt
	@test -n "$(PY312)" || { echo "make test-compat needs Python 3.12 (set PY312=/path/to/python3.12)"; exit 1; }
	test -x $(COMPAT)/bin/python || $(PY312) -m venv $(COMPAT)
	$(COMPAT)/bin/pip install -q torch==2.11.0 triton==3.6.0
	$(COMPAT)/bin/pip install -q -r requirements-compat.txt
	touch $@

test-compat: $(COMPAT)/.deps
	$(COMPAT)/bin/pip install -q --no-deps --no-build-isolation -e .
	@set -e; for t in build/py312/core_tests; do $$t; done
	$(COMPAT)/bin/python -m pytest -q -p no:cacheprovider tests

demo: install
	$(PY) -m babyfast.demo $(DEMO)

# The benchmark peers (torchcodec, decord) live in the same venv but are not runtime dependencies.
# torchcodec needs the system FFmpeg libraries.
.venv/.bench: .venv/.deps requirements-bench.txt
	@ldconfig -p | grep -q libavcodec || (apt-get update -qq && apt-get install -y -qq ffmpeg) || \
	  echo "warning: install the system FFmpeg libraries (apt-get install ffmpeg) for torchcodec"
	$(PIP) install -q -r requirements-bench.txt
	touch $@

# CPU benchmarks: each script (a module of the bench package, run from here) writes bench/results/<name>.json
# through bench._common.write_result; bench.report renders the README's "Performance" section from them.
# GPU benchmarks (bench.kernels, bench.loader_gpu, bench.train --e2e on CUDA) run on a lent GPU: see
# ../shared/GPU.md; bench/gpu_checks.sh runs them there, with the GPU tests.
BENCH_SCRIPTS := ingest reader plan synth loader soak train
bench: install .venv/.bench
	@set -e; for s in $(BENCH_SCRIPTS); do echo "python -m bench.$$s"; $(PY) -m bench.$$s; done
	$(PY) -m bench.report

# Micro-benchmarks (pytest-benchmark, bench/micro/; 40-90 s on 2 cores): planner, reader, CPU decode,
# augmentation, patchify reference, BabyWorld. bench-quick compares each with this machine's baseline in
# bench/results/baseline/<cpu>-<cores>cores/ and fails when its fastest round is more than 25% slower
# (BENCH_FAIL: any --benchmark-compare-fail expression, e.g. mean:10%); bench-baseline saves a new one.
BENCH_FAIL ?= min:25%
BENCH_STORE = bench/results/baseline/$(shell $(PY) -c 'from bench._common import machine_slug; print(machine_slug())')
BENCH_PYTEST = $(PY) -m pytest -q -p no:cacheprovider bench/micro -m "not gpu" --benchmark-only \
	--benchmark-storage=file://$(BENCH_STORE) --benchmark-sort=fullname \
	--benchmark-columns=min,median,mean,stddev,rounds
bench-quick: install
	@test -n "$$(ls $(BENCH_STORE)/*/*.json 2>/dev/null)" || \
	  echo "bench-quick: no baseline for this machine in $(BENCH_STORE); make bench-baseline saves one"
	$(BENCH_PYTEST) --benchmark-compare --benchmark-compare-fail=$(BENCH_FAIL)

bench-baseline: install
	rm -rf $(BENCH_STORE)
	$(BENCH_PYTEST) --benchmark-save=baseline

clean:
	rm -rf build .venv/.built $(DEMO)

# the type stub of the pybind11 module, regenerated from the built extension (tests/test_core_stub.py checks it)
stubs: install
	$(PIP) install -q pybind11-stubgen==3.0.0
	$(PY) -m pybind11_stubgen babyfast._core -o build/stubs
	{ echo "# Generated from the built extension by pybind11-stubgen 3.0.0 (make stubs); tests/test_core_stub.py checks it matches."; \
	  cat build/stubs/babyfast/_core.pyi; } > babyfast/_core.pyi
	$(PY) -m ruff check --fix -q babyfast/_core.pyi  # import order, as the lint wants it
