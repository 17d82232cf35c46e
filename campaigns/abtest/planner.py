"""The sample-size planner: recipients needed per group to detect a given effect on a rate.

Two-sided test of two proportions with equal group sizes, on Cohen's effect size
h = 2·asin(√p2) - 2·asin(√p1) (the arcsine transform makes the variance independent of the
rate). The power of the normal test at n per group is
Φ(h·√(n/2) - z) + Φ(-h·√(n/2) - z) with z the two-sided critical value, solved exactly for n
and rounded up: the same answer as statsmodels'
`NormalIndPower().solve_power(effect_size=proportion_effectsize(p2, p1), ...)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import optimize
from scipy import stats as sps

MdeKind = Literal["absolute", "relative"]


class PlannerError(ValueError):
    """An input is out of range; the message names it."""


@dataclass(frozen=True)
class Plan:
    baseline: float
    target: float
    effect_size: float
    per_group: int
    alpha: float
    power: float


def effect_size(baseline: float, target: float) -> float:
    """Cohen's h from the baseline to the target rate."""
    return 2 * math.asin(math.sqrt(target)) - 2 * math.asin(math.sqrt(baseline))


def power_at(per_group: float, h: float, alpha: float) -> float:
    crit = float(sps.norm.isf(alpha / 2))
    shift = abs(h) * math.sqrt(per_group / 2)
    return float(sps.norm.sf(crit - shift) + sps.norm.cdf(-crit - shift))


def sample_size(
    *,
    baseline: float,
    mde: float,
    mde_kind: MdeKind = "absolute",
    power: float = 0.8,
    alpha: float = 0.05,
) -> Plan:
    """Recipients per group (each variant and the control) to detect a change of `mde` in a
    rate of `baseline`: absolute in rate points (0.01 = one point) or relative (0.1 = +10 %)."""
    if not 0 < baseline < 1:
        raise PlannerError(f"baseline rate must be between 0 and 1 (got {baseline}).")
    if mde == 0:
        raise PlannerError("minimum detectable effect must not be 0.")
    if not 0 < power < 1:
        raise PlannerError(f"power must be between 0 and 1 (got {power}).")
    if not 0 < alpha < 0.5:
        raise PlannerError(f"significance (alpha) must be between 0 and 0.5 (got {alpha}).")
    target = baseline + mde if mde_kind == "absolute" else baseline * (1 + mde)
    if not 0 < target < 1:
        raise PlannerError(
            f"baseline {baseline} with a {mde_kind} effect of {mde} gives a rate of {target:.4g}, "
            "outside 0 to 1."
        )
    h = effect_size(baseline, target)
    z_alpha = float(sps.norm.isf(alpha / 2))
    z_beta = float(sps.norm.isf(1 - power))
    # The one-tail closed form is a lower bound; the exact root lies just above it.
    guess = 2 * ((z_alpha + z_beta) / h) ** 2
    if power_at(guess, h, alpha) >= power:
        exact = guess
    else:
        upper = guess * 2 + 10
        exact = float(optimize.brentq(lambda n: power_at(n, h, alpha) - power, guess, upper))
    return Plan(
        baseline=baseline,
        target=target,
        effect_size=h,
        per_group=math.ceil(exact - 1e-9),
        alpha=alpha,
        power=power,
    )
