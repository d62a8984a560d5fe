# make run:  set everything up and start the studio on the embedded default (SQLite, no services)
# make test: set everything up and run the whole suite, on SQLite and on PostgreSQL
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/studio
# pytest-xdist workers: each has its own test database, live server, browser and Celery queue.
TEST_WORKERS ?= 4

.PHONY: run test lint check install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { scripts/apt-install.sh python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py bootstrap --url http://$(HOST):$(PORT)
	@sed 's#http://127.0.0.1:8000#http://$(HOST):$(PORT)#' docs/welcome.txt
	STUDIO_BASE_URL=$${STUDIO_BASE_URL:-http://$(HOST):$(PORT)} exec $(BIN)/gunicorn studio.wsgi --bind $(HOST):$(PORT) --workers 2 --threads 4 --access-logfile - --log-level warning

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run -v0
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

test: lint
	scripts/ensure-services.sh postgres redis
	scripts/ensure-browser.sh
	$(BIN)/python manage.py collectstatic --noinput -v0
	@echo "== the suite on SQLite (the embedded default)"
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)
	@echo "== the suite on PostgreSQL ($(TEST_DATABASE_URL))"
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
