# Two commands do all the set-up on a fresh machine:
#   make run    offline backtest of CombinedStrategy on the built-in market
#   make test   the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench lock clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) live_trader.py --strategy combined --backtest $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) bench/bench_backtest.py $(ARGS)

lock: $(STAMP)
	$(PY) -m pip install --quiet -r requirements.in
	$(PY) -m pip freeze --exclude-editable > requirements.txt

clean:
	rm -rf $(VENV) reports .pytest_cache
