# The two commands: `make demo` (install + run the whole pipeline on the default data) and
# `make test` (install + lint + run the whole test suite). Everything else is a convenience.
# Only the user's own runs (demo, lastfm, ui) record into .dagster_home; the suite makes a
# Dagster instance and a data dir of its own (tests/conftest.py).
VENV ?= .venv
PY := $(VENV)/bin/python
USER_HOME := $(CURDIR)/.dagster_home

.PHONY: setup demo test lint ui lastfm serve stop clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh recsys_dagster/jvm/*.java
	VENV=$(VENV) bash scripts/bootstrap.sh

demo lastfm ui: export DAGSTER_HOME ?= $(USER_HOME)
# Small data: the Spark profile for runs of up to about a million play rows (its file says why).
demo lastfm: export RECSYS_SPARK_PROFILE ?= small

demo: setup
	@mkdir -p "$(DAGSTER_HOME)"
	$(PY) -m recsys_dagster.cli run --config resources/config/demo.yaml

lastfm: setup
	@mkdir -p "$(DAGSTER_HOME)"
	$(PY) -m recsys_dagster.cli run --config resources/config/lastfm-2k.yaml

lint: setup
	$(VENV)/bin/ruff check .

test: setup
	@start=$$(date +%s); \
	$(VENV)/bin/ruff check . && $(PY) -m pytest; status=$$?; \
	echo "make test: lint and suite took $$(( $$(date +%s) - start )) s"; exit $$status

ui: setup
	@mkdir -p "$(DAGSTER_HOME)"
	@test -f "$(DAGSTER_HOME)/dagster.yaml" || cp deploy/dagster.dev.yaml "$(DAGSTER_HOME)/dagster.yaml"
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p $${RECSYS_PORT:-3000}

# The deployment, as in production (docs/operations.md, "Deploying"): PostgreSQL, the code
# server, the webserver and the daemon in the background; `make stop` stops them.
serve: setup
	$(PY) -m recsys_dagster.deployment serve

stop:
	$(PY) -m recsys_dagster.deployment stop

clean:
	rm -rf data .dagster_home .pytest_cache test-artifacts
