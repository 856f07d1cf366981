"""Bootstrap CI, percentiles and the cost model on hand-made numbers."""
from __future__ import annotations

import pytest

from core.compare.cost import ApproachUsage, CostModel, approach_cost, break_even, maintenance
from core.compare.stats import bootstrap_ci, percentile


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    xs = [0.1, 0.4, 0.5, 0.9, 0.7, 0.3, 0.8, 0.6]
    a, b = bootstrap_ci(xs), bootstrap_ci(xs)
    assert a == b                                         # seeded: reproducible
    assert a.lo < a.mean < a.hi and a.n == 8
    assert a.mean == pytest.approx(sum(xs) / len(xs))


def test_bootstrap_ci_edge_cases_never_nan():
    assert bootstrap_ci([]).mean is None and bootstrap_ci([]).n == 0
    assert bootstrap_ci([None, float("nan")]).n == 0
    one = bootstrap_ci([0.4])
    assert one.mean == 0.4 and one.lo is None and "n=1" in one.fmt()
    same = bootstrap_ci([1.0, 1.0, 1.0])
    assert same.lo == same.hi == 1.0
    assert bootstrap_ci([0.0, None, 1.0]).n == 2


def test_percentile():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)
    assert percentile([], 50) is None and percentile([2.5], 95) == 2.5


def _usages():
    long_prompt = ApproachUsage("few_shot", n=10, prompt_tokens=900, completion_tokens=100, llm_seconds=2.0)
    ft = ApproachUsage("ft", n=10, prompt_tokens=100, completion_tokens=100, llm_seconds=1.0, fine_tuned=True,
                       train_seconds=3600, train_device="cpu")
    rag = ApproachUsage("rag", n=10, prompt_tokens=1200, completion_tokens=100, llm_seconds=3.0, rag=True,
                        retrieval_seconds=0.05, ingest_seconds=120, n_docs=12)
    return long_prompt, ft, rag


def test_cost_per_query_api_and_gpu():
    long_prompt, ft, rag = _usages()
    cm = CostModel(price_in_per_m=1.0, price_out_per_m=2.0, compute_per_hour=3.6, train_per_hour=2.0)
    c = approach_cost(long_prompt, cm)
    assert c.per_query == pytest.approx(900e-6 + 200e-6)
    assert c.per_1k == pytest.approx(c.per_query * 1000)
    r = approach_cost(rag, cm)
    assert r.per_query == pytest.approx(1200e-6 + 200e-6 + 0.05 * 3.6 / 3600)
    assert r.one_off_indexing == pytest.approx(120 * 3.6 / 3600)
    g = approach_cost(ft, CostModel(mode="gpu", gpu_per_hour=3.6, train_per_hour=2.0))
    assert g.per_query == pytest.approx(1.0 * 3.6 / 3600) and g.one_off_training == pytest.approx(2.0)


def test_break_even_volume_and_no_saving():
    long_prompt, ft, rag = _usages()
    cm = CostModel(price_in_per_m=1.0, price_out_per_m=2.0, train_per_hour=2.0)
    (be,) = break_even([long_prompt, ft, rag], cm)
    saving = 800e-6                                        # 800 fewer input tokens at $1/1M
    assert be.versus == "few_shot" and be.queries == pytest.approx(2.0 / saving)
    ft_long = ApproachUsage("ft", n=10, prompt_tokens=950, completion_tokens=100, fine_tuned=True, train_seconds=60)
    (none,) = break_even([long_prompt, ft_long], cm)
    assert none.queries is None and "no saving" in none.reason
    (alone,) = break_even([ft], cm)
    assert alone.queries is None and "no base-model approach" in alone.reason


def test_maintenance_uses_measured_times():
    long_prompt, ft, rag = _usages()
    rows = {r.name: r for r in maintenance([long_prompt, ft, rag], {"few_shot": 20.0, "ft": 10.0, "rag": 30.0})}
    assert rows["rag"].docs_redo_s == pytest.approx(10.0)          # 120 s / 12 docs
    assert "re-ingest" in rows["rag"].docs_change
    assert rows["ft"].model_redo_s == pytest.approx(3610.0) and "retrain" in rows["ft"].model_change
    assert rows["few_shot"].docs_redo_s == 20.0


def test_cost_model_validation():
    with pytest.raises(ValueError):
        CostModel.from_dict({"mode": "free"})
    with pytest.raises(ValueError):
        CostModel.from_dict({"price_in_per_m": -1})
    assert CostModel.from_dict({"mode": "gpu", "unknown": 1}).mode == "gpu"


def test_decision_distinguishes_unscored_answers_from_no_answers():
    """A run stored without scores has answers but nothing to rank: the report says so instead of 'no answers'."""
    from core.compare.cost import CostModel
    from core.compare.summary import ApproachSummary, decide

    unscored = ApproachSummary("a", "prompt", 0, True, "", "a", n_answers=3)
    empty = ApproachSummary("b", "prompt", 0, True, "", "b")
    assert "without scores" in decide([unscored], CostModel())["overall"]["text"]
    assert decide([empty], CostModel())["overall"]["text"].startswith("No answers yet")
    assert decide([unscored], CostModel())["overall"]["winner"] is None
