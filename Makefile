# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY := true

.PHONY: demo test install lint format db-upgrade serve viz clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kedro run --pipelines=daily --env=sample

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

db-upgrade: $(STAMP)
	$(BIN)/python -m stock_pipeline.db upgrade

serve: $(STAMP)
	$(BIN)/uvicorn api.main:app --host 127.0.0.1 --port 8000

viz: $(STAMP)
	$(BIN)/kedro viz build --include-hooks

clean-data:
	find data -type f ! -name .gitkeep ! -path 'data/sample/*' -delete
