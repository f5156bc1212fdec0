# Two commands do all the set-up on a fresh machine:
#   make run    offline backtest of CombinedStrategy on the built-in market
#   make test   the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench lock clean mutate

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

# Mutation testing (not in CI): mutmut mutates the modules in pyproject's [tool.mutmut] only_mutate, runs the
# tests that reach each mutated function, then tools/mutation_score.py prints the score per module.
#   make mutate                             every listed module (hours: see tools/mutation_score.py --estimate)
#   make mutate MODULE=trading/orders.py    one file (or a folder: MODULE=broker)
#   .venv/bin/mutmut show NAME              the diff of one surviving mutant
# The first run maps tests to functions over the whole suite (~6 minutes); mutants/ keeps that mapping and the
# results, so a full rerun only tests what changed (a MODULE run retests all of that module's mutants).
# MUTATE_JOBS: mutants tested in parallel (each forks a pytest run). MUTATE_TESTS=all also runs the slow
# process-level tests (live bot, backtests, tools, training) per mutant; the default leaves them out
# (tools/mutmut_env.py), so unit and property tests must kill the mutants on their own.
MODULE      ?=
MUTATE_JOBS  ?= 2
MUTATE_TESTS ?= fast
MUTANTS_GLOB = $(if $(MODULE),"$(subst /,.,$(basename $(patsubst %/,%,$(MODULE)))).*")

mutate: $(STAMP)
	MUTATE_TESTS=$(MUTATE_TESTS) $(VENV)/bin/mutmut run --max-children $(MUTATE_JOBS) $(MUTANTS_GLOB)
	$(PY) tools/mutation_score.py $(MODULE) $(if $(MODULE),--survivors)

lock: $(STAMP)
	$(PY) -m pip install --quiet -r requirements.in
	$(PY) -m pip freeze --exclude-editable > requirements.txt

clean:
	rm -rf $(VENV) reports .pytest_cache mutants
