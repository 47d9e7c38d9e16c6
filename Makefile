# jobdeck — `make run` starts the whole stack, `make test` checks it. See README.md.
SHELL := /bin/bash
PY_VERSION ?= 3.11
TOOLS := $(CURDIR)/.tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install lint fmt test test-fast migrate run bench services browser clean fuzz

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet 'uv>=0.5'

install: $(if $(shell command -v uv 2>/dev/null),,$(TOOLS)/bin/uv)
	$(UV) sync --locked --python $(PY_VERSION)
	@if [ -f tests/node/package.json ]; then cd tests/node && npm ci --silent --no-audit --no-fund; fi
	@# The dashboard serves its pinned browser libraries itself (no CDN at run time).
	cd services/dashboard && npm ci --silent --no-audit --no-fund

lint: install
	$(VENV)/bin/ruff check libs services tests bench
	$(VENV)/bin/ruff format --check libs services tests bench
	$(VENV)/bin/mypy libs/jobdeck/src services/*/src

fmt: install
	$(VENV)/bin/ruff check --fix libs services tests bench
	$(VENV)/bin/ruff format libs services tests bench

services:
	@bash deploy/local/ensure-services.sh
	@bash deploy/local/ensure-promtool.sh >/dev/null || echo "promtool unavailable: the alert-rule test skips" >&2

browser:
	@bash deploy/local/ensure-browser.sh

test: lint services browser
	$(VENV)/bin/pytest -q -p no:cacheprovider -n 2 --dist worksteal

migrate: install services
	$(VENV)/bin/jobdeck migrate

run: install services migrate
	@bash deploy/local/run.sh

# A long schemathesis run against the live API (rate limits off): >= 5,000 cases, no 5xx,
# every response as documented. `make test` runs the same test with 25 examples per operation.
fuzz: install services
	JOBDECK_FUZZ_EXAMPLES=$${JOBDECK_FUZZ_EXAMPLES:-400} JOBDECK_FUZZ_MIN_CASES=$${JOBDECK_FUZZ_MIN_CASES:-5000} \
		$(VENV)/bin/pytest -q -s -p no:cacheprovider tests/e2e/test_api_openapi.py -k fuzz

bench: install services
	@bash bench/run.sh

clean:
	rm -rf $(VENV) $(TOOLS)
