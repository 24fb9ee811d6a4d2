# Two commands from a fresh clone: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The torch build this project is tested with; override with `make TORCH="torch torchvision"`.
TORCH ?= torch==2.14.1 torchvision==0.29.1
# The data folder: ../shared/data where it exists (CI), else nas-gym's own default (~/.cache/nas_gym).
ifneq ($(wildcard ../shared/data),)
export NAS_GYM_DATA ?= $(abspath ../shared/data)
endif

.PHONY: demo test lint venv clean

$(BIN)/nas-gym: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

venv: $(BIN)/nas-gym

demo: venv
	$(BIN)/nas-gym download cifar10  # skips what is present and valid
	$(BIN)/nas-gym search --env NASCifar-v0 --agent reinforce --episodes 12 --budget smoke --seed 0

test: lint
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check nas_gym agents tests examples benchmarks
	$(BIN)/ruff format --check nas_gym agents tests examples benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) runs .pytest_cache
