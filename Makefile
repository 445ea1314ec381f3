# geoexport: `make run` starts the whole service on loopback; `make test` sets up and runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
GDAL_VALIDATOR := /usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup run clean-data sam-config build deploy-local test lint typecheck cfn-lint unit integration e2e bench cold-start gdal-tools browser vendor openapi clean

help:
	@echo "make run    - set up, then start emulator + API + state machine + sample catalog on loopback"
	@echo "make test   - set up, then lint, type-check, cfn-lint and run unit, integration and e2e tests"
	@echo "make bench  - raster (GPKG, COG, memory) against GDAL peers; fan-out 1 vs 2 workers; feature index at 100k; VECTOR export of 1M points vs ogr2ogr; durability"
	@echo "make cold-start - cold import and first request of every API function"
	@echo "make clean-data - wipe the local stack's state (.geoexport/ or GEOEXPORT_DATA_DIR)"
	@echo "make build  - sam build (no Docker): every function and its layers in .aws-sam/build"
	@echo "make deploy-local - build, then deploy template.yaml unchanged onto MiniStack (loopback) and print its API URL"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

# Debian's GDAL: the GeoPackage validator (python3-gdal) the tests run, and the CLI the benchmark races.
gdal-tools:
	@if [ ! -f $(GDAL_VALIDATOR) ] || ! command -v gdalwarp >/dev/null; then \
	  echo "installing Debian's gdal-bin and python3-gdal"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq gdal-bin python3-gdal >/dev/null; \
	fi

# Debian's Chromium for the web tool's browser tests (Playwright drives it: its own download needs the internet).
browser:
	@if ! command -v chromium >/dev/null; then \
	  echo "installing Debian's chromium"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	fi

# Maintainers only: refresh the vendored browser libraries from web/package-lock.json (needs npm and the
# registry); the copies in functions/web/static/vendor are committed, so users never need npm.
vendor:
	cd web && npm ci --ignore-scripts
	cp web/node_modules/maplibre-gl/dist/maplibre-gl.js web/node_modules/maplibre-gl/dist/maplibre-gl.css \
	  web/node_modules/maplibre-gl/LICENSE.txt functions/web/static/vendor/maplibre-gl/
	cp web/node_modules/terra-draw/dist/terra-draw.umd.js functions/web/static/vendor/terra-draw/
	cp web/node_modules/terra-draw-maplibre-gl-adapter/dist/terra-draw-maplibre-gl-adapter.umd.js \
	  functions/web/static/vendor/terra-draw-maplibre-gl-adapter/
	cp web/node_modules/swagger-ui-dist/swagger-ui-bundle.js web/node_modules/swagger-ui-dist/swagger-ui.css \
	  web/node_modules/swagger-ui-dist/LICENSE web/node_modules/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt \
	  functions/web/static/vendor/swagger-ui/

# State lives in $(DATA_DIR) (GEOEXPORT_DATA_DIR): tasks, files, features and clients survive a restart.
DATA_DIR ?= $(or $(GEOEXPORT_DATA_DIR),.geoexport)

run: $(STAMP)
	GEOEXPORT_DATA_DIR=$(DATA_DIR) $(BIN)/python -m geoexport_local run

# Wipe the local stack's state (stop `make run` first): every local task, export, feature and client.
clean-data:
	rm -rf $(DATA_DIR)

# The SAM CLI offline: no telemetry, and no weekly PyPI version check (its config says it checked).
SAM_ENV := SAM_CLI_TELEMETRY=0 __SAM_CLI_APP_DIR=$(CURDIR)/.aws-sam/cli PATH=$(CURDIR)/$(BIN):$$PATH

sam-config:
	@mkdir -p .aws-sam/cli
	@echo '{"telemetryEnabled": false, "lastVersionCheck": 4102444800}' > .aws-sam/cli/metadata.json

# sam build without Docker: python3.11 functions, layers from manylinux2014 wheels (see layers/*-deps).
build: $(STAMP) sam-config
	$(SAM_ENV) $(BIN)/sam build --template template.yaml
	$(SAM_ENV) $(BIN)/sam validate --lint --template template.yaml

# The same template through CloudFormation (samlocal deploy) onto MiniStack on loopback; Ctrl-C stops it.
deploy-local: build
	$(SAM_ENV) $(BIN)/python -m geoexport_local.deploy

# Regenerate functions/docs/openapi.json and events/schemas/ from the code (tests fail when committed files drift).
openapi: $(STAMP)
	$(BIN)/python -m geoexport_local.openapi .
	$(BIN)/python -m geoexport_local.event_schemas .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

cfn-lint: $(STAMP)
	$(BIN)/cfn-lint template.yaml

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP) gdal-tools
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP) gdal-tools browser
	$(BIN)/pytest -q tests/e2e

# Unit + integration tests on two workers, with line coverage of the Lambda code (fails under 85%), then
# the build and end-to-end tiers (whole processes: their coverage is not measured), a file to a worker on
# two workers (each worker starts its own local stack: a stack's process is bound to one core by its GIL).
test: $(STAMP) gdal-tools browser lint typecheck cfn-lint build
	$(SAM_ENV) $(BIN)/pytest -q -n 2 --cov --cov-report=term --cov-fail-under=85 tests/unit tests/integration
	$(SAM_ENV) $(BIN)/pytest -q -n 2 --dist loadfile tests/build tests/e2e

# FEATURES=10000 for a shorter feature-index run (the issue's figures are at 100,000: ~15 minutes).
bench: $(STAMP) gdal-tools
	$(BIN)/python bench/clip_package.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/features.py
	$(BIN)/python bench/vector_export.py
	$(BIN)/python bench/durability.py

# Cold import and first request of every API function, as built (add `--tree <checkout>` to compare).
cold-start: build
	$(BIN)/python bench/cold_start.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
