"""Aggregates: mean with a seeded bootstrap confidence interval, percentiles; paired differences between two
approaches with a (cluster) bootstrap interval, repeat-aware intervals and per-question spread, the questions
needed to separate two approaches, and Cohen's kappa. None values are ignored and the count of scored items (n)
is always reported; nothing here returns NaN."""
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


# ---- paired differences, repeats, sample size, agreement -------------------------------------------------------
# Values per question may be one number or a list (one per repeated run of that question). Questions are the
# unit of resampling: a question answered 5 times is still one question, so repeats never inflate n.

def _groups(values) -> dict[str, list[float]]:
    """{qid: number | [numbers]} -> {qid: [clean numbers]} without questions that have none."""
    out = {}
    for qid, v in dict(values).items():
        xs = clean(v if isinstance(v, (list, tuple)) else [v])
        if xs:
            out[str(qid)] = xs
    return out


def _avg(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _sd(xs: list[float]) -> float | None:
    """Sample standard deviation (n - 1); None below two values."""
    if len(xs) < 2:
        return None
    m = _avg(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _interval(stats_sorted: list[float], alpha: float) -> tuple[float, float]:
    r = len(stats_sorted)
    return (stats_sorted[int(math.floor(alpha / 2 * (r - 1)))],
            stats_sorted[int(math.ceil((1 - alpha / 2) * (r - 1)))])


def _resample_mean(rng: random.Random, xs: list[float]) -> float:
    """Mean of a within-question resample of the repeats (the value itself when there is one)."""
    if len(xs) == 1:
        return xs[0]
    return sum(rng.choices(xs, k=len(xs))) / len(xs)


def cluster_bootstrap_ci(groups, resamples: int = BOOTSTRAP_RESAMPLES, alpha: float = 0.05,
                         seed: int = BOOTSTRAP_SEED) -> Estimate:
    """Mean over questions of each question's mean over its repeats, with a two-stage (hierarchical) bootstrap:
    resample questions with replacement, then each drawn question's repeats with replacement. n = questions.
    With one value per question this is exactly `bootstrap_ci` of those values."""
    g = _groups(groups)
    if all(len(xs) == 1 for xs in g.values()):
        return bootstrap_ci([xs[0] for xs in g.values()], resamples, alpha, seed)
    keys = sorted(g)
    n = len(keys)
    est = _avg([_avg(g[k]) for k in keys])
    if n == 1 and min(g[keys[0]]) == max(g[keys[0]]):
        return Estimate(est, None, None, 1)
    rng = random.Random(seed)
    means = sorted(_avg([_resample_mean(rng, g[k]) for k in rng.choices(keys, k=n)]) for _ in range(resamples))
    lo, hi = _interval(means, alpha)
    return Estimate(est, lo, hi, n)


def question_ci(pairs: Iterable, resamples: int = BOOTSTRAP_RESAMPLES, alpha: float = 0.05,
                seed: int = BOOTSTRAP_SEED) -> Estimate:
    """`cluster_bootstrap_ci` of (question id, value) pairs, e.g. one per stored answer: repeats of a question
    are grouped (in first-seen order), so a run without repeats gets exactly `bootstrap_ci` of the values."""
    groups: dict[str, list] = {}
    for qid, v in pairs:
        groups.setdefault(str(qid), []).append(v)
    return cluster_bootstrap_ci(groups, resamples, alpha, seed)


@dataclass
class QuestionSpread:
    qid: str
    n: int                  # repeats with a value
    mean: float
    sd: float | None        # None with a single repeat
    min: float
    max: float

    @property
    def range(self) -> float:
        return self.max - self.min

    def to_dict(self) -> dict:
        return {**asdict(self), "range": self.range}


def question_spread(groups) -> list[QuestionSpread]:
    """Per question: how much its value moved across repeated runs (sorted by question id)."""
    g = _groups(groups)
    return [QuestionSpread(k, len(xs), _avg(xs), _sd(xs), min(xs), max(xs)) for k, xs in sorted(g.items())]


def repeat_summary(groups, tol: float = 1e-9) -> dict:
    """One line about repeat variance: questions, mean repeats, mean and max within-question sd, and how many
    questions changed value between repeats."""
    sp = question_spread(groups)
    sds = [s.sd for s in sp if s.sd is not None]
    return {"questions": len(sp), "repeats": (_avg([s.n for s in sp]) if sp else 0.0),
            "mean_sd": _avg(sds) if sds else None, "max_sd": max(sds) if sds else None,
            "max_range": max((s.range for s in sp), default=None),
            "changed": sum(1 for s in sp if s.range > tol), "repeated": sum(1 for s in sp if s.n > 1)}


def questions_needed(sd: float | None, delta: float | None, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Questions needed for a paired comparison to detect a true mean difference `delta` when per-question
    differences have standard deviation `sd` (normal approximation of a two-sided paired test):
        n = ((z_{1-alpha/2} + z_{power}) * sd / delta)^2, at least 2.
    Non-increasing in |delta|; None when delta is 0 or unknown."""
    from statistics import NormalDist

    if sd is None or delta is None or delta == 0 or not (0 < alpha < 1 and 0 < power < 1):
        return None
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return max(2, int(math.ceil((z * float(sd) / abs(float(delta))) ** 2)))


@dataclass
class PairedDiff:
    """B minus A, per question answered by both, averaged over questions; interval by (cluster) bootstrap."""
    a: str
    b: str
    mean: float | None
    lo: float | None
    hi: float | None
    n: int                      # questions answered by both
    sd: float | None = None     # sd of the per-question differences (each the difference of repeat means)
    label: str = "all questions"
    repeats: float = 1.0        # mean repeats per question and side

    @property
    def separated(self) -> bool:
        """The interval excludes 0: one approach is ahead on these questions."""
        return self.lo is not None and self.hi is not None and (self.lo > 0 or self.hi < 0)

    @property
    def winner(self) -> str | None:
        if not self.separated:
            return None
        return self.b if self.mean > 0 else self.a

    @property
    def needed_n(self) -> int | None:
        """Questions needed to separate the two at the observed difference and spread (None when separated,
        or when the observed difference is exactly 0)."""
        if self.separated or self.mean is None:
            return None
        return questions_needed(self.sd, self.mean)

    def fmt(self, digits: int = 2) -> str:
        f = f"{{:.{digits}f}}"
        if self.mean is None or self.n == 0:
            return f"{self.b} vs {self.a}: no question answered by both on {self.label}"
        if self.lo is None:
            return (f"{self.b} − {self.a} = {self.mean:+.{digits}f} on {self.label}, n = {self.n} "
                    f"(one question: no interval)")
        if self.separated:
            win, lose = (self.b, self.a) if self.mean > 0 else (self.a, self.b)
            lo, hi = (self.lo, self.hi) if self.mean > 0 else (-self.hi, -self.lo)
            return (f"{win} beats {lose} by {f.format(abs(self.mean))} [{f.format(lo)}, {f.format(hi)}] "
                    f"on {self.label}, n = {self.n}")
        text = (f"{self.b} − {self.a} = {self.mean:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}] on "
                f"{self.label}, n = {self.n}: not separated (the interval contains 0)")
        need = self.needed_n
        if need is not None:
            text += f"; about {need} questions would separate a difference this size"
        return text

    def to_dict(self) -> dict:
        return {**asdict(self), "separated": self.separated, "winner": self.winner, "needed_n": self.needed_n,
                "text": self.fmt()}


def paired_bootstrap(a_values, b_values, a: str = "A", b: str = "B", label: str = "all questions",
                     resamples: int = BOOTSTRAP_RESAMPLES, alpha: float = 0.05, seed: int = BOOTSTRAP_SEED) -> PairedDiff:
    """Paired difference B - A over the questions both answered. Each side's value per question is the mean of
    its repeats; the bootstrap resamples questions, then (when there are repeats) each side's repeats within
    the drawn question, so repeat noise widens the interval instead of being ignored."""
    ga, gb = _groups(a_values), _groups(b_values)
    keys = sorted(set(ga) & set(gb))
    n = len(keys)
    if n == 0:
        return PairedDiff(a, b, None, None, None, 0, label=label)
    d = [_avg(gb[k]) - _avg(ga[k]) for k in keys]
    est = _avg(d)
    reps = _avg([(len(ga[k]) + len(gb[k])) / 2 for k in keys])
    sd = _sd(d)
    if n == 1:
        return PairedDiff(a, b, est, None, None, 1, None, label, reps)
    repeated = any(len(ga[k]) > 1 or len(gb[k]) > 1 for k in keys)
    if not repeated and min(d) == max(d):
        return PairedDiff(a, b, est, est, est, n, sd, label, reps)
    rng = random.Random(seed)
    stats_ = []
    for _ in range(resamples):
        draw = rng.choices(keys, k=n)
        if repeated:
            stats_.append(_avg([_resample_mean(rng, gb[k]) - _resample_mean(rng, ga[k]) for k in draw]))
        else:
            stats_.append(_avg([gb[k][0] - ga[k][0] for k in draw]))
    stats_.sort()
    lo, hi = _interval(stats_, alpha)
    return PairedDiff(a, b, est, lo, hi, n, sd, label, reps)


@dataclass
class Agreement:
    """Agreement between two raters on the same items (e.g. the LLM judge vs people)."""
    n: int
    accuracy: float | None        # share of items with the same label
    kappa: float | None           # Cohen's kappa; None when undefined (n = 0, or chance agreement is 1)
    expected: float | None = None  # agreement expected by chance from the two label distributions
    reason: str = ""

    def fmt(self, digits: int = 2) -> str:
        if not self.n:
            return "no item rated by both (n = 0)"
        k = f"κ = {self.kappa:.{digits}f}" if self.kappa is not None else f"κ undefined ({self.reason})"
        return f"accuracy {self.accuracy:.{digits}f}, {k}, n = {self.n}"

    def to_dict(self) -> dict:
        return {**asdict(self), "text": self.fmt()}


def cohen_kappa(labels_a: Iterable, labels_b: Iterable) -> Agreement:
    """Cohen's kappa = (p_o - p_e) / (1 - p_e) over paired labels (any hashable categories); pairs where either
    label is None are skipped."""
    pairs = [(x, y) for x, y in zip(labels_a, labels_b) if x is not None and y is not None]
    n = len(pairs)
    if n == 0:
        return Agreement(0, None, None, None, "no paired labels")
    po = sum(1 for x, y in pairs if x == y) / n
    cats = {x for x, _ in pairs} | {y for _, y in pairs}
    pe = sum((sum(1 for x, _ in pairs if x == c) / n) * (sum(1 for _, y in pairs if y == c) / n) for c in cats)
    if pe >= 1 - 1e-12:
        return Agreement(n, po, None, pe, "both raters used one and the same label for every item")
    return Agreement(n, po, (po - pe) / (1 - pe), pe)
