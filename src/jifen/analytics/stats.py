"""The statistics behind campaign holdouts and experiments, in one place: a difference of means (Welch's
t-test), a difference of proportions (two-proportion z-test), each with a confidence interval and a
two-sided p-value, and the sample size or minimum detectable effect to plan a test before it starts.

Proportions are planned on Cohen's h (the arcsine effect size) and means on the standardised difference,
as statsmodels' NormalIndPower does, so the figures can be checked against it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from jifen.lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np
    from scipy import stats
else:
    np = lazy_import("numpy")
    stats = lazy_import("scipy.stats")


@dataclass(frozen=True)
class Comparison:
    """treatment − control, with its (1 − alpha) confidence interval and two-sided p-value."""

    control: float
    treatment: float
    difference: float
    low: float
    high: float
    p_value: float
    n_control: int
    n_treatment: int

    @property
    def relative(self) -> float | None:
        return self.difference / self.control if self.control else None

    def view(self, digits: int = 4) -> dict:
        out = {k: (round(v, digits) if isinstance(v, float) and math.isfinite(v) else v) for k, v in asdict(self).items()}
        return out | {"relative": round(self.relative, digits) if self.relative is not None else None,
                      "significant": self.p_value < 0.05}


def compare_means(treatment: Sequence[float], control: Sequence[float], alpha: float = 0.05) -> Comparison:
    """Welch's t-test (no equal-variance assumption): spend or purchases per member."""
    t, c = np.asarray(treatment, dtype=float), np.asarray(control, dtype=float)
    if len(t) < 2 or len(c) < 2:
        raise ValueError("each group needs at least two members")
    mt, mc = float(t.mean()), float(c.mean())
    vt, vc = t.var(ddof=1) / len(t), c.var(ddof=1) / len(c)
    se = math.sqrt(vt + vc)
    if se == 0:  # both groups constant: the difference is exact
        same = mt == mc
        return Comparison(mc, mt, mt - mc, mt - mc, mt - mc, 1.0 if same else 0.0, len(c), len(t))
    df = (vt + vc) ** 2 / (vt**2 / (len(t) - 1) + vc**2 / (len(c) - 1))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    p = float(2 * stats.t.sf(abs(mt - mc) / se, df))
    return Comparison(mc, mt, mt - mc, mt - mc - half, mt - mc + half, p, len(c), len(t))


def compare_proportions(successes_t: int, n_t: int, successes_c: int, n_c: int, alpha: float = 0.05) -> Comparison:
    """Two-proportion z-test: the p-value on the pooled proportion, the interval on the unpooled (Wald)
    standard error — statsmodels' proportions_ztest and confint_proportions_2indep(method="wald")."""
    if n_t < 1 or n_c < 1:
        raise ValueError("each group needs at least one member")
    if not (0 <= successes_t <= n_t and 0 <= successes_c <= n_c):
        raise ValueError("successes must lie between 0 and the group's size")
    pt, pc = successes_t / n_t, successes_c / n_c
    pooled = (successes_t + successes_c) / (n_t + n_c)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p = float(2 * stats.norm.sf(abs(pt - pc) / se0)) if se0 else (1.0 if pt == pc else 0.0)
    half = float(stats.norm.ppf(1 - alpha / 2)) * math.sqrt(pt * (1 - pt) / n_t + pc * (1 - pc) / n_c)
    return Comparison(pc, pt, pt - pc, pt - pc - half, pt - pc + half, p, n_c, n_t)


def _z(alpha: float, power: float) -> float:
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must lie strictly between 0 and 1")
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


def cohens_h(p_from: float, p_to: float) -> float:
    return 2 * math.asin(math.sqrt(p_to)) - 2 * math.asin(math.sqrt(p_from))


def sample_size_proportion(baseline: float, lift: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Members per arm to detect a conversion rate moving from `baseline` by `lift` (absolute)."""
    target = baseline + lift
    if not (0 < baseline < 1 and 0 < target < 1) or lift == 0:
        raise ValueError("baseline and baseline + lift must lie strictly between 0 and 1, lift not 0")
    return math.ceil(2 * (_z(alpha, power) / abs(cohens_h(baseline, target))) ** 2)


def mde_proportion(baseline: float, n_per_arm: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest absolute rise in conversion over `baseline` that `n_per_arm` members per arm detect."""
    if not 0 < baseline < 1 or n_per_arm < 2:
        raise ValueError("baseline must lie strictly between 0 and 1, and each arm hold at least 2 members")
    h = _z(alpha, power) * math.sqrt(2 / n_per_arm)
    angle = min(math.pi / 2, math.asin(math.sqrt(baseline)) + h / 2)
    return math.sin(angle) ** 2 - baseline


def sample_size_mean(sd: float, lift: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Members per arm to detect a change of `lift` in a mean with standard deviation `sd`."""
    if sd <= 0 or lift == 0:
        raise ValueError("sd must be positive and lift not 0")
    return math.ceil(2 * (_z(alpha, power) * sd / abs(lift)) ** 2)


def mde_mean(sd: float, n_per_arm: int, alpha: float = 0.05, power: float = 0.8) -> float:
    if sd <= 0 or n_per_arm < 2:
        raise ValueError("sd must be positive, and each arm hold at least 2 members")
    return _z(alpha, power) * sd * math.sqrt(2 / n_per_arm)
