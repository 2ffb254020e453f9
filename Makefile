# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY := true
export NO_MKDOCS_2_WARNING := 1

.PHONY: demo test test-deploy install lint format docs package airflow-dag db-upgrade serve viz clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,docs,deploy]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kedro run --pipelines=daily --env=sample

test: $(STAMP)
	$(BIN)/pytest

# The deployment tests (slow: fresh virtual environments): the installed wheel runs the daily
# pipeline and serves the API outside the checkout, and Airflow 3 runs the generated DAG.
test-deploy: $(STAMP)
	$(BIN)/pytest -m slow tests/test_deployment.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

db-upgrade: $(STAMP)
	$(BIN)/python -m stock_pipeline.db upgrade

docs: $(STAMP)
	$(BIN)/python -m stock_pipeline.api.openapi docs/openapi.json
	$(BIN)/mkdocs build --strict

package: $(STAMP)
	$(BIN)/kedro package

AIRFLOW_ENV ?= local
airflow-dag: $(STAMP)
	$(BIN)/kedro airflow create --pipelines=daily --env=$(AIRFLOW_ENV) --group-by=memory \
		--jinja-file=airflow/dag_template.j2 --target-dir=airflow_dags

serve: $(STAMP)
	$(BIN)/uvicorn stock_pipeline.api.main:app --host 127.0.0.1 --port 8000

viz: $(STAMP)
	$(BIN)/kedro viz build --include-hooks

clean-data:
	find data -type f ! -name .gitkeep ! -path 'data/sample/*' -delete
