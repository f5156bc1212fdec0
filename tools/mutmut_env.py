"""pytest plugin for `make mutate` (loaded by mutmut through pyproject's pytest_add_cli_args): keeps mutmut's
stats phase out of the tests' subprocesses.

While mutmut maps tests to functions ("stats"), it sets MUTANT_UNDER_TEST=stats in the environment, and the
tests that start the bot as a subprocess (live_trader.py in a temporary folder) pass the environment on. The
mutated code in that subprocess then tries to record its calls, looks for pyproject.toml in the temporary
folder to find mutmut's configuration, fails, and the test fails with it, which stops the stats run. A
subprocess's calls cannot reach mutmut's mapping anyway (it lives in mutmut's process), so during stats the
variable is hidden from the environment; mutmut still knows it is collecting stats from its process-local
copy (mutmut.mutation.trampoline.set_mutant_under_test). While a mutant is tested the variable stays, so a
subprocess runs the mutant too and such a test can kill it.
"""

from __future__ import annotations

import os

_HIDDEN: dict[str, str] = {}


def pytest_configure(config: object) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        _HIDDEN["MUTANT_UNDER_TEST"] = os.environ.pop("MUTANT_UNDER_TEST")


def pytest_unconfigure(config: object) -> None:
    # put it back for mutmut's own bookkeeping after the run (it sets the variable again before each phase)
    os.environ.update(_HIDDEN)
    _HIDDEN.clear()


# Tests that drive whole processes (the live bot against the fake server, backtests, the tools run as a user
# runs them, model training) take seconds each and reach almost every function, so one mutant of a function
# they touch costs minutes. `make mutate` leaves them out unless MUTATE_TESTS=all: the unit and property tests
# must kill the mutants on their own, which is what a reviewer's planted bug needs anyway.
SLOW_FILES = ("test_live_alpaca.py", "test_live_races.py", "test_live_tools.py", "test_backtest_integration.py",
              "test_cli.py", "test_tools.py", "test_tools_settings_and_shorts.py", "test_risk_backtest.py",
              "test_meta_model.py", "test_model_card_and_training_gaps.py", "test_lint.py",
              "test_fake_alpaca.py", "test_fake_alpaca_timing.py", "test_retrain.py", "test_live_retrain.py")


def pytest_collection_modifyitems(config, items: list) -> None:
    if os.environ.get("MUTATE_TESTS", "fast") == "all":
        return
    slow = [item for item in items if item.path.name in SLOW_FILES]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.path.name not in SLOW_FILES]
