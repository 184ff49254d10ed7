"""Customer lifetime value: BG/NBD (Fader, Hardie & Lee 2005) for how many purchases a customer will
make and whether they are still "alive", Gamma-Gamma (Fader, Hardie & Lee 2005b) for how much they spend
per purchase; both fitted by maximum likelihood with SciPy, vectorised over customers (NumPy arrays, no
Python loop over members).

Summary per customer (time in the chosen unit from their first purchase): x = repeat purchases,
t_x = time of the last one, T = age at the end of calibration, m = mean value of the repeat purchases.
A purchase is a calendar day with at least one order (`per_day`): the literature's convention, without
which the fitted parameters drift from the published ones (tests/analytics/test_clv_cdnow.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jifen.lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    from scipy import optimize, special
else:
    np = lazy_import("numpy")
    pl = lazy_import("polars")
    optimize = lazy_import("scipy.optimize")
    special = lazy_import("scipy.special")


@dataclass
class Summary:
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray  # mean spend of repeat purchases (0 when x = 0)


def purchases(frames: dict[str, pl.DataFrame], tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member id, programme calendar day number, net amount) per purchase event of the frames."""
    buys = frames["events"].filter(frames["events"]["type"] == "purchase").join(
        frames["members"].select("member_pk", "member_id"), on="member_pk")
    days = buys["occurred_at"].dt.convert_time_zone(tz).dt.date().to_numpy().astype("datetime64[D]")
    return (buys["member_id"].to_numpy(), days.astype(np.int64),
            (buys["amount"].fill_null(0) - buys["refunded"]).to_numpy())


def per_day(customer: np.ndarray, day: np.ndarray, amount: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One transaction per customer and calendar day, its amount the day's total: several orders (or order
    lines) on one day are one purchase occasion, as Fader, Hardie & Lee count them and as `lifetimes`'
    summary_data_from_transaction_data does."""
    if not len(customer):
        return customer, day, amount
    order = np.lexsort((day, customer))
    customer, day, amount = customer[order], day[order], amount[order]
    starts = np.flatnonzero(np.r_[True, (customer[1:] != customer[:-1]) | (day[1:] != day[:-1])])
    return customer[starts], day[starts], np.add.reduceat(amount, starts)


def summarise(customer: np.ndarray, day: np.ndarray, amount: np.ndarray, end_day: int,
              unit_days: float = 7.0) -> tuple[np.ndarray, Summary]:
    """From transactions (customer id, calendar day number, amount) up to and including `end_day`: the ids
    and their summary, time in units of `unit_days` days (7: weeks, as the paper)."""
    keep = day <= end_day
    customer, day, amount = per_day(customer[keep], day[keep], amount[keep])
    ids, first_idx, counts = np.unique(customer, return_index=True, return_counts=True)
    first = day[first_idx]
    last = day[first_idx + counts - 1]
    total = np.add.reduceat(amount, first_idx) if len(first_idx) else amount[:0]
    x = counts - 1
    repeat_total = total - amount[first_idx]
    m = np.divide(repeat_total, x, out=np.zeros_like(repeat_total, dtype=float), where=x > 0)
    return ids, Summary(x=x.astype(float), t_x=(last - first) / unit_days, T=(end_day - first) / unit_days, m=m)


def holdout_counts(ids: np.ndarray, customer: np.ndarray, day: np.ndarray, start_day: int, end_day: int) -> np.ndarray:
    """Per id (sorted, as `summarise` returns them): purchase days in (start_day, end_day]."""
    keep = (day > start_day) & (day <= end_day)
    who, _, _ = per_day(customer[keep], day[keep], np.zeros(int(keep.sum())))
    at = np.searchsorted(ids, who)
    known = (at < len(ids)) & (ids[np.minimum(at, len(ids) - 1)] == who) if len(ids) else np.zeros(0, bool)
    return np.bincount(at[known], minlength=len(ids)).astype(float)


def conditional_expectations(p: dict, s: Summary, actual: np.ndarray, horizon: float,
                             top: int = 7) -> list[dict]:
    """The paper's calibration check (Fader, Hardie & Lee 2005, fig. 4): customers grouped by their repeat
    purchases in the calibration period (0, 1, … `top`+), the mean purchases each group made in the holdout
    beside the mean the model expected."""
    expected = expected_purchases(p, s, horizon)
    bucket = np.minimum(s.x, top).astype(int)
    rows = []
    for b in range(top + 1):
        members = bucket == b
        if members.any():
            rows.append({"repeat_purchases": f"{b}+" if b == top else str(b), "customers": int(members.sum()),
                         "actual": round(float(actual[members].mean()), 3),
                         "predicted": round(float(expected[members].mean()), 3)})
    return rows


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


def expected_purchases(p: dict, s: Summary, horizon: float, tolerance: float = 1e-12,
                       max_terms: int = 200_000) -> np.ndarray:
    """Expected purchases in the next `horizon` units (Fader, Hardie & Lee 2005, eq. 10).

    Eq. 10 subtracts from 1 a product that is 1 − O(1/b) and multiplies the difference by (a + b + x − 1)
    / (a − 1): when the fit finds almost no dropout (b in the billions, as on data where nobody leaves) the
    difference is lost to rounding and the expectation comes out as nonsense (−20,000 purchases). So the
    bracket is rewritten by Euler's transformation of the ²F₁ and the binomial series of (1 − z)^(1−a) into
    c (1 − z)^(a−1) Σₖ₌₁ (a)ₖ₋₁ zᵏ / k! · Dₖ, with c = a + b + x − 1, z = horizon / (α + T + horizon) and
    Dₖ = 1 − Πⱼ₌₀ᵏ⁻¹ (1 − (r + x) / (c + j)) computed by log1p / expm1: every term positive, nothing cancels,
    and a = 1 needs no special case. Summed for all customers at once until the terms fall below
    `tolerance` of the sum."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    x, t_x, T = s.x, s.t_x, s.T
    c = a + b + x - 1
    z = horizon / (alpha + T + horizon)
    ratio0 = (r + x) / c
    stable = ratio0 < 1  # log1p(−ratio) exists for every j (ratios fall as j grows)
    logs, prods = np.zeros_like(x), np.ones_like(x)
    coef = np.ones_like(x)  # (a)ₖ₋₁ zᵏ / k!, without the zᵏ⁻¹… built up step by step below
    total = np.zeros_like(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(1, max_terms + 1):
            ratio = (r + x) / (c + k - 1)
            logs = logs + np.log1p(-np.minimum(ratio, 1.0))
            prods = prods * (1 - ratio)
            d = np.where(stable, -np.expm1(logs), 1 - prods)
            coef = z if k == 1 else coef * (a + k - 2) * z / k
            term = coef * d
            total = total + term
            if np.all(np.abs(term) <= tolerance * np.abs(total)):
                break
    first = c * (1 - z) ** (a - 1) * total
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


def member_values(p: dict, g: dict, ids: np.ndarray, s: Summary, horizon: float) -> list[dict]:
    """Per customer: repeat purchases, P(alive), expected purchases and spend per purchase, CLV over `horizon`."""
    value = clv(p, g, s, horizon)
    return [{"member_id": str(m), "repeat_purchases": int(x), "p_alive": round(float(a), 4),
             "expected_purchases": round(float(e), 4), "expected_spend": round(float(v), 2),
             "clv": round(float(c), 2)}
            for m, x, a, e, v, c in zip(ids, s.x, p_alive(p, s), expected_purchases(p, s, horizon),
                                        expected_spend(g, s), value, strict=True)]


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
