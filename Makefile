# Stillroom: `make run` starts the app on the embedded default model, `make test` runs the suite.
# Both create the virtual environment .venv on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stillroom-installed
# The CPU build of PyTorch; an unpinned torch would pull a several-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# Extra flags for building llama.cpp, e.g. CMAKE_ARGS="-DGGML_CUDA=on" (see README).
export CMAKE_ARGS

.PHONY: setup run test bench clean-venv package

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	HF_HUB_OFFLINE=1 $(PY) -m app

test: setup
	QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 $(PY) -m pytest -q

bench: setup
	HF_HUB_OFFLINE=1 $(PY) tests/bench/run_all.py

# The one-folder app in dist/stillroom (see packaging/README.md); then packaging/build_appimage.sh.
package: setup
	$(PY) -m pip install --quiet -e ".[package]"
	HF_HUB_OFFLINE=1 $(PY) -m PyInstaller packaging/stillroom.spec --noconfirm --distpath dist --workpath build

clean-venv:
	rm -rf $(VENV)
