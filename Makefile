# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WORKER_THREADS ?= 4

.PHONY: run test lint format bench migrate clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

migrate: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput

# Web server and Celery worker (with beat) side by side; Ctrl-C stops both.
run: migrate
	$(PY) manage.py seed_demo
	@echo "Keter is starting on http://127.0.0.1:$(PORT)/  (Ctrl-C stops the web server and the worker)"
	@bash -c 'trap "kill 0" EXIT; \
	  $(PY) -m celery -A keter worker --beat --pool=threads --concurrency=$(WORKER_THREADS) \
	    --schedule=var/celerybeat-schedule --loglevel=WARNING & \
	  $(PY) manage.py runserver 127.0.0.1:$(PORT)'

test: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Each script prints one line: its figure next to a reference measured in the same run.
bench: $(VENV)/.dev
	@for script in tests/bench/bench_*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf var/ staticfiles/ .pytest_cache/
