# Two commands take a fresh clone to a built warehouse: `make run` and `make test`.
# Each creates .venv in the checkout if it is missing and installs the pinned dependencies.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

RECS_HOME ?= $(CURDIR)/.recs_home
export RECS_HOME
export DAGSTER_HOME := $(RECS_HOME)/dagster
# implicit and numpy oversubscribe 2 cores with their own thread pools otherwise.
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: install run test test-fast ui mlflow serve clean benchmark-ingest benchmark-streaming benchmark-train benchmark-serve benchmark-catalogue benchmark-experiments real-data-shapes

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: install  ## materialise the whole asset graph headless and print a summary
	$(PY) -m recs_assets.cli run

test: install  ## run the whole test suite (never writes into the checkout); CI runs this
	$(PY) -m pytest

test-fast: install  ## the inner loop: every test but the slow ones (whole-graph runs, real datasets)
	$(PY) -m pytest -m "not slow" -q

ui: install  ## the Dagster UI on the same instance `make run` writes to
	$(PY) -m recs_assets.cli prepare
	@# Started from the instance folder: from the checkout, Dagster would warn about ./dagster.yaml.
	@# exec: the SIGTERM make passes on reaches dagster, not only the shell. --default-signal=INT: dagster
	@# handles SIGTERM as SIGINT, which a start in the background (`make ui &`) leaves ignored.
	cd $(DAGSTER_HOME) && exec env --default-signal=INT $(CURDIR)/$(VENV)/bin/dagster dev -w $(CURDIR)/workspace.yaml -p $(or $(DAGSTER_PORT),3000)

mlflow: install  ## the MLflow UI on the home folder's tracking database and registry
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(RECS_HOME)/mlflow.db \
		--default-artifact-root $(RECS_HOME)/mlflow/artifacts --host 127.0.0.1 --port $(or $(MLFLOW_PORT),5000)

serve: install  ## the recommendation API on the latest snapshots (port RECS_API_PORT, default 8000); starts the embedded broker unless RECS_BROKER_URL is set
	$(PY) -m recs_assets.serving --embedded-broker

benchmark-train: install  ## fit time and peak memory of every model on ml-100k and 1M simulated events
	$(PY) benchmarks/train.py

benchmark-serve: install  ## API latency and throughput on loopback vs a bare FastAPI endpoint; snapshot build time
	$(PY) benchmarks/serve.py

benchmark-catalogue: install  ## make-run time and peak memory at 5k, 50k and 200k items; model fit/recommend at each size
	$(PY) benchmarks/catalogue.py

real-data-shapes: install  ## write reshaped real datasets (anonymous, untimed, large catalogue, no prices, quirky files) under SHAPES_DIR
	$(PY) benchmarks/real_data_shapes.py --out $(or $(SHAPES_DIR),$(RECS_HOME)/shapes)

benchmark-streaming: install  ## live events/s through API -> broker -> warehouse landing, and POST -> queryable latency at 100 and 1,000 events/s
	$(PY) benchmarks/streaming.py

benchmark-experiments: install  ## A/A false positives, power at +3% conversion, bandit regret, off-policy errors (simulator and Open Bandit), time of one A/B test
	$(PY) benchmarks/experiments.py

benchmark-ingest: install  ## ingest throughput and peak memory at 1M and 10M simulated events
	$(PY) benchmarks/ingest.py

clean:  ## delete everything the pipeline wrote (the home folder), keep .venv
	rm -rf $(RECS_HOME)
