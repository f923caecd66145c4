# The two commands of the README: `make demo` (main job) and `make test` (lint + tests).
# Both create or reuse .venv, install the pinned torch and this project in editable mode
# (extras dev, ray, flower).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean-venv

$(STAMP): pyproject.toml requirements-torch.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-torch.txt
	$(BIN)/python -m pip install -q -e ".[dev,ray,flower]"
	touch $(STAMP)

# each demo writes a run folder of its own (runs/polymnist_cross-<time>): a folder that holds a
# run is never overwritten without --overwrite
demo: $(STAMP)
	$(BIN)/python -m experiments.polymnist_cross --quick $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# pytest exits 5 when it collects no test: that is a failure here, since the suite is never empty.
test: lint
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5): failing" >&2; exit 1; fi; \
	exit $$rc

bench: $(STAMP)
	$(BIN)/python -m benchmarks --quick

clean-venv:
	rm -rf $(VENV)
