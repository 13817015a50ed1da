# Stillroom: `make run` starts the app on the embedded default model, `make test` runs the suite.
# Both create the virtual environment .venv on first use.

PYTHON ?= python3
# One virtual environment per interpreter: `make test PYTHON=python3.12` uses .venv-python3.12.
VENV ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stillroom-installed

# PyTorch (embeddings for the audit). CPU-only wheels from PyTorch's own index by default, so a
# machine without a GPU never downloads CUDA; where that index cannot be reached, PyPI (whose Linux
# wheels are CUDA builds). GPU users: `make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128`.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

# llama.cpp, built from source by llama-cpp-python. LLAMA_BUILD picks the CPU code it is compiled for:
#   native   (default) this machine's instruction set (-march=native) with AMX switched off: llama.cpp's
#            AMX matrix code segfaults on the first decode (llama.cpp issue 20824), see docs/models.md
#   portable any x86-64 CPU with AVX2/FMA/F16C (GGML_NATIVE=OFF); what `make package` ships
# Extra flags go in CMAKE_ARGS, e.g. CMAKE_ARGS="-DGGML_CUDA=on" (see README).
LLAMA_BUILD ?= native
LLAMA_CPP_SPEC := llama-cpp-python==0.3.36
ifeq ($(LLAMA_BUILD),portable)
LLAMA_FLAGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF
else ifeq ($(shell uname -m),x86_64)
LLAMA_FLAGS := -DGGML_NATIVE=ON -DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8
else
LLAMA_FLAGS := -DGGML_NATIVE=ON
endif
LLAMA_CMAKE_ARGS := $(strip $(LLAMA_FLAGS) $(CMAKE_ARGS))
# pip's wheel cache ignores build flags, so each set of flags gets its own wheel folder.
LLAMA_WHEELS := $(HOME)/.cache/stillroom/wheels/$(shell printf '%s' '$(LLAMA_CPP_SPEC) $(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-16)

.PHONY: setup run test bench clean-venv package llama-wheel

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel
	$(PY) -m pip install --quiet --timeout 15 --retries 0 --index-url "$(TORCH_INDEX)" "$(TORCH_SPEC)" \
	  || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(MAKE) --no-print-directory llama-wheel PY=$(abspath $(PY))
	$(PY) -m pip install --quiet --force-reinstall --no-deps --no-index --find-links "$(LLAMA_WHEELS)" "$(LLAMA_CPP_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	printf '%s\n' '$(LLAMA_CMAKE_ARGS)' > $(VENV)/.llama-cmake-args
	touch $(STAMP)

# Builds llama-cpp-python once per set of flags (about 5-8 minutes on 2 cores).
llama-wheel:
	@if ls "$(LLAMA_WHEELS)"/llama_cpp_python-*.whl >/dev/null 2>&1; then \
	  echo "llama.cpp: using $(LLAMA_WHEELS)"; \
	else \
	  echo "llama.cpp: building with $(LLAMA_CMAKE_ARGS)"; \
	  mkdir -p "$(LLAMA_WHEELS)" && \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --quiet --no-deps --no-cache-dir \
	    --no-binary llama-cpp-python -w "$(LLAMA_WHEELS).tmp" "$(LLAMA_CPP_SPEC)" && \
	  mv "$(LLAMA_WHEELS).tmp"/*.whl "$(LLAMA_WHEELS)"/ && rm -rf "$(LLAMA_WHEELS).tmp"; \
	fi

setup: $(STAMP)

run: setup
	HF_HUB_OFFLINE=1 $(PY) -m app

test: setup
	QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 $(PY) -m pytest -q

bench: setup
	HF_HUB_OFFLINE=1 $(PY) tests/bench/run_all.py

# The one-folder app in dist/stillroom (see packaging/README.md); then packaging/build_appimage.sh.
# It bundles the portable llama.cpp build (installed into the venv for the build, the venv's own put back after).
PORTABLE_WHEELS = $(shell $(MAKE) --no-print-directory -s llama-wheel-dir LLAMA_BUILD=portable)
package: setup
	$(MAKE) --no-print-directory llama-wheel LLAMA_BUILD=portable PY=$(abspath $(PY))
	$(PY) -m pip install --quiet -e ".[package]"
	$(PY) -m pip install --quiet --force-reinstall --no-deps --no-index --find-links "$(PORTABLE_WHEELS)" "$(LLAMA_CPP_SPEC)"
	HF_HUB_OFFLINE=1 $(PY) -m PyInstaller packaging/stillroom.spec --noconfirm --distpath dist --workpath build; \
	  status=$$?; \
	  $(PY) -m pip install --quiet --force-reinstall --no-deps --no-index --find-links "$(LLAMA_WHEELS)" "$(LLAMA_CPP_SPEC)"; \
	  exit $$status

llama-wheel-dir:
	@echo "$(LLAMA_WHEELS)"

clean-venv:
	rm -rf $(VENV)
