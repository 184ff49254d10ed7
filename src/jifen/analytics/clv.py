"""Customer lifetime value: BG/NBD (Fader, Hardie & Lee 2005) for how many purchases a customer will
make and whether they are still "alive", Gamma-Gamma (Fader, Hardie & Lee 2005b) for how much they spend
per purchase; both fitted by maximum likelihood with SciPy, vectorised over customers (NumPy arrays, no
Python loop over members).

Summary per customer (time in the chosen unit from their first purchase): x = repeat purchases,
t_x = time of the last one, T = age at the end of calibration, m = mean value of the repeat purchases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


@dataclass
class Summary:
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray  # mean spend of repeat purchases (0 when x = 0)


def summarise(customer: np.ndarray, t: np.ndarray, amount: np.ndarray, end: float) -> tuple[np.ndarray, Summary]:
    """From transactions (customer id, time in units, amount) up to `end`: the ids and their summary."""
    keep = t <= end
    customer, t, amount = customer[keep], t[keep], amount[keep]
    order = np.lexsort((t, customer))
    customer, t, amount = customer[order], t[order], amount[order]
    ids, first_idx, counts = np.unique(customer, return_index=True, return_counts=True)
    first = t[first_idx]
    last = t[first_idx + counts - 1]
    total = np.add.reduceat(amount, first_idx)
    x = counts - 1
    repeat_total = total - amount[first_idx]
    m = np.divide(repeat_total, x, out=np.zeros_like(repeat_total, dtype=float), where=x > 0)
    return ids, Summary(x=x.astype(float), t_x=last - first, T=end - first, m=m)


def bgnbd_loglik(params, s: Summary) -> float:
    r, alpha, a, b = params
    x, t_x, T = s.x, s.t_x, s.T
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    term1 = special.betaln(a, b + x) - special.betaln(a, b) + common - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore"):
        term2 = np.where(x > 0, special.betaln(a + 1, b + np.maximum(x, 1) - 1) - special.betaln(a, b) + common
                         - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(np.logaddexp(term1, term2).sum())


def _fit(loglik, s: Summary, start) -> np.ndarray:
    result = optimize.minimize(lambda p: -loglik(np.exp(p), s), np.log(start), method="Nelder-Mead",
                               options={"maxiter": 20_000, "xatol": 1e-7, "fatol": 1e-7})
    return np.exp(result.x)


def fit_bgnbd(s: Summary) -> dict[str, float]:
    r, alpha, a, b = _fit(bgnbd_loglik, s, (1.0, 1.0, 1.0, 1.0))
    return {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b)}


def p_alive(p: dict, s: Summary) -> np.ndarray:
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    ratio = np.where(s.x > 0, a / (b + s.x - 1) * ((alpha + s.T) / (alpha + s.t_x)) ** (r + s.x), 0.0)
    return 1.0 / (1.0 + ratio)


def expected_purchases(p: dict, s: Summary, horizon: float) -> np.ndarray:
    """Expected purchases in the next `horizon` units (Fader, Hardie & Lee 2005, eq. 10)."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    x, t_x, T = s.x, s.t_x, s.T
    z = horizon / (alpha + T + horizon)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    first = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + horizon)) ** (r + x) * hyp)
    alive = 1 + np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
    return first / alive


def gg_loglik(params, s: Summary) -> float:
    p, q, v = params
    ok = (s.x > 0) & (s.m > 0)  # Gamma-Gamma needs repeat purchases of positive value
    x, m = s.x[ok], s.m[ok]
    return float((special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
                  + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + v)).sum())


def fit_gamma_gamma(s: Summary) -> dict[str, float]:
    positive = s.m[(s.x > 0) & (s.m > 0)]
    p, q, v = _fit(gg_loglik, s, (1.0, 2.0, float(positive.mean()) if positive.size else 1.0))
    return {"p": float(p), "q": float(q), "gamma": float(v)}


def expected_spend(g: dict, s: Summary) -> np.ndarray:
    """Expected mean value of a purchase; customers without repeats get the population mean."""
    p, q, v = g["p"], g["q"], g["gamma"]
    population = p * v / (q - 1) if q > 1 else float("nan")  # the mean only exists for q > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((s.x > 0) & (s.m > 0), (v + s.x * s.m) * p / (p * s.x + q - 1), population)


def clv(p: dict, g: dict, s: Summary, horizon: float, discount: float = 0.0) -> np.ndarray:
    """Value over the horizon: expected purchases × expected spend, discounted once at the midpoint
    (a simple discounting; `discount` is per unit of time)."""
    return expected_purchases(p, s, horizon) * expected_spend(g, s) / (1 + discount) ** (horizon / 2)


def simulate_bgnbd(r: float, alpha: float, a: float, b: float, customers: int, T: float,
                   rng: np.random.Generator) -> Summary:
    """Customers drawn from the model itself (for parameter-recovery tests): x, t_x over [0, T]."""
    lam = rng.gamma(r, 1 / alpha, customers)
    p = rng.beta(a, b, customers)
    x, t_x = np.zeros(customers), np.zeros(customers)
    for i in range(customers):  # (simulation only: the fitting is vectorised)
        t, n = 0.0, 0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T:
                break
            n, t_x[i] = n + 1, t
            if rng.random() < p[i]:
                break
        x[i] = n
    return Summary(x=x, t_x=t_x, T=np.full(customers, T), m=np.zeros(customers))
