# Keystone MDM — `make demo` and `make test` work on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ENV := env -u DATABASE_URL -u REDIS_URL DEBUG=1

.PHONY: setup demo demo-data test test-sqlite screenshots lint typecheck format bench-ingest clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

# Embedded mode: SQLite under var/, Celery eager, no server needed.
demo-data: setup
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py generate_demo_data
	$(DEMO_ENV) $(PY) manage.py load_demo_data
	for entity in customer product contract entitlement; do $(DEMO_ENV) $(PY) manage.py run_matching $$entity || exit 1; done
	$(DEMO_ENV) $(PY) manage.py create_demo_admin

demo: demo-data
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:8000

# The whole suite. With DATABASE_URL / REDIS_URL set (CI) it runs on PostgreSQL and Redis;
# without them on SQLite, and the tests that need a server skip with the reason.
test: setup
	$(PY) -m pytest

test-sqlite: setup
	$(DEMO_ENV) $(PY) -m pytest

# The README's screenshots (docs/screenshots/), rewritten only when asked: the browser tests
# otherwise write theirs to a temporary directory.
screenshots: setup
	$(PY) -m pytest tests/stewardship/test_browser.py tests/stewardship/test_browser_integrations.py --screenshots docs/screenshots

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy with the Django and DRF plugins over the apps (configuration in pyproject.toml: services,
# selectors and mdm/db fully typed).
typecheck: setup
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench-ingest: setup
	$(PY) bench/ingest.py

clean:
	rm -rf var/demo var/keystone.sqlite3*
