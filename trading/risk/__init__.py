"""Risk controls: rules as small modules returning verdicts, combined by the controller."""

from trading.risk.controller import NullRiskController, RiskController, build_risk
from trading.risk.verdict import Mode

__all__ = ["Mode", "NullRiskController", "RiskController", "build_risk"]
