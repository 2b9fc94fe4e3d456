# Every install step lives here: `make demo` and `make test` work on a fresh machine.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.edgead-installed
EXTRAS  ?= train,mqtt,opcua,genicam,fleet,openvino,dev
PYTEST  := $(BIN)/python -m pytest
# Fast suite: everything but `slow`, `hardware` and `gpu` (those skip with a reason anyway).
TEST_ARGS ?=

.PHONY: all venv test test-all demo bench bench-peers docs clean

all: venv

$(STAMP): setup.py constraints-cpu.txt scripts/system-deps.sh
	bash scripts/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -c constraints-cpu.txt -e ".[$(EXTRAS)]"
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(PYTEST) -m "not slow and not hardware" $(TEST_ARGS)

test-all: $(STAMP)
	$(PYTEST) $(TEST_ARGS)

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

clean:
	rm -rf $(VENV) .venv-peers build *.egg-info .pytest_cache
