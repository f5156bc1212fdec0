"""Entry features: one function for training, backtests and live scoring.

`feature_frames(bars, params)` returns, per symbol, one row per bar with the features computed from
bars up to and including that bar only (pandas-ta-classic indicators are causal; rolling windows look
back; market context is aligned on time without looking forward). The decision at iteration time T
uses the row of the last bar that ended by T, so nothing after T can reach it (tested by deleting and
changing every later bar).

The volatility regime (low / medium / high) is not computed here: it is a K-Means step inside the
model's pipeline (`VolRegime`), so it is fitted on training data only.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pandas_ta_classic as ta
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans

FEATURE_HISTORY_BARS = 1500  # live window: EMA-200 forgets its seed to ~1e-6 within it

SYMBOL_FEATURES = (
    "rsi", "rsi_change_3", "macd_pct", "macd_signal_pct", "macd_hist_pct", "atr_pct", "bb_pctb", "bb_width",
    "dist_ema20", "dist_ema50", "dist_ema200", "ret_1", "ret_3", "ret_7", "ret_35", "ret_140",
    "rvol_14", "rvol_70", "rvol_ratio", "volume_z", "gap", "range_pct", "close_loc", "dist_high_70",
)
CONTEXT_FEATURES = ("spy_dist_ema50", "spy_ret_35", "spy_rvol_70", "breadth", "bellwether_rsi_mean")
FEATURE_NAMES = SYMBOL_FEATURES + CONTEXT_FEATURES
DERIVED_FEATURES = ("vol_regime",)  # added inside the model pipeline


@dataclass(frozen=True)
class FeatureParams:
    """Everything the feature values depend on; recorded in the model card and checked at load."""

    rsi_period: int
    rsi_overbought: float
    bellwethers: tuple[str, ...]
    market_proxy: str = "SPY"

    @classmethod
    def from_settings(cls, s) -> "FeatureParams":
        return cls(s.rsi_period, s.rsi_overbought, tuple(s.bellwethers))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["bellwethers"] = list(self.bellwethers)
        return d


def _s(x: pd.Series | None, index: pd.Index) -> pd.Series:
    return x if x is not None else pd.Series(np.nan, index=index)


def symbol_features(df: pd.DataFrame, rsi_period: int) -> pd.DataFrame:
    o, h, lo, c = (df[k].astype(float) for k in ("open", "high", "low", "close"))
    v = df["volume"].astype(float)
    idx = df.index
    out = pd.DataFrame(index=idx)
    rsi = _s(ta.rsi(c, length=rsi_period), idx)
    out["rsi"] = rsi
    out["rsi_change_3"] = rsi - rsi.shift(3)
    macd = ta.macd(c, fast=12, slow=26, signal=9)
    if macd is not None:
        out["macd_pct"] = macd.iloc[:, 0] / c
        out["macd_hist_pct"] = macd.iloc[:, 1] / c
        out["macd_signal_pct"] = macd.iloc[:, 2] / c
    else:
        out[["macd_pct", "macd_hist_pct", "macd_signal_pct"]] = np.nan
    out["atr_pct"] = _s(ta.atr(h, lo, c, length=14), idx) / c
    bb = ta.bbands(c, length=20, std=2.0)
    if bb is not None:
        lower, mid, upper = bb.iloc[:, 0], bb.iloc[:, 1], bb.iloc[:, 2]
        out["bb_pctb"] = (c - lower) / (upper - lower)
        out["bb_width"] = (upper - lower) / mid
    else:
        out[["bb_pctb", "bb_width"]] = np.nan
    for n in (20, 50, 200):
        out[f"dist_ema{n}"] = c / _s(ta.ema(c, length=n), idx) - 1.0
    for n in (1, 3, 7, 35, 140):
        out[f"ret_{n}"] = c / c.shift(n) - 1.0
    logret = np.log(c).diff()
    out["rvol_14"] = logret.rolling(14).std()
    out["rvol_70"] = logret.rolling(70).std()
    out["rvol_ratio"] = out["rvol_14"] / out["rvol_70"]
    logv = np.log1p(v)
    out["volume_z"] = (logv - logv.rolling(70).mean()) / logv.rolling(70).std()
    session = pd.Series(idx.normalize(), index=idx)
    first_open = o.groupby(session).transform("first")
    last_close = c.groupby(session).last()
    prev_close = session.map(last_close.shift(1))
    out["gap"] = first_open / prev_close - 1.0
    out["range_pct"] = (h - lo) / c
    out["close_loc"] = ((c - lo) / (h - lo)).where(h > lo, 0.5)
    out["dist_high_70"] = c / h.rolling(70).max() - 1.0
    return out[list(SYMBOL_FEATURES)]


def context_features(bars: Mapping[str, pd.DataFrame], params: FeatureParams) -> pd.DataFrame:
    """Market context on the union of bar times: index trend and volatility, bellwether breadth."""
    index = None
    for df in bars.values():
        index = df.index if index is None else index.union(df.index)
    out = pd.DataFrame(index=index)
    spy = bars.get(params.market_proxy)
    if spy is not None and len(spy):
        c = spy["close"].astype(float)
        ctx = pd.DataFrame(index=spy.index)
        ctx["spy_dist_ema50"] = c / _s(ta.ema(c, length=50), spy.index) - 1.0
        ctx["spy_ret_35"] = c / c.shift(35) - 1.0
        ctx["spy_rvol_70"] = np.log(c).diff().rolling(70).std()
        out = out.join(ctx.reindex(index).ffill())
    else:
        out[["spy_dist_ema50", "spy_ret_35", "spy_rvol_70"]] = np.nan
    rsis = {}
    for b in params.bellwethers:
        if b in bars and len(bars[b]):
            rsi = _s(ta.rsi(bars[b]["close"].astype(float), length=params.rsi_period), bars[b].index)
            rsis[b] = rsi.reindex(index).ffill()
    if rsis:
        frame = pd.DataFrame(rsis)
        out["breadth"] = (frame > params.rsi_overbought).sum(axis=1) / frame.notna().sum(axis=1)
        out["bellwether_rsi_mean"] = frame.mean(axis=1)
    else:
        out[["breadth", "bellwether_rsi_mean"]] = np.nan
    return out[list(CONTEXT_FEATURES)]


def feature_frames(bars: Mapping[str, pd.DataFrame], params: FeatureParams,
                   symbols: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
    """Per symbol: the FEATURE_NAMES columns on that symbol's own bars."""
    context = context_features(bars, params)
    out = {}
    for sym in symbols or tuple(bars):
        df = bars.get(sym)
        if df is None or not len(df):
            continue
        f = symbol_features(df, params.rsi_period)
        out[sym] = f.join(context.reindex(df.index))[list(FEATURE_NAMES)]
    return out


class VolRegime(BaseEstimator, TransformerMixin):
    """Adds `vol_regime` (0 low, 1 medium, 2 high) from K-Means on the stock's and the market's
    realised volatility. Fitted with the rest of the pipeline, so on training data only."""

    def __init__(self, n_clusters: int = 3, random_state: int = 0):
        self.n_clusters = n_clusters
        self.random_state = random_state

    def _x(self, X: pd.DataFrame) -> np.ndarray:
        return np.log(np.clip(X[["rvol_70", "spy_rvol_70"]].to_numpy(dtype=float), 1e-6, None))

    def fit(self, X: pd.DataFrame, y=None) -> "VolRegime":
        x = self._x(X)
        self.mean_, self.std_ = x.mean(axis=0), x.std(axis=0) + 1e-12
        kmeans = KMeans(self.n_clusters, n_init=10, random_state=self.random_state)
        self.kmeans_ = kmeans.fit((x - self.mean_) / self.std_)
        order = np.argsort(self.kmeans_.cluster_centers_.sum(axis=1))  # by overall volatility
        self.rank_ = np.empty(self.n_clusters, dtype=int)
        self.rank_[order] = np.arange(self.n_clusters)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        labels = self.kmeans_.predict((self._x(X) - self.mean_) / self.std_)
        out = X.copy()
        out["vol_regime"] = self.rank_[labels].astype(float)
        return out

    def get_feature_names_out(self, input_features=None):
        return np.array([*list(input_features if input_features is not None else FEATURE_NAMES), "vol_regime"])
