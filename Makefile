# The two commands: `make run` (the embedded stack) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export VBR_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test lint bench venv system-packages clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: venv
	scripts/system-packages.sh run
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py firstrun
	$(VENV)/bin/honcho -f Procfile start $$($(PY) manage.py demo_setup --print-processes)

lint: venv
	$(VENV)/bin/ruff check .

test: venv
	scripts/system-packages.sh test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: venv
	scripts/system-packages.sh run
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test-output
