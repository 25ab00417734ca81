# The two commands: `make demo` (install + run the whole pipeline on the default data) and
# `make test` (install + run the whole test suite). Everything else is a convenience.
VENV ?= .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup demo test ui lastfm clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh
	VENV=$(VENV) bash scripts/bootstrap.sh

demo: setup
	@mkdir -p "$(DAGSTER_HOME)"
	$(PY) -m recsys_dagster.cli run --config resources/config/demo.yaml

lastfm: setup
	@mkdir -p "$(DAGSTER_HOME)"
	$(PY) -m recsys_dagster.cli run --config resources/config/lastfm-2k.yaml

test: setup
	$(PY) -m pytest

ui: setup
	@mkdir -p "$(DAGSTER_HOME)"
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000

clean:
	rm -rf data .dagster_home .pytest_cache test-artifacts
