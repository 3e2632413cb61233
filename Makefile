# trapbench: `make setup` once, then `make bench` (main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= results

.PHONY: setup bench report test lint format perf clean

setup:  ## create .venv and install trapbench with its test tools (CPU torch, pinned)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"

bench:  ## run the default suite, write $(OUT)/bench.json and the HTML report
	$(BIN)/trapbench run --suite default -o $(OUT)/bench.json --force
	$(BIN)/trapbench report $(OUT)/bench.json -o $(OUT)/bench.html

report:  ## re-render the report of the last `make bench`
	$(BIN)/trapbench report $(OUT)/bench.json -o $(OUT)/bench.html

test:  ## the test suite (the same command CI runs)
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format:
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(OUT) .pytest_cache .benchmarks
