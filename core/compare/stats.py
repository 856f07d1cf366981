"""Aggregates: mean with a seeded bootstrap confidence interval, percentiles. None values are ignored and
the count of scored items (n) is always reported; nothing here returns NaN."""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Iterable

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


@dataclass
class Estimate:
    mean: float | None
    lo: float | None
    hi: float | None
    n: int

    def to_dict(self) -> dict:
        return asdict(self)

    def fmt(self, digits: int = 2) -> str:
        if self.mean is None:
            return "n/a (n=0)"
        if self.n < 2 or self.lo is None:
            return f"{self.mean:.{digits}f} (n={self.n})"
        return f"{self.mean:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}] (n={self.n})"


def clean(values: Iterable) -> list[float]:
    out = []
    for v in values:
        if v is None or isinstance(v, bool):
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if not (math.isnan(f) or math.isinf(f)):
            out.append(f)
    return out


def bootstrap_ci(values: Iterable, resamples: int = BOOTSTRAP_RESAMPLES, alpha: float = 0.05,
                 seed: int = BOOTSTRAP_SEED) -> Estimate:
    """Mean and percentile-bootstrap (1 - alpha) interval. n=0 -> mean None; n=1 -> no interval."""
    xs = clean(values)
    n = len(xs)
    if n == 0:
        return Estimate(None, None, None, 0)
    mean = sum(xs) / n
    if n == 1 or min(xs) == max(xs):
        return Estimate(mean, mean if n > 1 else None, mean if n > 1 else None, n)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(xs, k=n)) / n for _ in range(resamples))
    lo = means[int(math.floor(alpha / 2 * (resamples - 1)))]
    hi = means[int(math.ceil((1 - alpha / 2) * (resamples - 1)))]
    return Estimate(mean, lo, hi, n)


def percentile(values: Iterable, q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    xs = sorted(clean(values))
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def mean(values: Iterable) -> float | None:
    xs = clean(values)
    return sum(xs) / len(xs) if xs else None
