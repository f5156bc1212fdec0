"""What start-up and a backtest say about the installed model: a gate no candidate can pass, a model without an
edge, a backtest on the model's own training data."""

from models.meta_model import DEFAULT_MIN_EXPECTED_R, MetaModel


def threshold_warning(model) -> str | None:
    """A warning when the gate's threshold is above every expected R the model gave out of sample in
    validation (the bot would make no new entries), or when training found no threshold with an edge."""
    if not isinstance(model, MetaModel):
        return None
    top = (model.card.get("oos_expected_r") or {}).get("max")
    if top is not None and model.min_expected_r > top:
        return (f"the gate's threshold, expected R >= {model.min_expected_r:+.3f} ({model.threshold_source()}), is "
                f"above every out-of-sample expected R of {model.path.name} (highest {top:+.3f}): no candidate "
                "will pass and the bot will make no new entries; lower MIN_EXPECTED_R or leave it empty for the "
                "card's value")
    if model.threshold_source() == "default":
        return (f"{model.path.name}: training found no expected-R threshold that beat taking every candidate out "
                f"of sample (no usable edge); the gate is expected R >= {DEFAULT_MIN_EXPECTED_R:g}")
    return None


def overlap_warning(model, source: str, start, end) -> str | None:
    """A warning when a backtest runs on the data the model was trained on (results are in-sample)."""
    if not isinstance(model, MetaModel) or model.card.get("data", {}).get("source") != source:
        return None
    w = model.card["training_window"]
    if str(start) <= w["end"] and str(end) >= w["start"]:
        return (f"the meta-model was trained on {w['start']} .. {w['end']} of the same data: the overlapping part "
                "of this backtest is in-sample")
    return None
