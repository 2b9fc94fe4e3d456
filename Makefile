# Every install step lives here: `make demo` and `make test` work on a fresh machine.
# The venv is installed from a lock (requirements/*.lock: exact versions and sha256 hashes, written by `make lock`),
# so a machine set up next month gets the stack that was tested. See docs/dependencies.md.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.edgead-installed
# The two install sets, each with its own lock. The build host (CI, `make test`, `make demo`): Python 3.11, x86_64.
EXTRAS  ?= train,mqtt,opcua,ui,genicam,fleet,openvino,dev
LOCK    := requirements/build-host.lock
LOCK_PYTHON   := 3.11
LOCK_PLATFORM := x86_64-manylinux_2_28
# The station (core + these extras; a station with neither MQTT nor OPC UA simply leaves them unused): Python 3.10
# (JetPack 6) on aarch64, checked to resolve to the same pins on x86_64.
STATION_EXTRAS   ?= station,mqtt,opcua,ui
STATION_LOCK     := requirements/station.lock
STATION_PYTHON   := 3.10
STATION_PLATFORMS := aarch64-manylinux_2_35 x86_64-manylinux_2_28
# Where the CPU build of torch lies (a folder or a URL such as https://download.pytorch.org/whl/cpu): an unpinned
# torch from PyPI is a multi-GB CUDA build.
TORCH_WHEELS ?= /opt/wheels
FIND_LINKS   := $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS),$(if $(findstring ://,$(TORCH_WHEELS)),--find-links $(TORCH_WHEELS),))
PYTEST  := $(BIN)/python -m pytest
# Fast suite: everything but `slow`, `hardware` and `gpu` (those skip with a reason anyway).
TEST_ARGS ?=
# `make test-latest`: a second venv with the newest versions setup.py allows (torch stays pinned).
LATEST_VENV ?= .venv-latest
# `make lock UPGRADE=1`: move every pin to the newest allowed version (default: keep pins, add/remove what changed).
# --refresh-package edgead: uv caches a source tree's metadata keyed on setup.py, and the extras live in
# edgead/extras.py.
UPGRADE ?=
UV      ?= $(BIN)/uv
UV_COMPILE = $(UV) pip compile setup.py --quiet --generate-hashes --no-strip-markers --refresh-package edgead \
             --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade,)

.PHONY: all venv test test-all test-latest lock demo bench bench-peers docs clean

all: venv

$(STAMP): setup.py edgead/extras.py $(LOCK) constraints-cpu.txt scripts/system-deps.sh scripts/preflight.sh
	bash scripts/system-deps.sh
	bash scripts/preflight.sh $(PYTHON) $(LOCK_PYTHON) $(TORCH_WHEELS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(FIND_LINKS) --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

$(LOCK) $(STATION_LOCK):
	@echo "$@ is missing: run 'make lock' (before any venv exists: make lock UV=uv, with uv on PATH)" >&2; exit 2

test: $(STAMP)
	$(PYTEST) -m "not slow and not hardware" $(TEST_ARGS)

test-all: $(STAMP)
	$(PYTEST) $(TEST_ARGS)

# Drift check: the suite against the newest versions setup.py allows, in $(LATEST_VENV) (the locked .venv is left
# alone). Prints what differs from the lock first.
test-latest:
	bash scripts/preflight.sh $(PYTHON) $(LOCK_PYTHON) $(TORCH_WHEELS)
	test -x $(LATEST_VENV)/bin/python || $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install -q --disable-pip-version-check --upgrade pip setuptools
	$(LATEST_VENV)/bin/python -m pip install -q --disable-pip-version-check $(FIND_LINKS) --upgrade \
		--upgrade-strategy eager -c constraints-cpu.txt -e ".[$(EXTRAS)]"
	$(LATEST_VENV)/bin/python scripts/locks.py drift $(LOCK)
	EDGEAD_TEST_LATEST=1 $(LATEST_VENV)/bin/python -m pytest -m "not slow and not hardware" $(TEST_ARGS)

# Refresh both locks from setup.py (uv, itself pinned in the build-host lock). Run it after changing a dependency
# or an extra in setup.py, or EXTRAS above; commit requirements/*.lock with the change.
lock:
	test -x $(UV) || $(MAKE) venv
	$(UV_COMPILE) $(foreach e,$(subst $(,), ,$(EXTRAS)),--extra $(e)) -c constraints-cpu.txt $(FIND_LINKS) \
		--python-version $(LOCK_PYTHON) --python-platform $(LOCK_PLATFORM) -o $(LOCK)
	$(UV_COMPILE) $(foreach e,$(subst $(,), ,$(STATION_EXTRAS)),--extra $(e)) \
		--python-version $(STATION_PYTHON) --python-platform $(firstword $(STATION_PLATFORMS)) -o $(STATION_LOCK)
	$(BIN)/python scripts/locks.py station $(STATION_LOCK) $(STATION_PYTHON) $(wordlist 2,9,$(STATION_PLATFORMS))
	$(BIN)/python scripts/locks.py check

demo: $(STAMP)
	$(BIN)/edgead demo

bench: $(STAMP)
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/latency.py

# anomalib against edgead on the real images; anomalib goes into a virtualenv of its own (.venv-peers, several GB).
bench-peers: $(STAMP)
	$(BIN)/python benchmarks/peers.py

docs: $(STAMP)
	$(BIN)/python -m edgead.docsgen docs/config.md
	$(BIN)/python -m edgead.plant_docs docs/plant-integration.md
	$(BIN)/python -m edgead.models.catalog docs/models/README.md

clean:
	rm -rf $(VENV) $(LATEST_VENV) .venv-peers build *.egg-info .pytest_cache

, := ,
