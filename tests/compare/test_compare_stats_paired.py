"""Paired differences, repeat-aware intervals, questions needed and Cohen's kappa on hand-made cases."""
from __future__ import annotations

import random

import pytest

from core.compare.stats import (bootstrap_ci, cluster_bootstrap_ci, cohen_kappa, paired_bootstrap, question_spread,
                                questions_needed, repeat_summary)


def _base(n: int = 31, seed: int = 3) -> dict[str, float]:
    rng = random.Random(seed)
    return {f"q{i:02d}": round(rng.uniform(0.1, 0.8), 3) for i in range(n)}


def test_paired_difference_recovers_a_known_difference():
    a = _base()
    # B = A + 0.12, with per-question noise of +-0.04 that cancels out exactly: the true mean difference is 0.12
    noise = [0.04 if i % 2 else -0.04 for i in range(30)] + [0.0]
    b = {k: v + 0.12 + noise[i] for i, (k, v) in enumerate(a.items())}
    d = paired_bootstrap(a, b, "A", "B", "facts")
    assert d.n == 31
    assert d.mean == pytest.approx(0.12)
    assert d.lo < 0.12 < d.hi                                   # the interval contains the true difference
    assert d.lo > 0                                             # ... and excludes 0: B is ahead
    assert d.separated and d.winner == "B" and d.needed_n is None
    assert d.fmt().startswith("B beats A by 0.12 [") and d.fmt().endswith("on facts, n = 31")
    # the other direction reads the same way round
    r = paired_bootstrap(b, a, "B", "A", "facts")
    assert r.winner == "B" and r.fmt().startswith("B beats A by 0.12")
    assert (r.lo, r.hi) == pytest.approx((-d.hi, -d.lo))
    assert paired_bootstrap(a, b, "A", "B", "facts") == d      # seeded: reproducible


def test_paired_difference_of_equivalent_approaches_is_around_zero():
    a = _base()
    noise = [0.05 if i % 2 else -0.05 for i in range(31)]       # mean noise 0.05/31 ~ 0.002
    b = {k: v + noise[i] for i, (k, v) in enumerate(a.items())}
    d = paired_bootstrap(a, b, "A", "B")
    assert abs(d.mean) < 0.01 and d.lo < 0 < d.hi
    assert not d.separated and d.winner is None
    assert "not separated" in d.fmt()
    same = paired_bootstrap(a, dict(a), "A", "B")
    assert (same.mean, same.lo, same.hi, same.n) == (0.0, 0.0, 0.0, 31) and not same.separated
    assert same.needed_n is None                                # a difference of exactly 0 never separates


def test_paired_difference_uses_only_questions_both_answered():
    a = {"q1": 0.2, "q2": 0.4, "q3": None, "q4": 0.9}
    b = {"q1": 0.6, "q2": 0.5, "q3": 0.7}
    d = paired_bootstrap(a, b)
    assert d.n == 2 and d.mean == pytest.approx(((0.6 - 0.2) + (0.5 - 0.4)) / 2)
    assert paired_bootstrap({}, b).n == 0 and "no question" in paired_bootstrap({}, b).fmt()
    one = paired_bootstrap({"q1": 0.1}, {"q1": 0.3})
    assert one.n == 1 and one.lo is None and "one question" in one.fmt()


def test_questions_needed_by_hand_and_monotonic_in_effect_size():
    # (z_0.975 + z_0.8)^2 * (sd / delta)^2 = (1.95996 + 0.84162)^2 * 4 = 31.4 -> 32
    assert questions_needed(0.2, 0.1) == 32
    deltas = [0.01, 0.02, 0.05, 0.1, 0.2, 0.4]
    ns = [questions_needed(0.25, d) for d in deltas]
    assert all(x >= y for x, y in zip(ns, ns[1:])) and ns[0] > ns[2] > ns[3]
    assert questions_needed(0.25, -0.1) == questions_needed(0.25, 0.1)   # only the size of the effect counts
    sds = [questions_needed(s, 0.1) for s in (0.05, 0.1, 0.2, 0.4)]
    assert all(x <= y for x, y in zip(sds, sds[1:]))                     # more spread needs more questions
    assert questions_needed(0.2, 0) is None and questions_needed(None, 0.1) is None
    assert questions_needed(0.0, 0.1) == 2


def test_needed_n_questions_do_separate_the_pair():
    """An overlapping pair, then the same per-question differences at the estimated number of questions."""
    diffs = [0.3, -0.2, 0.25, -0.1, 0.15, 0.0, -0.05, 0.2, 0.1, -0.15]    # mean 0.05, sd ~0.17
    a = {f"q{i}": 0.5 for i in range(10)}
    b = {f"q{i}": 0.5 + d for i, d in enumerate(diffs)}
    small = paired_bootstrap(a, b)
    assert not small.separated and small.needed_n and small.needed_n > 10
    n = small.needed_n
    big_a = {f"q{i}": 0.5 for i in range(n)}
    big_b = {f"q{i}": 0.5 + diffs[i % 10] for i in range(n)}
    big = paired_bootstrap(big_a, big_b)
    assert big.separated and big.winner == "B"
    assert f"about {n} questions" in small.fmt()


def _repeated(seed: int = 5, questions: int = 12, repeats: int = 4, within: float = 0.15) -> dict[str, list[float]]:
    rng = random.Random(seed)
    return {f"q{i:02d}": [min(1.0, max(0.0, i / questions + rng.gauss(0, within))) for _ in range(repeats)]
            for i in range(questions)}


def test_repeat_aware_interval_is_wider_than_a_naive_one():
    g = _repeated()
    cl = cluster_bootstrap_ci(g)
    naive = bootstrap_ci([x for xs in g.values() for x in xs])       # every repeat as if a new question
    assert cl.n == 12 and naive.n == 48
    assert cl.mean == pytest.approx(naive.mean)                       # equal repeats: the same point estimate
    assert (cl.hi - cl.lo) > 1.3 * (naive.hi - naive.lo)
    # one value per question: exactly the plain bootstrap
    flat = {k: xs[:1] for k, xs in g.items()}
    assert cluster_bootstrap_ci(flat) == bootstrap_ci([xs[0] for xs in flat.values()])


def test_paired_interval_widens_when_repeats_vary():
    a = _repeated(seed=1)
    b = {k: [x + 0.1 for x in _repeated(seed=2)[k]] for k in a}
    with_repeats = paired_bootstrap(a, b)
    means_only = paired_bootstrap({k: sum(v) / len(v) for k, v in a.items()},
                                  {k: sum(v) / len(v) for k, v in b.items()})
    assert with_repeats.mean == pytest.approx(means_only.mean)
    assert with_repeats.repeats == 4 and means_only.repeats == 1
    assert (with_repeats.hi - with_repeats.lo) > (means_only.hi - means_only.lo)


def test_question_spread_and_repeat_summary_by_hand():
    g = {"q1": [0.2, 0.4, 0.6], "q2": [0.5, 0.5], "q3": [0.9], "q4": [None, float("nan")]}
    sp = {s.qid: s for s in question_spread(g)}
    assert set(sp) == {"q1", "q2", "q3"}
    assert sp["q1"].mean == pytest.approx(0.4) and sp["q1"].sd == pytest.approx(0.2)
    assert sp["q1"].range == pytest.approx(0.4) and sp["q2"].sd == 0 and sp["q3"].sd is None
    s = repeat_summary(g)
    assert s["questions"] == 3 and s["changed"] == 1 and s["repeated"] == 2
    assert s["repeats"] == pytest.approx(2.0) and s["mean_sd"] == pytest.approx(0.1)
    assert s["max_range"] == pytest.approx(0.4)


def test_cohen_kappa_textbook_cases():
    # perfect agreement with two categories
    a = ["good", "bad", "good", "good", "bad"]
    perfect = cohen_kappa(a, list(a))
    assert perfect.kappa == pytest.approx(1.0) and perfect.accuracy == 1.0 and perfect.n == 5
    # chance level: B's labels are independent of A's (each pairing equally often) -> kappa 0
    ca = ["good", "good", "bad", "bad"] * 25
    cb = ["good", "bad", "good", "bad"] * 25
    chance = cohen_kappa(ca, cb)
    assert chance.accuracy == pytest.approx(0.5) and chance.kappa == pytest.approx(0.0, abs=1e-12)
    rng = random.Random(0)
    ra = [rng.choice("gb") for _ in range(4000)]
    rb = [rng.choice("gb") for _ in range(4000)]
    assert abs(cohen_kappa(ra, rb).kappa) < 0.05
    # by hand: 50 items, yes/yes 20, yes/no 5, no/yes 10, no/no 15: p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5
    x = ["yes"] * 25 + ["no"] * 25
    y = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    k = cohen_kappa(x, y)
    assert k.accuracy == pytest.approx(0.7) and k.expected == pytest.approx(0.5) and k.kappa == pytest.approx(0.4)
    assert k.fmt() == "accuracy 0.70, κ = 0.40, n = 50"
    # three categories by hand: 4 of 6 agree (p_o = 2/3); both raters use each label twice, so
    # p_e = 3 * (2/6)^2 = 1/3 and kappa = (2/3 - 1/3) / (2/3) = 0.5
    k3 = cohen_kappa([1, 1, 2, 2, 3, 3], [1, 1, 2, 3, 3, 2])
    assert k3.accuracy == pytest.approx(2 / 3) and k3.expected == pytest.approx(1 / 3)
    assert k3.kappa == pytest.approx(0.5)


def test_cohen_kappa_edge_cases():
    assert cohen_kappa([], []).n == 0 and cohen_kappa([], []).kappa is None
    skip = cohen_kappa(["good", None, "bad"], ["good", "bad", None])
    assert skip.n == 1
    one = cohen_kappa(["good"] * 4, ["good"] * 4)
    assert one.accuracy == 1.0 and one.kappa is None and "one and the same label" in one.fmt()


def test_question_ci_groups_repeats_and_equals_the_plain_bootstrap_without_them():
    from core.compare.stats import question_ci

    vals = [0.1, 0.4, None, 0.5, 0.9, 0.7, 0.3]
    pairs = [(f"q{i}", v) for i, v in enumerate(vals)]
    assert question_ci(pairs) == bootstrap_ci(vals)                     # the summary's numbers do not move
    g = _repeated()
    rep = question_ci((q, x) for q, xs in g.items() for x in xs)
    assert rep == cluster_bootstrap_ci(g) and rep.n == 12
