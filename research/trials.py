"""One trial (a full Lumibot backtest with costs on a window, for one set of settings) and the two ways to run
many: in this process one after another, or on Ray (a local cluster on this machine's cores by default, or an
existing cluster with --address). The bars go to Ray's object store once (`ray.put`) and every trial reads
that one copy; no trial loads or copies the data set itself."""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
Job = tuple[object, dict[str, str], date, date]  # (key, settings by name, first day, last day)


def run_trial(market, base_env: dict[str, str], overrides: dict[str, str], start: date, end: date,
              budget: float = 100_000.0) -> dict:
    """Backtest `market` from `start` to `end` (cash book) with the base settings plus `overrides`; the run's
    metrics and its daily equity. Settings the bot would refuse come back as {"error": ...}."""
    from utils import lumibot_env

    lumibot_env.prepare(backtesting=True)
    from trading.settings import Settings, SettingsError

    logging.getLogger("trader").setLevel(logging.ERROR)
    try:
        settings = Settings.load(environ=base_env, dotenv_path=None, overrides=overrides)
    except SettingsError as exc:
        return {"error": exc.one_line()}
    try:
        return _backtest(market, settings, start, end, budget)
    except Exception as exc:  # noqa: BLE001 - one failed trial is reported as such; the sweep goes on
        return {"error": f"{type(exc).__name__}: {exc}"}


def _backtest(market, settings, start: date, end: date, budget: float) -> dict:
    from backtest.metrics import equity_metrics
    from backtest.report import equity_frame
    from backtest.runner import BacktestConfig, execute, prepare

    tmp = Path(tempfile.mkdtemp(prefix="sweep-trial-"))
    try:
        config = BacktestConfig(start=start, end=end, budget=budget, book="cash", out_root=tmp, progress=False)
        run = execute(prepare(config, settings, market=market), out_dir=tmp / "run")
        _stop_threads(run.strategy)
        eq = equity_frame(run)["strategy"]
        daily = eq.groupby(eq.index.date).last()
        daily.index = pd.to_datetime(daily.index)
        # the value before the first day's trading, dated the day before: day one's gain or loss stays in the curve
        daily = pd.concat([pd.Series([float(eq.iloc[0])], index=[daily.index[0] - pd.Timedelta(days=1)]), daily])
        trades = run.strategy.ledger.trades_frame()
        samples = run.strategy.ledger.samples_frame()
        exposure = float((samples["positions"] > 0).mean()) if len(samples) else math.nan  # time in the market
        # how much of the equity was at work on average (hedges count: they are held positions too)
        invested = float(((samples["long_value"] + samples["inverse_value"]) / samples["portfolio_value"]).mean()) \
            if len(samples) else math.nan
        costs = run.costs.tally
        return {**equity_metrics(eq), "trades": len(trades), "exposure": exposure, "invested": invested,
                "fees": costs.fees, "slippage": costs.slippage, "equity": daily}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _stop_threads(strategy) -> None:
    """End the threads Lumibot leaves running after a backtest: the broker's event stream and the data source's
    thread pool. Each holds the whole run (Lumibot's copies of the bars, the indicator book, the journal), so
    without this a process running trial after trial grows by ~125 MB a daily year of 79 symbols (a Ray worker
    passed 10 GB in a 400-trial run and was killed)."""
    broker = getattr(strategy, "broker", None)
    if broker is not None:
        broker.cleanup_streams()
        broker.data_source.shutdown()


class SerialRunner:
    """Trials one after another in this process (the baseline the Ray bench compares against)."""

    name = "serial"

    def __init__(self, market, base_env: dict[str, str]) -> None:
        self.market, self.base_env = market, base_env

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[object, dict]]:
        for key, overrides, start, end in jobs:
            yield key, run_trial(self.market, self.base_env, overrides, start, end)

    def close(self) -> None:
        pass


class RayRunner:
    """Trials as Ray tasks, as many at once as the cluster has CPUs; results in the order they finish."""

    name = "ray"

    def __init__(self, market, base_env: dict[str, str], address: str | None = None,
                 num_cpus: int | None = None) -> None:
        import ray

        # keep Ray's current handling of accelerator variables and say so, rather than print its FutureWarning
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
        if address:  # an existing cluster: ship this repository's code (not the venv, data or reports) to it
            runtime = {"working_dir": str(ROOT), "excludes": [".venv/", ".git/", "reports/", "cache/", "mutants/",
                                                               "data/"]}
            ray.init(address=address, runtime_env=runtime, log_to_driver=False)
        else:
            path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": path}}, ignore_reinit_error=True)
        self.ray = ray
        self.market_ref = ray.put(market)  # one copy in the object store, read by every trial
        self.base_env = base_env
        self.task = ray.remote(num_cpus=1)(run_trial)
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[object, dict]]:
        pending: dict = {}
        jobs = iter(jobs)
        while True:
            while len(pending) < self.slots:
                job = next(jobs, None)
                if job is None:
                    break
                key, overrides, start, end = job
                pending[self.task.remote(self.market_ref, self.base_env, overrides, start, end)] = key
            if not pending:
                return
            done, _ = self.ray.wait(list(pending), num_returns=1)
            ref = done[0]
            yield pending.pop(ref), self.ray.get(ref)

    def close(self) -> None:
        self.ray.shutdown()
