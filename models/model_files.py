"""What training leaves behind: the model file with its card, the printed report and the validation plot."""

import math
from pathlib import Path

import numpy as np

from models.evaluation import fmt_ci


def write_model(model_path: Path, model, card: dict, plot: Path | None = None,
                reason: str = "trained with python -m models.train", keep: int = 5) -> Path:
    """Install a trained model as the champion at `model_path` (a new version, then the champion's card swapped
    atomically: models/registry.py; `keep`: MODELS_KEPT); returns `model_path`."""
    from models.registry import ModelStore

    store = ModelStore(model_path, keep)
    card["version"] = store.add(model, card, plot)
    store.promote(card["version"], reason)
    return Path(model_path)


def render_report(card: dict) -> str:
    """The walk-forward report: every figure out of sample, with its count and 95% interval."""
    m = card["metrics"]
    o = m["overall"]
    lines = [f"Walk-forward, out of sample: {o['n']} candidates on {m['days']} days. R = realised R of the exit "
             "policy, net of costs; [95% interval, bootstrap over days]. Passed = the gate each fold was judged "
             "with (threshold from earlier folds; the ensemble also applies ENSEMBLE_AGREEMENT and "
             "MAX_UNCERTAINTY).",
             f"{'model':<9} {'AUC':<22} {'passed':>12} {'avg R passed':<24} {'avg R rejected':<24}"]
    for name, rep in [*m["members"].items(), ("ensemble", o)]:
        lines.append(f"{name:<9} {fmt_ci(rep['auc'], rep['auc_ci'], '.3f'):<22} "
                     f"{rep['n_passed']:>5} ({rep['pass_share']:>4.0%}) "
                     f"{fmt_ci(rep['avg_r_passed'], rep['avg_r_passed_ci']):<24} "
                     f"{fmt_ci(rep['avg_r_rejected'], rep['avg_r_rejected_ci']):<24}")
    lines.append(f"every candidate: average R {o['avg_r_all']:+.3f}")
    lines.append("")
    lines.append(f"{'fold':>4} {'test window':<23} {'n':>5} {'threshold':>9} {'AUC':>6} {'pass':>6} {'R+':>6} "
                 f"{'R-':>6}")
    for r in m["folds"]:
        if "skipped" in r:
            lines.append(f"{r['fold']:>4} {r['test']:<23} skipped: {r['skipped']}")
            continue
        lines.append(f"{r['fold']:>4} {r['test']:<23} {r['n_test']:>5} {r['threshold']:>+9.3f} "
                     f"{_f(r['auc'], '.3f'):>6} {_f(r['pass_share'], '.0%'):>6} {_f(r['avg_r_passed'], '+.2f'):>6} "
                     f"{_f(r['avg_r_rejected'], '+.2f'):>6}")
    st = card.get("stops") or {}
    if st:
        lines.append("")
        lines.append(f"Stops on the same {st['candidates']} out-of-sample candidates (each fold's stop model fitted on "
                     f"its training window; model stops within {st['bounds'][0]:.0%} .. {st['bounds'][1]:.0%}):")
        lines.append(f"{'stop':<7} {'n':>5} {'avg stop':>8} {'stopped':>8} {'avg R':<24} {'avg return/trade':<26}")
        for mode in ("fixed", "atr", "model"):
            m_ = st[mode]
            lines.append(f"{mode:<7} {m_['n']:>5} {_f(m_['avg_stop'], '.1%'):>8} {_f(m_['stopped'], '.0%'):>8} "
                         f"{fmt_ci(m_['avg_r'], m_['avg_r_ci']):<24} "
                         f"{fmt_ci(m_['avg_return'], m_['avg_return_ci'], '+.2%'):<26}")
    gate = card["gate"]
    if gate["min_expected_r"] is None:
        lines.append(f"No expected-R threshold beat taking every candidate out of sample: the card records none and "
                     f"the bot gates at expected R >= {gate['default']:g} unless MIN_EXPECTED_R is set.")
    else:
        lines.append(f"Proposed gate, written into the card: MIN_EXPECTED_R = {gate['min_expected_r']:+.3f} "
                     "(the bot uses it unless MIN_EXPECTED_R is set).")
    live = card.get("live_expectation") or {}
    if live.get("mean") is not None:
        lines.append(f"Live watch: the gate's passed candidates made {live['mean']:+.2f}R (sd {live['sd']:.2f}, n "
                     f"{live['n']}) out of sample; the running bot holds its trades to that (MODEL_DEGRADED_ACTION).")
    return "\n".join(lines)


def _f(x, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def plot_validation(path: Path, oos: dict, threshold: float | None) -> None:
    """Realised R by decile of expected R, out of sample: a model with an edge rises left to right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e, r = oos["expected_r"], oos["r"]
    edges = np.unique(np.quantile(e, np.linspace(0, 1, 11)))
    bins = np.clip(np.searchsorted(edges, e, side="right") - 1, 0, max(len(edges) - 2, 0))
    x = [float(e[bins == b].mean()) for b in np.unique(bins)]
    y = [float(r[bins == b].mean()) for b in np.unique(bins)]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.axhline(0, color="k", lw=0.8)
    ax.plot(x, y, "o-", label="average realised R per decile (walk-forward)")
    if threshold is not None:
        ax.axvline(threshold, color="tab:red", ls="--", lw=1, label=f"proposed MIN_EXPECTED_R {threshold:+.2f}")
    ax.set_xlabel("expected R (ensemble mean)")
    ax.set_ylabel("realised R, net of costs")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
