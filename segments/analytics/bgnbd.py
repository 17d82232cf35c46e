"""The BG/NBD model (Fader, Hardie and Lee, "Counting your customers the easy way", 2005):
its log-likelihood, a maximum likelihood fit, P(alive) and expected purchases.

Pure numpy/scipy over arrays, no database: `x` is the number of repeat purchases (distinct
purchase days after the first), `t_x` the time of the last purchase and `T` the customer's
age, both measured from the first purchase in one time unit (days or weeks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
# scipy is imported inside the functions that use it: importing it costs a second that every
# `manage.py segments ...` command and worker start would otherwise pay.


class BGNBDFitError(ValueError):
    """The data cannot be fitted (too few customers, no repeat purchases, no convergence)."""


class BGNBDNotIdentified(BGNBDFitError):
    """The data are valid but cannot identify the four parameters: too few repeat buyers, an
    estimate driven to a bound of the search, or predictions that are not finite numbers.
    A state of the shop's data, not a failure; `reason` says which, in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Fewer repeat buyers than this give estimates that swing with each customer added; below it
# the model is not fitted (lifetimes and PyMC-Marketing leave this to the user).
MIN_REPEAT_BUYERS = 10
# The search box for r, alpha, a and b in rescaled time (the longest age is 10 units). Real
# fits sit well inside it (FHL's CDNOW fit: r 0.24, alpha 1.1 rescaled, a 0.79, b 2.4); an
# estimate at an edge means the likelihood keeps rising towards a limit the model only
# reaches at 0 or infinity (e.g. nobody drops out: a -> 0), so the data do not identify it.
LOG_BOUND = float(np.log(1e4))
_AT_BOUND = 1e-3  # in log units: this close to an edge counts as on it
_PARAM_NAMES = ("r", "alpha", "a", "b")
_BOUND_MEANING = {
    ("r", "high"): "every customer seems to buy at the same rate (r and alpha grow without limit)",
    ("alpha", "high"): "every customer seems to buy at the same rate "
    "(r and alpha grow without limit)",
    ("a", "low"): "no customer seems to drop out (a shrinks to 0)",
    ("b", "low"): "customers seem to drop out after almost every purchase (b shrinks to 0)",
}


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int


def _as_arrays(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    xs = np.asarray(x, dtype=np.float64)
    txs = np.asarray(t_x, dtype=np.float64)
    Ts = np.asarray(T, dtype=np.float64)
    if not (xs.shape == txs.shape == Ts.shape) or xs.ndim != 1:
        raise BGNBDFitError("x, t_x and T must be one-dimensional arrays of the same length")
    if np.any(xs < 0) or np.any(txs < 0) or np.any(txs > Ts):
        raise BGNBDFitError("need 0 <= x and 0 <= t_x <= T for every customer")
    if np.any((xs == 0) & (txs != 0)):
        raise BGNBDFitError("a customer with no repeat purchase must have t_x = 0")
    return xs, txs, Ts


def log_likelihood_terms(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """ln L(r, alpha, a, b | x, t_x, T) per customer, the closed form of FHL (2005) eq. 6:

    L = B(a, b+x)/B(a, b) · Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
        + [x > 0] · B(a+1, b+x-1)/B(a, b) · Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x))

    summed in log space (logaddexp) so that large x or T do not overflow.
    """
    from scipy import special

    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    beta_ab = special.betaln(a, b)
    still_alive = special.betaln(a, b + x) - beta_ab - (r + x) * np.log(alpha + T)
    repeat = x > 0
    # For x = 0 the second term is absent; betaln(a+1, b-1) may be undefined there.
    x_safe = np.where(repeat, x, 1.0)
    dropped = special.betaln(a + 1, b + x_safe - 1) - beta_ab - (r + x_safe) * np.log(alpha + t_x)
    dropped = np.where(repeat, dropped, -np.inf)
    terms: FloatArray = common + np.logaddexp(still_alive, dropped)
    return terms


def _compress(
    x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Customers with the same (x, t_x, T) contribute the same term: fit over the distinct
    triples with weights. Whole-day data collapses a million customers to a few thousand."""
    stacked = np.stack([x, t_x, T], axis=1)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return unique[:, 0], unique[:, 1], unique[:, 2], counts.astype(np.float64)


def _bound_reason(log_params: FloatArray) -> str | None:
    """Names the parameters the search pushed to an edge of its box, or None."""
    hits: list[str] = []
    for name, value in zip(_PARAM_NAMES, log_params, strict=True):
        side = "low" if value <= -LOG_BOUND + _AT_BOUND else "high"
        if abs(value) >= LOG_BOUND - _AT_BOUND:
            hits.append(
                _BOUND_MEANING.get((name, side), f"{name} runs to the {side} end of its range")
            )
    if not hits:
        return None
    return "the data do not identify the model: " + "; ".join(dict.fromkeys(hits))


def bgnbd_fit(
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    min_repeat_buyers: int = MIN_REPEAT_BUYERS,
    penalizer_coef: float = 0.0,
) -> BGNBDParams:
    """Maximum likelihood estimates of r, alpha, a, b.

    As lifetimes and PyMC-Marketing do, the optimiser works on log-parameters (so all four
    stay positive) inside a box (LOG_BOUND), on time rescaled so that the longest age is 10
    units; alpha is a scale parameter, so the fit in rescaled time is the same fit, with
    alpha multiplied back and the log-likelihood recomputed in the caller's unit.
    penalizer_coef adds penalizer_coef * sum(log-parameter^2) to the mean negative
    log-likelihood (lifetimes' penalizer_coef, on the log scale): 0 is plain maximum
    likelihood.

    Raises BGNBDNotIdentified (with the reason) when fewer than min_repeat_buyers customers
    bought again, or when an estimate ends on an edge of the box.
    """
    from scipy import optimize

    xs, txs, Ts = _as_arrays(x, t_x, T)
    customers = int(xs.size)
    if customers < 2:
        raise BGNBDFitError(f"need at least 2 customers to fit, got {customers}")
    repeat_buyers = int(np.count_nonzero(xs > 0))
    if repeat_buyers == 0:
        raise BGNBDNotIdentified("no customer has a repeat purchase; the model cannot be fitted")
    if repeat_buyers < min_repeat_buyers:
        raise BGNBDNotIdentified(
            f"only {repeat_buyers} repeat buyer{'s' if repeat_buyers != 1 else ''} "
            f"(need {min_repeat_buyers})"
        )
    if float(Ts.max()) <= 0:
        raise BGNBDFitError("every customer's age T is 0; choose a later calibration end")

    scale = float(Ts.max()) / 10.0
    ux, utx, uT, weights = _compress(xs, txs / scale, Ts / scale)
    total = float(weights.sum())

    def negative_ll(log_params: FloatArray) -> float:
        r, alpha, a, b = np.exp(log_params)
        # Trial points far out (exp overflow) give inf or nan; they are rejected, not errors.
        with np.errstate(all="ignore"):
            ll = log_likelihood_terms(r, alpha, a, b, ux, utx, uT)
            value = -float(np.dot(weights, ll)) / total
        value += penalizer_coef * float(np.dot(log_params, log_params))
        return value if np.isfinite(value) else 1e300

    bounds = [(-LOG_BOUND, LOG_BOUND)] * 4
    best: Any = None
    # Two starting points (lifetimes' all-ones, and one near typical retail fits); the
    # surface is smooth but flat along a/b when few customers drop.
    for start in (np.zeros(4), np.log(np.array([0.5, 1.0, 0.5, 2.0]))):
        result = optimize.minimize(negative_ll, start, method="L-BFGS-B", bounds=bounds)
        polished = optimize.minimize(
            negative_ll,
            result.x,
            method="Nelder-Mead",
            bounds=bounds,
            options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 20_000, "maxfev": 40_000},
        )
        candidate = polished if polished.fun <= result.fun else result
        if best is None or candidate.fun < best.fun:
            best = candidate
    assert best is not None
    if not np.isfinite(best.fun) or best.fun >= 1e300:
        raise BGNBDFitError(f"the likelihood could not be maximised: {best.message}")
    reason = _bound_reason(np.asarray(best.x, dtype=np.float64))
    if reason is not None:
        raise BGNBDNotIdentified(reason)
    r, alpha_scaled, a, b = (float(v) for v in np.exp(best.x))
    alpha = alpha_scaled * scale
    log_likelihood = float(np.sum(log_likelihood_terms(r, alpha, a, b, xs, txs, Ts)))
    return BGNBDParams(r, alpha, a, b, log_likelihood, customers)


def _dropout_odds(params: BGNBDParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """a/(b+x-1) · ((alpha+T)/(alpha+t_x))^(r+x) for x > 0, and 0 for x = 0 (FHL eq. 13)."""
    repeat = x > 0
    x_safe = np.where(repeat, x, 1.0)
    log_odds = (
        np.log(params.a)
        - np.log(params.b + x_safe - 1)
        + (params.r + x_safe) * (np.log(params.alpha + T) - np.log(params.alpha + t_x))
    )
    odds: FloatArray = np.where(repeat, np.exp(np.minimum(log_odds, 700.0)), 0.0)
    return odds


def bgnbd_p_alive(
    params: BGNBDParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(alive | x, t_x, T): the probability that the customer has not dropped out."""
    xs, txs, Ts = _as_arrays(x, t_x, T)
    result: FloatArray = 1.0 / (1.0 + _dropout_odds(params, xs, txs, Ts))
    return result


def bgnbd_expected_purchases(
    params: BGNBDParams, t: float, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: expected repeat purchases in the next t units (FHL eq. 10)."""
    from scipy import special

    xs, txs, Ts = _as_arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-9:
        a = 1.0 + 1e-9  # the closed form divides by a - 1; nudging keeps it continuous
    z = t / (alpha + Ts + t)
    hyp = special.hyp2f1(r + xs, b + xs, a + b + xs - 1, z)
    head = (a + b + xs - 1) / (a - 1)
    growth = 1.0 - np.exp((r + xs) * (np.log(alpha + Ts) - np.log(alpha + Ts + t))) * hyp
    expected: FloatArray = head * growth / (1.0 + _dropout_odds(params, xs, txs, Ts))
    return np.maximum(expected, 0.0)


def bgnbd_simulate(
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: npt.ArrayLike,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Draws (x, t_x, T) for customers of the given ages from the model's own story: each
    has a Poisson purchase rate λ ~ Gamma(r, 1/alpha) and, after every purchase, drops out with
    probability p ~ Beta(a, b). Continuous time; used to check that the fit recovers r,
    alpha, a and b."""
    ages = np.asarray(T, dtype=np.float64)
    n = ages.size
    rates = rng.gamma(shape=r, scale=1.0 / alpha, size=n)
    drop = rng.beta(a, b, size=n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        now = 0.0
        purchases = 0
        while True:
            now += rng.exponential(1.0 / rates[i])
            if now > ages[i]:
                break
            purchases += 1
            t_x[i] = now
            if rng.random() < drop[i]:
                break
        x[i] = purchases
    return x, t_x, ages
