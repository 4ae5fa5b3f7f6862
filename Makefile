# Thin entry points; CMake does the building. `make demo` and `make test` work on a fresh Debian 12.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps configure build demo test bench clean

all: build

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The demo builds only the executable it runs; tests and benchmarks wait for `make test`/`make bench`.
demo: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target shrink
	$(BUILD_DIR)/shrink run recipes/quickstart.yaml --out runs/quickstart

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# Writes every benchmark's figures to $(BUILD_DIR)/bench.json as well as the console table.
bench: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target shrink_bench
	$(BUILD_DIR)/bench/shrink_bench --benchmark_counters_tabular=true \
	  --benchmark_out=$(BUILD_DIR)/bench.json --benchmark_out_format=json
	@echo "bench: results in $(BUILD_DIR)/bench.json"

clean:
	rm -rf $(BUILD_DIR)
