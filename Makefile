# trapbench: `make setup` once, then `make bench` (main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= results
# make test's workers: 2 matches the 2-core machines CI and users run on (6-8 min on 2 with a warm compile cache)
TEST_WORKERS ?= 2

.PHONY: setup bench report compare bench-check gate-power baseline timing test lint format perf perf-gpu clean

setup:  ## create .venv and install trapbench with its test tools (CPU torch, pinned)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"

bench:  ## run the default suite, write $(OUT)/bench.json and the HTML report
	$(BIN)/trapbench run --suite default -o $(OUT)/bench.json --force
	$(BIN)/trapbench report $(OUT)/bench.json -o $(OUT)/bench.html

report:  ## re-render the report of the last `make bench`
	$(BIN)/trapbench report $(OUT)/bench.json -o $(OUT)/bench.html

compare:  ## a new optimizer against the baselines: make compare OPT=path/file.py:Class@lr=0.01
	@test -n "$(OPT)" || { echo "usage: make compare OPT=path/file.py:Class[@lr=0.01]"; exit 2; }
	$(BIN)/trapbench compare --optimizer "$(OPT)" --suite $(or $(SUITE),default) \
		-o $(OUT)/compare.json --report $(OUT)/compare.html

bench-check:  ## the CI gate: smoke suite against the committed baseline
	$(BIN)/trapbench run --suite smoke -o $(OUT)/ci.json --force --no-progress
	$(BIN)/trapbench check --strict --baseline baselines/ci.json $(OUT)/ci.json

gate-power:  ## the gate's sensitivity: mutated training paths it flags on the smoke suite
	$(BIN)/python -m benchmarks.gate_power --ladder

baseline:  ## refresh the committed CI baseline (after an intended change)
	$(BIN)/trapbench run --suite smoke -o baselines/ci.json --force --no-progress

perf:  ## engine throughput ratios (issue 8), measured in one run: prints them, writes $(OUT)/perf.json
	$(BIN)/python -m benchmarks.perf --output $(OUT)/perf.json

perf-gpu:  ## seed-steps/s on a CUDA GPU next to one CPU core (needs a GPU): writes $(OUT)/perf-gpu.json
	$(BIN)/python -m benchmarks.perf_gpu --output $(OUT)/perf-gpu.json

timing:  ## pytest-benchmark timing benches, saved for comparison across commits
	$(BIN)/python -m pytest benchmarks/ -o python_files='bench_*.py' -p no:randomly \
		--benchmark-enable --benchmark-autosave $(BENCH_ARGS)

test:  ## the test suite (the same command CI runs), on $(TEST_WORKERS) pytest-xdist workers
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format:
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(OUT) .pytest_cache .benchmarks
